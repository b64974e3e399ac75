"""Run the numbered notebooks with papermill (the demo, the batch reruns and the notebook test all use this), and
clear their outputs before a commit.

    python -m src.notebooks demo --run-dir runs/demo
    python -m src.notebooks clean notebooks/*.ipynb      # make clean-notebooks
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from src.common.paths import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = ["01_eda", "02_tokenizer", "03_recipe_training", "04_blend", "05_submit"]


def kernel_config():
    """Kernel-manager settings for papermill's kernels: CurveZMQ keys provisioned by jupyter_client.

    ipykernel >= 7 warns "Kernel is running over TCP without encryption" on every start (it reads as an error);
    jupyter_client's documented `transport_encryption` gives the kernel keys when its kernelspec declares curve
    support (ipykernel's does), which both encrypts the local sockets and ends the warning."""
    import zmq
    from traitlets.config import Config

    c = Config()
    if zmq.has("curve"):  # pyzmq wheels bundle libsodium; without it the setting is refused
        c.KernelManager.transport_encryption = "auto"
    return c


def run_notebook(name: str, out_dir: str | os.PathLike, parameters: dict, kernel_name: str = "python3",
                 progress: bool = True, notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> Path:
    """Execute `notebook_dir/<name>.ipynb` with `parameters`; the executed copy goes to `out_dir/<name>.ipynb`."""
    import papermill as pm

    out = Path(out_dir) / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(Path(notebook_dir) / f"{name}.ipynb"), str(out), parameters=parameters,
                        kernel_name=kernel_name, cwd=str(notebook_dir), progress_bar=progress,
                        config=kernel_config())
    return out


DEMO_BACKBONES = ("tiny-bert", "tiny-xlmr")  # two tokenizers (WordPiece, Unigram): 04/05 blend them per character


def demo_parameters(run_dir: Path, models_dir: Path, data_dir: Path | None = None, **train_overrides) -> dict:
    """Parameters of each notebook for the demo: tiny backbones on the shipped sample.

    "03_recipe_training" maps to one parameter set per backbone ({backbone: params}); it runs once for each,
    into `<run_dir>/<backbone>/fold0`."""
    data = str(data_dir or REPO_ROOT / "input")
    fold_dirs = {b: run_dir / b / "fold0" for b in DEMO_BACKBONES}
    return {
        "01_eda": dict(data_dir=data, out_dir=str(run_dir)),
        "02_tokenizer": dict(data_dir=data, models_dir=str(models_dir), backbones=",".join(DEMO_BACKBONES)),
        # the demo's tiny runs log beside themselves, not in the committed docs/experiments.jsonl
        "03_recipe_training": {b: dict(data_dir=data, models_dir=str(models_dir), backbone=b, output_dir=str(d),
                                       experiment_log=str(run_dir / "experiments.jsonl"), **train_overrides)
                               for b, d in fold_dirs.items()},
        "04_blend": dict(data_dir=data, run_dirs=",".join(str(d) for d in fold_dirs.values()), out_dir=str(run_dir)),
        "05_submit": dict(data_dir=data, model_dirs=",".join(str(d / "model") for d in fold_dirs.values()),
                          blend=str(run_dir / "blend.json"), output=str(run_dir / "submission.csv")),
    }


def run_demo(run_dir: str | os.PathLike, models_dir: str | os.PathLike, data_dir=None, **train_overrides) -> Path:
    """Notebooks 01 -> 05 on the shipped sample (03 once per backbone); returns the path of submission.csv.

    Executed copies: `<run_dir>/<name>.ipynb`, and for 03 `<run_dir>/<backbone>/fold0/03_recipe_training.ipynb`."""
    from src.train.stand_ins import ensure_tiny

    # absolute: papermill runs each notebook from notebooks/, where a relative path would point elsewhere
    run_dir, models_dir = Path(run_dir).resolve(), Path(models_dir).resolve()
    ensure_tiny(models_dir)
    params = demo_parameters(run_dir, models_dir, data_dir, **train_overrides)
    for name in NOTEBOOKS:
        runs = ([(Path(p["output_dir"]), p) for p in params[name].values()] if name == "03_recipe_training"
                else [(run_dir, params[name])])
        for out_dir, p in runs:
            t0 = time.time()
            print(f"== {name} {p.get('backbone', '')}", flush=True)
            path = run_notebook(name, out_dir, p)
            print(f"== {name} done in {time.time() - t0:.0f}s -> {path}", flush=True)
    return Path(params["05_submit"]["output"])


# cell metadata that Jupyter and papermill add on a run; tags (papermill's `parameters`) stay
RUN_METADATA = {"collapsed", "scrolled", "execution", "papermill", "ExecuteTime"}


def clear_outputs(paths) -> list[Path]:
    """Clear outputs, execution counts and run metadata of each notebook in place (nbconvert's
    ClearOutputPreprocessor); returns the notebooks that changed. Unchanged files are not rewritten."""
    import nbformat
    from nbconvert.preprocessors import ClearOutputPreprocessor

    from src.common.io import write_text

    clear = ClearOutputPreprocessor(remove_metadata_fields=RUN_METADATA)
    changed = []
    for path in map(Path, paths):
        before = path.read_text(encoding="utf-8")
        try:
            nb = nbformat.reads(before, as_version=4)
        except Exception as e:  # nbformat raises several kinds for bad JSON / schema
            raise ValueError(f"{path}: not a readable notebook ({e})") from e
        nb, _ = clear.preprocess(nb, {})
        nb.metadata.pop("papermill", None)
        after = nbformat.writes(nb) + "\n"   # nbformat.write's own layout: committed notebooks stay byte-identical
        if after != before:
            write_text(after, path)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Run the five notebooks with papermill.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="notebooks 01-05 with the two tiny backbones on input/")
    d.add_argument("--run-dir", default=str(REPO_ROOT / "runs" / "demo"))
    d.add_argument("--models-dir", default=str(REPO_ROOT / ".cache" / "backbones"))
    c = sub.add_parser("clean", help="clear outputs of notebooks before a commit (tags kept)")
    c.add_argument("paths", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "clean":
        changed = clear_outputs(args.paths)
        print(f"outputs cleared: {len(changed)} of {len(args.paths)} notebook(s) changed"
              + "".join(f"\n  {p}" for p in changed))
        return
    path = run_demo(args.run_dir, args.models_dir)
    print(f"submission written: {path}")


if __name__ == "__main__":
    main()
