"""What a fold's training run leaves in its folder, and reading it back: checkpoints, model, metrics.

`train_fold` (`src/train/fold.py`) writes `model/` (weights, tokenizer, window settings), `oof.csv`, `metrics.json`
and `log_history.json` under its output folder, and the Trainer its checkpoints. A launched run (one process per GPU)
returns nothing to the notebook, and a resumed run (`train_fold(resume=True)`, a batch run) starts from the newest
checkpoint an earlier process left: both read the folder back with these helpers.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from src.common.io import write_csv, write_json
from src.infer.predict import MODEL_CONFIG

if TYPE_CHECKING:  # annotations only: fold.py imports this module
    from src.train.fold import TrainConfig


@dataclass
class FoldResult:
    metrics: dict
    oof: pd.DataFrame
    output_dir: Path
    log_history: list = field(default_factory=list)


METRICS_JSON = "metrics.json"
OOF_CSV, OOF_LOGITS = "oof.csv", "oof_logits.npz"
LOG_HISTORY_JSON = "log_history.json"   # the Trainer's logged steps (loss, learning rate), for a launched run's result


def read_fold_result(out_dir: str | Path) -> FoldResult:
    """The `FoldResult` a finished run wrote into `out_dir` (a launched run returns nothing to the notebook)."""
    out = Path(out_dir)
    path = out / METRICS_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the training run wrote no result there")
    history, oof = out / LOG_HISTORY_JSON, out / OOF_CSV
    # a run that held no row out (fold -1) has no oof.csv
    return FoldResult(json.loads(path.read_text(encoding="utf-8"))["metrics"],
                      pd.read_csv(oof, dtype={"id": str}, keep_default_na=False) if oof.is_file() else pd.DataFrame(),
                      out, json.loads(history.read_text(encoding="utf-8")) if history.is_file() else [])


def update_metrics_json(out_dir: str | Path, metrics: dict) -> None:
    """Merge re-scored `metrics` into a run's metrics.json (as `train_fold` wrote it), where there is one."""
    path = Path(out_dir) / METRICS_JSON
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        write_json(dict(saved, metrics=dict(saved.get("metrics", {}), **metrics)), path)


def last_complete_checkpoint(out_dir: Path, remove: bool = True) -> Path | None:
    """The newest checkpoint with a readable trainer_state.json; newer, half-written ones are removed (`remove`:
    by one process only, when several resume together).

    Trainer writes trainer_state.json last, so a run killed while saving leaves a checkpoint without it, which
    transformers' `get_last_checkpoint` would pick and then fail to load.
    """
    ckpt = out_dir / "checkpoints"
    if not ckpt.is_dir():
        return None
    found = sorted((p for p in ckpt.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for path in found:
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
            return path
        except (OSError, ValueError):
            if remove:
                print(f"   removing incomplete checkpoint {path}", flush=True)
                shutil.rmtree(path)
    return None


def save_model_dir(trainer, tokenizer, cfg: TrainConfig, path: Path) -> None:
    """Weights, tokenizer and the window settings they were trained with (read back by `predict.load_model`)."""
    trainer.save_model(str(path))
    tokenizer.save_pretrained(str(path))
    write_json({"backbone": cfg.backbone, "max_length": cfg.max_length, "doc_stride": cfg.doc_stride,
                "n_best_size": cfg.n_best_size, "max_answer_length": cfg.max_answer_length},
               path / MODEL_CONFIG)


def save_run(out: Path, trainer, tokenizer, cfg: TrainConfig, metrics: dict, oof: pd.DataFrame, logits) -> None:
    """A scored model as a run folder: `model/`, its held-out rows (`oof.csv`, `oof_logits.npz`; none when no row
    was held out: `logits` None) and `metrics.json` (its config and scores)."""
    save_model_dir(trainer, tokenizer, cfg, Path(out) / "model")
    if logits is not None:
        write_csv(oof, Path(out) / OOF_CSV)
        logits.save(Path(out) / OOF_LOGITS)
    write_json({"config": dataclasses.asdict(cfg), "metrics": metrics}, Path(out) / METRICS_JSON)
