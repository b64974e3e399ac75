"""How a training's work is divided: chaii's rows into folds (the project's grouped split or his), and one GPU's
batch over the processes of a multi-GPU run.

Pure functions (the process count aside, read from the environment the launchers set); `src/train/fold.py`,
`src/train/recipe.py` and `src/train/launch.py` call them before any window is built.
"""
from __future__ import annotations

import os

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

# His split (kldarek/chaii XLMR_pretraining68 cell 5, the same in every notebook): create_folds(chaii, 3) with
# StratifiedKFold(n_splits, shuffle=True, random_state=2021) over the language column.
WINNER_SPLIT_SEED = 2021
SPLITS = ("grouped", "winner")


def make_folds(df: pd.DataFrame, n_folds: int = 5, seed: int = 42, split: str = "grouped") -> pd.Series:
    """Fold number per row.

    "grouped" (the project's CV): stratified by language, grouped by context so no article is on both sides.
    "winner": his split, stratified by language over the rows in their order, `seed` unused (his random_state is
    2021). It is not grouped: chaii asks several questions of one article, so an article's questions fall on both
    sides and the held-out score of a model that read the article in training is optimistic (its CV leaks). The
    project's own CV keeps "grouped"; "winner" is for reproducing his models.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {SPLITS}")
    folds = pd.Series(-1, index=df.index, dtype=int)
    if split == "winner":
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=WINNER_SPLIT_SEED)
        parts = splitter.split(df, df["language"])
    else:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(df, df["language"], groups=df["context"])
    for k, (_, valid) in enumerate(parts):
        folds.iloc[valid] = k
    return folds


def split_rows(df: pd.DataFrame, cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, held-out rows) of fold `cfg.fold` of `cfg.split` (a `TrainConfig`: fold, n_folds, seed,
    split); fold -1: every row trains, none is held."""
    if not -1 <= cfg.fold < cfg.n_folds:
        raise ValueError(f"fold {cfg.fold}: expected 0..{cfg.n_folds - 1}, or -1 for no held-out rows")
    folds = make_folds(df, cfg.n_folds, cfg.seed, cfg.split)
    return df[folds != cfg.fold], df[folds == cfg.fold]


def split_batch(batch_size: int, grad_accum: int, n_processes: int) -> tuple[int, int]:
    """(per-device batch, accumulation steps) that keep one GPU's global batch `batch_size` x `grad_accum` over
    `n_processes` processes: the batch divided when it divides, else the accumulation, else the largest per-device
    batch up to `batch_size` that does. The same windows then make each optimizer step, and the number of steps
    (the learning-rate schedule) is one GPU's."""
    if n_processes <= 1:
        return batch_size, grad_accum
    if batch_size % n_processes == 0:
        return batch_size // n_processes, grad_accum
    if grad_accum % n_processes == 0:
        return batch_size, grad_accum // n_processes
    total = batch_size * grad_accum
    if total % n_processes:
        raise ValueError(f"the global batch batch_size x grad_accum = {batch_size} x {grad_accum} = {total} does not "
                         f"split over {n_processes} processes: make it a multiple of {n_processes}")
    share = total // n_processes
    per_device = max(b for b in range(1, batch_size + 1) if share % b == 0)
    return per_device, share // per_device


def world_size() -> int:
    """Processes of this training (torchrun and accelerate's launchers set WORLD_SIZE; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))
