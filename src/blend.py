"""Combine the predictions of several models.

Models that share a tokenizer and window settings produce aligned windows, so their start/end logits can be
averaged position by position.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .metric import jaccard_by_language
from .postprocess import postprocess_qa_predictions
from .predict import WindowLogits, predict_examples


def same_windows(a: WindowLogits, b: WindowLogits) -> bool:
    return (len(a) == len(b) and a.offsets.shape == b.offsets.shape
            and bool(np.all(a.example_id == b.example_id)) and bool(np.array_equal(a.offsets, b.offsets)))


def average_logits(logits: list[WindowLogits], weights: list[float] | None = None) -> WindowLogits:
    """Weighted mean of start/end logits of models with identical windows (same tokenizer and settings)."""
    if not logits:
        raise ValueError("no predictions to average")
    for i, other in enumerate(logits[1:], start=1):
        if not same_windows(logits[0], other):
            raise ValueError(f"model {i} has other windows than model 0 (another tokenizer or window settings); "
                             "blend such models at character level")
    w = np.asarray(weights if weights is not None else [1.0] * len(logits), dtype=np.float32)
    w = w / w.sum()
    start = sum(wi * x.start.astype(np.float32) for wi, x in zip(w, logits))
    end = sum(wi * x.end.astype(np.float32) for wi, x in zip(w, logits))
    return logits[0].with_logits(start, end)


def predict_answers(examples: pd.DataFrame, model_dirs: list[str], weights: list[float] | None = None,
                    n_best_size: int = 20, max_answer_length: int = 30, batch_size: int = 64) -> dict[str, str]:
    """Answer per example id from one or more fine-tuned model directories (logits averaged)."""
    logits = [predict_examples(d, examples, batch_size) for d in model_dirs]
    return postprocess_qa_predictions(examples, average_logits(logits, weights), n_best_size, max_answer_length)


def oof_report(train: pd.DataFrame, run_dirs: list[str], weights: list[float] | None = None,
               n_best_size: int = 20, max_answer_length: int = 30) -> pd.DataFrame:
    """Jaccard per language of each run's out-of-fold predictions and of their blend, on the ids they share."""
    logits = {"/".join(Path(d).parts[-2:]): WindowLogits.load(Path(d) / "oof_logits.npz") for d in run_dirs}
    shared = set.intersection(*(set(x.example_id) for x in logits.values()))
    examples = train[train["id"].isin(shared)]
    rows = {}
    for name, x in logits.items():
        rows[name] = _score(examples, x, n_best_size, max_answer_length)
    if len(logits) > 1:
        rows["blend"] = _score(examples, average_logits(list(logits.values()), weights), n_best_size, max_answer_length)
    return pd.DataFrame(rows).T.rename(columns=lambda c: f"jaccard_{c}")


def _score(examples: pd.DataFrame, logits: WindowLogits, n_best_size: int, max_answer_length: int) -> dict:
    keep = np.isin(logits.example_id, examples["id"].to_numpy())
    sub = WindowLogits(logits.example_id[keep], logits.start[keep], logits.end[keep], logits.offsets[keep])
    answers = postprocess_qa_predictions(examples, sub, n_best_size, max_answer_length)
    return jaccard_by_language(examples.assign(prediction=examples["id"].map(answers)))
