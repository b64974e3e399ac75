"""Experiment log: one JSON line per finished run, appended atomically; any run can be re-run from its row.

A row holds the run id, the git commit, a hash of the full configuration (and the configuration itself), the
backbone, the data with their sizes, the seed, the metrics, the time and the machine. The winner kept this in a
spreadsheet; here it is `docs/experiments.jsonl`, committed, so every clone knows every run made (`default_log`).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pandas as pd

from src.common.io import atomic_path


def config_hash(config: dict) -> str:
    """A short, order-independent hash of a JSON-able configuration."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """HEAD's commit, with "+dirty" when tracked files differ from it; "unknown" outside a git checkout."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.strip()
        # the committed log itself changes with every run: it does not make the code dirty
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)docs/experiments.jsonl"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def read_log(path: str | os.PathLike) -> list[dict]:
    """All rows; a missing log is empty. A broken line is an error naming the file and the line."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {n}: not a JSON row ({e.msg})") from None
    return rows


def append_run(path: str | os.PathLike, row: dict) -> None:
    """Append one row: the whole log is rewritten through a temporary file, so a crash never leaves half a line."""
    if "run_id" not in row:
        raise ValueError("an experiment-log row needs a run_id")
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(old + json.dumps(row, ensure_ascii=False, sort_keys=True, default=str) + "\n", encoding="utf-8")


def update_run(path: str | os.PathLike, run_id: str, **fields) -> dict:
    """Replace fields of the row `run_id` (e.g. metrics re-scored after a fix of the evaluation), atomically;
    the row before is kept in git history. A configuration built again (the same base on another machine) has
    several rows: only the newest is the model in this machine's cache, so only it changes. An unknown run_id is
    an error naming the log."""
    path = Path(path)
    rows = read_log(path)
    hits = [r for r in rows if r.get("run_id") == run_id]
    if not hits:
        raise KeyError(f"{path}: no row with run_id {run_id!r}")
    hits[-1].update(fields)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) + "\n" for r in rows),
                       encoding="utf-8")
    return hits[-1]


def done_run_ids(path: str | os.PathLike) -> set[str]:
    return {r["run_id"] for r in read_log(path)}


def log_frame(path: str | os.PathLike) -> pd.DataFrame:
    """The log as a frame, with `metrics` flattened into columns."""
    rows = read_log(path)
    return pd.json_normalize(rows, sep=".") if rows else pd.DataFrame()


# ---------------------------------------------------------------- the committed log and its rows
REPO_LOG = Path(__file__).resolve().parents[2] / "docs" / "experiments.jsonl"
LOG_ENV = "CHAII_EXPERIMENT_LOG"   # overrides the default (tests point it at a temporary file)


def default_log() -> Path | None:
    """$CHAII_EXPERIMENT_LOG; else the repository's committed docs/experiments.jsonl when running inside a git
    checkout; else /kaggle/working/experiments.jsonl on Kaggle (kept with the kernel's output); else no log."""
    from src.common.paths import default_paths, detect_env

    env = os.environ.get(LOG_ENV)
    if env is not None:
        return Path(env) if env.strip() and env.strip().lower() != "none" else None
    if (REPO_LOG.parents[1] / ".git").exists():
        return REPO_LOG
    # default_paths, not /kaggle/working itself: a simulated Kaggle tree ($CHAII_KAGGLE_ROOT) keeps its rows inside
    return default_paths("kaggle").work_dir / "experiments.jsonl" if detect_env() == "kaggle" else None


def resolve_log(setting: str | os.PathLike | None) -> Path | None:
    """A TrainConfig.experiment_log value -> the file to append to, or None: "auto" = `default_log()`,
    "" / "none" = no log, anything else is a path."""
    s = str(setting or "").strip()
    if s.lower() in ("", "none"):
        return None
    return default_log() if s == "auto" else Path(s)


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name from /proc/cpuinfo ("" where there is none); `platform.processor()` says only
    "x86_64" on Linux, and the log mixes machines whose speeds differ 2x (AVX2 fp32 against AVX-512 bf16)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return ""


MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def machine() -> dict:
    """What ran it: CPU model and whether it has native bf16, cores, torch threads, GPU, glibc malloc settings
    (times are only comparable on the same machine with the same settings)."""
    import platform

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu": cpu_model(), "cpus": os.cpu_count()}
    malloc = {k: os.environ[k] for k in MALLOC_ENV if k in os.environ}
    if malloc:  # the Makefile's: a CPU training step takes half the time with them
        info["malloc"] = malloc
    try:
        import torch

        from src.infer.precision import bf16_support
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                    gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
                    cpu_bf16=bf16_support("cpu")[0])
    except ImportError:
        pass
    return info


def data_sizes(df: pd.DataFrame | None, **extra) -> dict:
    """Rows of a frame, per `source` (and `eval_set`) when it has those columns, plus `extra` (e.g. windows)."""
    if df is None:
        return dict(extra)
    out = {"rows": len(df)}
    for col in ("source", "eval_set"):
        if col in df:
            out[f"by_{col}"] = {str(k): int(v) for k, v in df[col].value_counts(sort=False).items()}
    return {**out, **extra}


def run_row(config: dict, metrics: dict, data: dict, **fields) -> dict:
    """One log row: run id (default `<backbone>-s<seed>-<hash>`), commit, config and its hash, data with sizes,
    seed, metrics, time, machine; `fields` add to or replace these."""
    h = config_hash(config)
    row = {"run_id": f"{config.get('backbone', 'run')}-s{config.get('seed', '')}-{h}", "kind": "train_fold",
           "git_commit": git_commit(), "config_hash": h, "config": config, "data": data,
           "seed": config.get("seed"), "metrics": metrics, "train_seconds": metrics.get("train_seconds"),
           "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine()}
    row.update(fields)
    return row
