"""The competition metric: word-level Jaccard, averaged over rows."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def jaccard(a: str, b: str) -> float:
    """Kaggle's chaii Jaccard: lowercased, whitespace-split word sets; two empty answers score 1."""
    wa, wb = set(str(a).lower().split()), set(str(b).lower().split())
    if not wa and not wb:
        return 1.0
    inter = len(wa & wb)
    return inter / (len(wa) + len(wb) - inter)


def mean_jaccard(predictions: Sequence[str], answers: Sequence[str]) -> float:
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} answers")
    if not len(answers):
        return float("nan")
    return sum(jaccard(p, a) for p, a in zip(predictions, answers)) / len(answers)


def jaccard_by_language(df: pd.DataFrame, pred_col: str = "prediction", gold_col: str = "answer_text") -> dict[str, float]:
    """Mean Jaccard overall (`all`) and per value of `language`."""
    scores = pd.Series([jaccard(p, a) for p, a in zip(df[pred_col], df[gold_col])], index=df.index, dtype=float)
    out = {"all": float(scores.mean()) if len(scores) else float("nan")}
    for lang, s in scores.groupby(df["language"]):
        out[str(lang)] = float(s.mean())
    return out
