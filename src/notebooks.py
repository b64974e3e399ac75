"""Run the numbered notebooks with papermill (the demo, the batch reruns and the notebook test all use this).

    python -m src.notebooks demo --run-dir runs/demo
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .paths import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = ["01_eda", "02_tokenizer", "03_recipe_training", "04_blend", "05_submit"]


def run_notebook(name: str, out_dir: str | os.PathLike, parameters: dict, kernel_name: str = "python3",
                 progress: bool = True) -> Path:
    """Execute notebooks/<name>.ipynb with `parameters`; the executed copy goes to `out_dir/<name>.ipynb`."""
    import papermill as pm

    out = Path(out_dir) / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"), str(out), parameters=parameters,
                        kernel_name=kernel_name, cwd=str(NOTEBOOK_DIR), progress_bar=progress)
    return out


def demo_parameters(run_dir: Path, models_dir: Path, data_dir: Path | None = None, **train_overrides) -> dict:
    """Parameters of each notebook for the demo: tiny backbones on the shipped sample."""
    data = str(data_dir or REPO_ROOT / "input")
    fold_dir = run_dir / "tiny-bert" / "fold0"
    return {
        "01_eda": dict(data_dir=data, out_dir=str(run_dir)),
        "02_tokenizer": dict(data_dir=data, models_dir=str(models_dir), backbones="tiny-bert,tiny-xlmr"),
        "03_recipe_training": dict(data_dir=data, models_dir=str(models_dir), backbone="tiny-bert",
                                   output_dir=str(fold_dir), **train_overrides),
        "04_blend": dict(data_dir=data, run_dirs=str(fold_dir), out_dir=str(run_dir)),
        "05_submit": dict(data_dir=data, model_dirs=str(fold_dir / "model"),
                          output=str(run_dir / "submission.csv")),
    }


def run_demo(run_dir: str | os.PathLike, models_dir: str | os.PathLike, data_dir=None, **train_overrides) -> Path:
    """Notebooks 01 -> 05 on the shipped sample; returns the path of submission.csv."""
    from .backbones import ensure_tiny

    run_dir, models_dir = Path(run_dir), Path(models_dir)
    ensure_tiny(models_dir)
    params = demo_parameters(run_dir, models_dir, data_dir, **train_overrides)
    for name in NOTEBOOKS:
        t0 = time.time()
        print(f"== {name}", flush=True)
        run_notebook(name, run_dir, params[name])
        print(f"== {name} done in {time.time() - t0:.0f}s -> {run_dir / (name + '.ipynb')}", flush=True)
    return Path(params["05_submit"]["output"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Run the five notebooks with papermill.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="notebooks 01-05 with tiny backbones on input/")
    d.add_argument("--run-dir", default=str(REPO_ROOT / "runs" / "demo"))
    d.add_argument("--models-dir", default=str(REPO_ROOT / ".cache" / "backbones"))
    args = ap.parse_args(argv)
    path = run_demo(args.run_dir, args.models_dir)
    print(f"submission written: {path}")


if __name__ == "__main__":
    main()
