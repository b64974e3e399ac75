"""The winner's 13 models as a plan: `configs/winner_plan.csv`, one row per model of his reproduction table.

Source: GitHub kldarek/chaii @ e0a1805 (README.md's table; training_notebooks/*.ipynb). Each row is one model of
his final ensemble as his notebook trained it: backbone, recipe (a config in configs/), fold of his 3-fold split
(`StratifiedKFold(3, shuffle=True, random_state=2021)` on language, XLMR_pretraining68.ipynb cell 5; "all": trained
on every chaii row, "none": trained without chaii), his settings, the checkpoint he kept ("final" or "step N"), his
evaluation interval and public LB, the windows and optimizer steps his Trainer logged, and the notebook cells each
value came from. Where his README and his notebook disagree the notebook's value is in the row and the `note` says so
(RemBERT 77-79: lr 9e-6 in the notebooks, 1e-5 in the README).

Several rows can share a kernel (`kernel`): 79-1000 and 79-final are two checkpoints of one run, so one training
kernel exports both (`kernel_parameters`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from src.common.paths import REPO_ROOT

WINNER_PLAN = REPO_ROOT / "configs" / "winner_plan.csv"
N_FOLDS = 3                 # his split: create_folds(chaii, 3) (XLMR_pretraining68.ipynb cell 11)
FOLDS = ("0", "1", "2", "all", "none")
CHECKPOINT = re.compile(r"final|step (\d+)")


class WinnerPlanError(ValueError):
    """A plan file that does not hold his models as expected; the message names the file, row and field."""


@dataclass(frozen=True)
class WinnerModel:
    """One model of his ensemble (one row of configs/winner_plan.csv)."""
    experiment: str         # his table's name: "68", "79-1000", "126-s1"
    kernel: str             # the training kernel that trains it (79-1000 and 79-final: one)
    backbone: str           # a registry name (src/train/backbones.py)
    recipe: str             # a recipe config in configs/ (winner_68, winner_116, ...)
    fold: str               # "0" / "1" / "2" of his split, "all" (trained on every chaii row), "none" (no chaii)
    seed: int               # his SEED (random.seed and the passes' shuffle)
    learning_rate: float
    warmup_ratio: float
    epochs: int
    weight_decay: float
    batch_size: int         # per device, on his one GPU
    grad_accum: int
    max_length: int         # the held-out (and inference) windows
    doc_stride: int
    seq_len: str            # his README's lengths: "384/192", "256-448" (progressive resizing)
    checkpoint: str         # "final" or "step N"
    eval_steps: int         # he scored the held-out fold every this many optimizer steps
    precision: str          # "fp32": no fp16 flag in any of his TrainingArguments
    public_lb: float
    train_windows: int      # windows per epoch, as his Trainer logged them ("Num examples")
    total_steps: int        # optimizer steps of the whole run ("Total optimization steps")
    notebook: str
    cells: str              # where each value came from
    note: str = ""

    @property
    def held_out(self) -> bool:
        """Whether some chaii rows were kept out of training (an out-of-fold prediction exists)."""
        return self.fold.isdigit()

    @property
    def train_fold(self) -> int:
        """TrainConfig.fold: his fold, or -1 where no row is held out (all, none)."""
        return int(self.fold) if self.held_out else -1

    @property
    def checkpoint_step(self) -> int | None:
        """The optimizer step of the checkpoint he kept; None for the final model."""
        m = CHECKPOINT.fullmatch(self.checkpoint)
        return int(m.group(1)) if m and m.group(1) else None

    @property
    def longest(self) -> int:
        """The longest training window of the run (`seq_len`'s largest number)."""
        return max(int(x) for x in re.findall(r"\d+", self.seq_len) if int(x) >= 128)


_INT = {f.name for f in fields(WinnerModel) if f.type == "int"}
_FLOAT = {f.name for f in fields(WinnerModel) if f.type == "float"}


def _value(text: str, name: str, where: str):
    if name in _INT:
        if not re.fullmatch(r"\d+", text):
            raise WinnerPlanError(f"{where}, field {name!r}: {text!r} is not a whole number")
        return int(text)
    if name in _FLOAT:
        try:
            return float(text)
        except ValueError:
            raise WinnerPlanError(f"{where}, field {name!r}: {text!r} is not a number") from None
    return text


def check_model(m: WinnerModel, where: str) -> None:
    """The values a kernel cannot run with, named with their row and field."""
    from src.train.backbones import REGISTRY

    if m.backbone not in REGISTRY:
        raise WinnerPlanError(f"{where}, field 'backbone': {m.backbone!r} is not registered ({sorted(REGISTRY)})")
    if m.fold not in FOLDS:
        raise WinnerPlanError(f"{where}, field 'fold': {m.fold!r}; expected one of {', '.join(FOLDS)}")
    if not CHECKPOINT.fullmatch(m.checkpoint):
        raise WinnerPlanError(f"{where}, field 'checkpoint': {m.checkpoint!r}; expected 'final' or 'step N'")
    step = m.checkpoint_step
    if step is not None and not 0 < step < m.total_steps:
        raise WinnerPlanError(f"{where}, field 'checkpoint': step {step} is not inside the run's {m.total_steps} "
                              "steps (total_steps)")
    if m.precision not in ("fp32", "fp16", "bf16"):
        raise WinnerPlanError(f"{where}, field 'precision': {m.precision!r}; expected fp32, fp16 or bf16")
    # his Trainer's count: len(dataloader) // accumulation per epoch (transformers 4.11)
    steps = math.ceil(m.train_windows / m.batch_size) // m.grad_accum * m.epochs
    if steps != m.total_steps:
        raise WinnerPlanError(f"{where}: total_steps {m.total_steps} but train_windows {m.train_windows} at batch "
                              f"{m.batch_size} x {m.grad_accum} over {m.epochs} epoch(s) give {steps}")


def load_winner_plan(path: str | Path = WINNER_PLAN) -> list[WinnerModel]:
    """The plan's rows in file order, each checked; a bad file raises `WinnerPlanError` naming row and field."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as e:
        raise WinnerPlanError(f"{path}: {e}") from None
    names = [f.name for f in fields(WinnerModel)]
    missing = [n for n in names if n not in df.columns and n != "note"]
    if missing:
        raise WinnerPlanError(f"{path}: missing column(s) {missing}; expected {names}")
    models = []
    for i, row in df.iterrows():
        where = f"{path}, row {i + 2} ({row['experiment'] or 'no experiment'})"   # row 1 is the header
        models.append(WinnerModel(**{n: _value(str(row.get(n, "")).strip(), n, where) for n in names}))
        check_model(models[-1], where)
    seen = [m.experiment for m in models]
    dup = sorted({e for e in seen if seen.count(e) > 1})
    if dup:
        raise WinnerPlanError(f"{path}: experiment(s) {dup} listed twice")
    for kernel, group in by_kernel(models).items():
        run = {k: v for k, v in vars(group[0]).items() if k not in RUN_FREE}
        for m in group[1:]:
            differ = sorted(k for k, v in run.items() if getattr(m, k) != v)
            if differ:
                raise WinnerPlanError(f"{path}: kernel {kernel!r} trains {group[0].experiment} and {m.experiment} "
                                      f"in one run, but they differ in {', '.join(differ)}")
    return models


# fields that may differ between models of one run (its checkpoints)
RUN_FREE = {"experiment", "checkpoint", "public_lb", "cells", "note"}


def by_kernel(models: list[WinnerModel]) -> dict[str, list[WinnerModel]]:
    """The models of each training kernel, kernels in plan order."""
    out: dict[str, list[WinnerModel]] = {}
    for m in models:
        out.setdefault(m.kernel, []).append(m)
    return out


def kernel_parameters(models: list[WinnerModel], fp16: bool | None = None) -> dict:
    """Notebook 03's parameters (TrainConfig fields) for the kernel that trains `models` (one run).

    His split (`split="winner"`) and his settings; `fold` -1 trains on every chaii row and scores none (126, and 52
    whose recipe has no chaii at all), so it evaluates nothing during training either. A checkpoint he kept is
    exported at its step (`export_steps`), scaled to this run's length by `export_steps_of` (his run's steps), so
    that it sits at the same point of the learning-rate schedule if this run's data give another number of steps.
    `fp16`: None keeps his precision (fp32); the sizing sets True where a T4 needs it.
    """
    m = models[0]
    steps = sorted({x.checkpoint_step for x in models if x.checkpoint_step is not None})
    params = dict(backbone=m.backbone, fold=m.train_fold, n_folds=N_FOLDS, split="winner", recipe=m.recipe,
                  seed=m.seed, learning_rate=m.learning_rate, warmup_ratio=m.warmup_ratio, epochs=m.epochs,
                  weight_decay=m.weight_decay, batch_size=m.batch_size, grad_accum=m.grad_accum,
                  max_length=m.max_length, doc_stride=m.doc_stride, eval_steps=m.eval_steps if m.held_out else 0,
                  fp16=(m.precision == "fp16") if fp16 is None else fp16)
    if steps:
        params.update(export_steps=",".join(map(str, steps)), export_steps_of=m.total_steps)
    return params


def model_subdir(m: WinnerModel) -> str:
    """Where in its kernel's run folder a model is: `model` (final) or `step<N>/model` (an exported checkpoint)."""
    step = m.checkpoint_step
    return "model" if step is None else f"step{step}/model"
