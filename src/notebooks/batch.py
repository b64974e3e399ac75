"""Batch reruns: notebook 03 (and 04/05 when asked) per backbone x fold with papermill, one folder per run.

    python -m src.notebooks.batch --backbones muril-large,rembert,xlm-roberta-large-squad2 --folds 0,1 --set epochs=1
    python -m src.notebooks.batch --tiny --fail-run        # offline: each real parameter set on its tiny stand-in

A run writes `runs/<backbone>/fold<k>/` (executed notebook, model, oof, metrics) and, last and atomically,
`DONE.json`: a rerun skips runs that have it (unless --force) and resumes the others from their last checkpoint.
One failing run does not stop the others; the summary table names the executed notebook where it failed.
Each executed notebook is also rendered to HTML beside it, and `runs/index.html` links them (`src.notebooks.report`).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from src.common.io import write_json
from src.common.paths import REPO_ROOT
from src.notebooks.report import report_run_folder, try_render
from src.notebooks.run import NOTEBOOK_DIR, run_notebook
from src.train.backbones import REGISTRY, STANDS_IN_FOR, get_backbone
from src.train.fold import TrainConfig
from src.train.fold_outputs import last_complete_checkpoint

DONE = "DONE.json"
REAL_BACKBONES = ["muril-large", "rembert", "xlm-roberta-large-squad2"]
TRAIN_NOTEBOOK, BLEND_NOTEBOOK, SUBMIT_NOTEBOOK = "03_recipe_training", "04_blend", "05_submit"
NOTEBOOK_NAMES = (TRAIN_NOTEBOOK, BLEND_NOTEBOOK, SUBMIT_NOTEBOOK)


@dataclass
class Run:
    """One papermill execution: a notebook, its parameters and the folder it owns."""
    name: str           # e.g. "muril-large/fold0"
    notebook: str
    out_dir: Path
    parameters: dict
    status: str = "pending"   # pending | skipped | ok | failed
    seconds: float = 0.0
    metric: float | None = None
    failed_notebook: str = ""
    error: str = ""
    after: list[str] = field(default_factory=list)  # runs whose outputs this one reads


def notebook_parameters(name: str) -> list[str]:
    """Names assigned in the notebook's cell tagged `parameters`, in order.

    Parsed with `ast`, not papermill's `inspect_notebook`, which skips lines whose comment it cannot parse.
    """
    import nbformat

    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"notebooks/{name}.ipynb: expected one cell tagged 'parameters', found {len(cells)}")
    tree = ast.parse(cells[0].source)
    return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]


def parse_overrides(pairs: list[str], allowed: set[str]) -> dict:
    """`key=value` strings -> dict; values are Python literals when they parse as one, else strings."""
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {pair!r}: expected key=value")
        if key not in allowed:
            raise ValueError(f"--set {key}: not a parameter of notebook 03 (known: {', '.join(sorted(allowed))})")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def train_parameters(backbone: str, fold: int, out_dir: Path, data_dir: str, models_dir: str,
                     tiny: bool, overrides: dict) -> dict:
    """Notebook 03's parameters: the backbone's registry values (its paper's settings), then the overrides.

    With `tiny`, the real backbone's parameter set trains its tiny stand-in's weights (`STANDS_IN_FOR`).
    """
    b = get_backbone(backbone)
    params = {f.name: getattr(b, f.name) for f in fields(TrainConfig) if hasattr(b, f.name) and f.name != "name"}
    params.update(backbone=backbone, fold=fold, output_dir=str(out_dir), data_dir=data_dir, models_dir=models_dir,
                  resume=True)
    if tiny:
        stand_in = STANDS_IN_FOR.get(backbone, backbone)
        params["model_path"] = str(Path(models_dir) / stand_in)
        # stand-in runs prove the path, they are not experiments: their rows stay beside them, not in docs/
        params["experiment_log"] = str(Path(out_dir).parent.parent / "experiments.jsonl")
    params.update(overrides)
    return params


def plan_runs(backbones: list[str], folds: list[int], runs_dir: Path, data_dir: str, models_dir: str,
              tiny: bool = False, overrides: dict | None = None, notebooks: tuple[str, ...] = (TRAIN_NOTEBOOK,),
              fail_run: bool = False) -> list[Run]:
    """The runs to execute, in order: training per backbone x fold, then blend / submit over all of them."""
    overrides = overrides or {}
    runs = []
    for backbone in backbones:
        for k in folds:
            out = runs_dir / backbone / f"fold{k}"
            runs.append(Run(f"{backbone}/fold{k}", TRAIN_NOTEBOOK, out,
                            train_parameters(backbone, k, out, data_dir, models_dir, tiny, overrides)))
    if fail_run:
        # A real failure users meet: the backbone's weights are not where the run looks (offline, no hub).
        out = runs_dir / "missing-weights" / "fold0"
        params = train_parameters("muril-large", 0, out, data_dir, str(runs_dir / "missing-weights" / "empty"),
                                  False, overrides)
        runs.append(Run("missing-weights/fold0", TRAIN_NOTEBOOK, out, params))
    trained = [r for r in runs if r.notebook == TRAIN_NOTEBOOK and not r.name.startswith("missing-weights")]
    if BLEND_NOTEBOOK in notebooks:
        runs.append(Run("blend", BLEND_NOTEBOOK, runs_dir / "blend",
                        dict(data_dir=data_dir, run_dirs=",".join(str(r.out_dir) for r in trained),
                             out_dir=str(runs_dir / "blend")), after=[r.name for r in trained]))
    if SUBMIT_NOTEBOOK in notebooks:
        # 05 uses the blend 04 just fitted; without 04 it fits one itself on the runs above its models
        blended = BLEND_NOTEBOOK in notebooks
        runs.append(Run("submit", SUBMIT_NOTEBOOK, runs_dir / "submit",
                        dict(data_dir=data_dir, model_dirs=",".join(str(r.out_dir / "model") for r in trained),
                             blend=str(runs_dir / "blend" / "blend.json") if blended else "oof",
                             output=str(runs_dir / "submit" / "submission.csv")),
                        after=[r.name for r in trained] + (["blend"] if blended else [])))
    return runs


def run_metric(run: Run) -> float | None:
    """Validation Jaccard of a training run (metrics.json), else None."""
    path = run.out_dir / "metrics.json"
    if run.notebook != TRAIN_NOTEBOOK or not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["metrics"].get("jaccard_all")


def execute(run: Run, force: bool = False, progress: bool = True) -> Run:
    """Run one notebook unless its DONE marker exists; record status, time, metric, failed notebook."""
    marker = run.out_dir / DONE
    if marker.exists() and not force:
        done = json.loads(marker.read_text(encoding="utf-8"))
        run.status, run.seconds, run.metric = "skipped", done.get("seconds", 0.0), done.get("metric")
        return run
    marker.unlink(missing_ok=True)  # a forced rerun that fails must not look complete
    params = dict(run.parameters)
    if run.notebook == TRAIN_NOTEBOOK and force:
        # step numbers restart, so an old run's later checkpoint would otherwise win a future resume
        shutil.rmtree(run.out_dir / "checkpoints", ignore_errors=True)
    if run.notebook == TRAIN_NOTEBOOK:
        params["resume"] = params.get("resume", True) and not force
        ckpt = last_complete_checkpoint(run.out_dir) if params["resume"] else None
        if ckpt:
            print(f"   {run.name}: resuming from {ckpt.name}", flush=True)
    t0 = time.time()
    try:
        nb = run_notebook(run.notebook, run.out_dir, params, progress=progress)
    except Exception as e:  # papermill raises PapermillExecutionError; anything else is a failure of this run too
        lines = str(e).strip().splitlines()
        run.status, run.error = "failed", f"{type(e).__name__}: {lines[-1] if lines else ''}"
        run.failed_notebook = str(run.out_dir / f"{run.notebook}.ipynb")
        run.seconds = round(time.time() - t0, 1)
        return run
    run.status, run.metric, run.seconds = "ok", run_metric(run), round(time.time() - t0, 1)
    # last, atomically: its presence means everything the run writes is there
    write_json({"run": run.name, "notebook": str(nb), "seconds": run.seconds, "metric": run.metric,
                "parameters": params}, marker)
    return run


def run_all(runs: list[Run], force: bool = False, progress: bool = True) -> list[Run]:
    """Execute every run in order; a failure is recorded and the next run starts (dependents are skipped)."""
    for i, run in enumerate(runs, 1):
        failed_deps = [d for d in run.after if any(r.name == d and r.status == "failed" for r in runs)]
        if failed_deps:
            run.status, run.error = "failed", f"not run: {', '.join(failed_deps)} failed"
            print(f"[{i}/{len(runs)}] {run.name}: not run ({run.error})", flush=True)
            continue
        print(f"[{i}/{len(runs)}] {run.name}: {run.notebook} -> {run.out_dir}", flush=True)
        # a blend or submission over runs that were just (re)trained is stale: redo it
        fresh_deps = any(r.name in run.after and r.status == "ok" for r in runs)
        execute(run, force=force or fresh_deps, progress=progress)
        if run.status in ("ok", "failed"):   # a failed notebook's report shows where it failed
            try_render(run.out_dir / f"{run.notebook}.ipynb")
        metric = "" if run.metric is None else f" jaccard {run.metric:.4f}"
        took = f"already complete ({run.seconds:.0f}s when it ran)" if run.status == "skipped" else \
            f"{run.status} in {run.seconds:.0f}s"
        print(f"[{i}/{len(runs)}] {run.name}: {took}{metric}"
              + (f" -- {run.error} (see {run.failed_notebook})" if run.status == "failed" else ""), flush=True)
    return runs


def summary(runs: list[Run]) -> pd.DataFrame:
    return pd.DataFrame([{"run": r.name, "status": r.status, "time_s": r.seconds,
                          "jaccard": "" if r.metric is None else round(r.metric, 4),
                          "failed_notebook": r.failed_notebook or r.error} for r in runs])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.notebooks.batch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", default=",".join(REAL_BACKBONES),
                    help=f"comma-separated registry names (registered: {', '.join(REGISTRY)})")
    ap.add_argument("--folds", default="0", help="comma-separated fold numbers (default: 0)")
    ap.add_argument("--notebooks", default="03", help="03, or 03,04,05 to also blend and submit over the runs")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a notebook-03 parameter for every run, e.g. --set epochs=1 (repeatable)")
    ap.add_argument("--runs-dir", default=str(REPO_ROOT / "runs"))
    ap.add_argument("--data-dir", default=str(REPO_ROOT / "input"))
    ap.add_argument("--models-dir", default=str(REPO_ROOT / ".cache" / "backbones"))
    ap.add_argument("--tiny", action="store_true",
                    help="train each backbone's parameter set on its tiny local stand-in (offline; no hub)")
    ap.add_argument("--fail-run", action="store_true",
                    help="add a run whose backbone weights are missing, to see a failure reported")
    ap.add_argument("--force", action="store_true", help="rerun complete runs, from scratch")
    ap.add_argument("--no-progress", action="store_true", help="no papermill progress bar")
    args = ap.parse_args(argv)

    backbones = [b for b in args.backbones.split(",") if b]
    for b in backbones:
        get_backbone(b)
    notebooks = tuple(n for n in NOTEBOOK_NAMES if n[:2] in args.notebooks.split(","))
    allowed = set(notebook_parameters(TRAIN_NOTEBOOK)) | {f.name for f in fields(TrainConfig)}
    try:
        overrides = parse_overrides(args.overrides, allowed)
    except ValueError as e:
        ap.error(str(e))
    if args.tiny:
        from src.train.stand_ins import ensure_tiny
        ensure_tiny(args.models_dir, sorted({STANDS_IN_FOR.get(b, b) for b in backbones}))
    if args.tiny or args.fail_run:
        os.environ["HF_HUB_OFFLINE"] = "1"  # the kernels papermill starts inherit it: nothing reaches for the hub
    # absolute: papermill runs the notebooks with notebooks/ as working directory
    runs_dir, data_dir, models_dir = (Path(p).resolve() for p in (args.runs_dir, args.data_dir, args.models_dir))
    runs = plan_runs(backbones, [int(k) for k in args.folds.split(",")], runs_dir, str(data_dir),
                     str(models_dir), args.tiny, overrides, notebooks, args.fail_run)
    run_all(runs, force=args.force, progress=not args.no_progress)
    # reports of runs skipped here but executed before this rendering existed are made now
    index = report_run_folder(runs_dir, {r.out_dir / f"{r.notebook}.ipynb": r.metric for r in runs})
    table = summary(runs)
    print("\n" + table.to_string(index=False))
    failed = table["status"].eq("failed").sum()
    print(f"\n{len(runs) - failed}/{len(runs)} runs ok or already complete; {failed} failed; reports: {index}",
          flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
