"""Experiment log: one JSON line per finished run, appended atomically; any run can be re-run from its row.

A row holds the run id, the git commit, a hash of the full configuration (and the configuration itself), the
backbone, the data, the seed, Jaccard per language and the training time. The winner kept this in a spreadsheet.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pandas as pd

from .io import atomic_path


def config_hash(config: dict) -> str:
    """A short, order-independent hash of a JSON-able configuration."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """HEAD's commit, with "+dirty" when tracked files differ from it; "unknown" outside a git checkout."""
    repo = repo or Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
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


def done_run_ids(path: str | os.PathLike) -> set[str]:
    return {r["run_id"] for r in read_log(path)}


def log_frame(path: str | os.PathLike) -> pd.DataFrame:
    """The log as a frame, with `metrics` flattened into columns."""
    rows = read_log(path)
    return pd.json_normalize(rows, sep=".") if rows else pd.DataFrame()
