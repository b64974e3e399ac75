"""The competition metric (word-level Jaccard), SQuAD v1.1 EM/F1, the best over several gold answers, and a
bootstrap interval over questions."""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
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
    return sum(jaccard(p, a) for p, a in zip(predictions, answers, strict=True)) / len(answers)


def jaccard_by_language(df: pd.DataFrame, pred_col: str = "prediction",
                        gold_col: str = "answer_text") -> dict[str, float]:
    """Mean Jaccard overall (`all`) and per value of `language`."""
    scores = pd.Series([jaccard(p, a) for p, a in zip(df[pred_col], df[gold_col], strict=True)], index=df.index,
                       dtype=float)
    out = {"all": float(scores.mean()) if len(scores) else float("nan")}
    for lang, s in scores.groupby(df["language"]):
        out[str(lang)] = float(s.mean())
    return out


# ---------------------------------------------------------------- SQuAD EM/F1, several golds, intervals
# The official SQuAD v1.1 evaluation script's formulas (evaluate-v1.1.py), hand-written because `evaluate`'s squad
# metric downloads its script from the Hugging Face hub, which offline machines and Kaggle kernels cannot reach.
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD v1.1: lowercase, drop ASCII punctuation and English articles, collapse whitespace."""
    s = "".join(ch for ch in str(s).lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """SQuAD v1.1 token F1 over normalised tokens (bags: repeated tokens count)."""
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(metric, prediction: str, golds: Iterable[str]) -> float:
    """The best score of `prediction` against any gold answer (SQuAD's `metric_max_over_ground_truths`)."""
    golds = list(golds)
    if not golds:
        raise ValueError("no gold answer to score against")
    return max(metric(prediction, g) for g in golds)


def golds_of(df: pd.DataFrame, gold_col: str = "answer_text", golds_col: str = "answers") -> list[list[str]]:
    """Every gold answer per row: the `answers` lists where the frame has them, else the single `answer_text`."""
    if golds_col not in df.columns:
        return [[a] for a in df[gold_col]]
    # rows from a source without the column (concatenated frames) have NaN there: their one gold is answer_text
    return [list(g) if isinstance(g, (list, tuple, np.ndarray)) and len(g) else [a]
            for g, a in zip(df[golds_col], df[gold_col], strict=True)]


def score_rows(df: pd.DataFrame, pred_col: str = "prediction", gold_col: str = "answer_text",
               golds_col: str = "answers") -> pd.DataFrame:
    """Per row: Jaccard, EM and F1 (0-1), each the best over the row's gold answers."""
    golds = golds_of(df, gold_col, golds_col)
    preds = df[pred_col].fillna("").astype(str).tolist()
    return pd.DataFrame({name: [best_over_golds(fn, p, g) for p, g in zip(preds, golds, strict=True)]
                         for name, fn in (("jaccard", jaccard), ("em", exact_match), ("f1", f1_score))},
                        index=df.index, dtype=float)


def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling questions with replacement (seeded: reproducible)."""
    x = np.asarray(values, dtype=float)
    if not len(x):
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    means = x[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def paired_gain(a: Sequence[float], b: Sequence[float], n_boot: int = 1000,
                seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over questions and its 95% paired bootstrap interval (the same resampled questions)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return (float(d.mean()), *bootstrap_ci(d, n_boot, seed=seed))


def qa_metrics(df: pd.DataFrame, pred_col: str = "prediction", by: Sequence[str] = ("language", "eval_set"),
               interval: bool = False, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Jaccard, EM, F1 and the share of non-zero Jaccard (the 4th place's checkpoint criterion), overall (`_all`)
    and per value of each column of `by` the frame has, e.g. `jaccard_hindi`, `em_all`, `f1_xquad_hi`; with
    `interval`, `jaccard_*_lo` / `_hi` (95% bootstrap over questions)."""
    scores = score_rows(df, pred_col)
    scores["nonzero"] = (scores["jaccard"] > 0).astype(float)
    groups = [("all", scores)]
    for col in [by] if isinstance(by, str) else by:
        if col in df:
            groups += [(str(k), g) for k, g in scores.groupby(df[col].to_numpy())]
    out = {}
    for name, g in groups:
        for col in ("jaccard", "em", "f1", "nonzero"):
            out[f"{col}_{name}"] = float(g[col].mean()) if len(g) else float("nan")
        if interval:
            out[f"jaccard_{name}_lo"], out[f"jaccard_{name}_hi"] = bootstrap_ci(g["jaccard"], n_boot, seed=seed)
    return out
