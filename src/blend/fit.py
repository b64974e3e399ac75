"""Fit the blend on out-of-fold predictions: merge folds per backbone, score each scheme, tune weights cross-fitted.

A run folder (`<work>/<backbone>/fold<k>/`, written by `train.train_fold`) holds the logits of the rows its model did
not see. Within a backbone, runs on different folds are concatenated (every row scored once, by the model that held
it out) and runs on the same fold (seeds) are averaged. Across backbones, on the rows every backbone covers, the
candidates are: each backbone alone, the character-level blend with equal weights, the word vote (k of n) and the
character-level blend with weights tuned cross-fitted (tuned on the other folds' rows, scored on the held fold).
`fit_blend` picks the scheme by that out-of-fold score (the winner's, the vote with 3 backbones, when nothing is
tuned) and returns it as `BlendSettings` for blend.json. Reading and merging the runs' logits: `src/blend/oof.py`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from src.blend.chars import (
    CharScores,
    blend_char_scores,
    decode_char_spans,
    select_char_scores,
)
from src.blend.combine import (
    BlendConfig,
    default_scheme,
    group_spans,
    merge_windows,
    vote_name,
    vote_spans,
)
from src.blend.oof import load_runs, merge_backbone, train_rows
from src.blend.settings import BLEND_JSON, BlendSettings, load_blend_json  # noqa: F401  (load_blend_json: public here)
from src.common.io import atomic_path, write_csv
from src.infer.answer_rules import AnswerRules, answers_from_spans
from src.infer.metric import jaccard, jaccard_by_language, mean_jaccard
from src.infer.postprocess import NO_SPAN

OOF_BLEND, BLEND_TABLE, BLEND_PLOT = "oof_blend.csv", "blend_table.csv", "blend.png"
EQUAL, TUNED = "char blend, equal weights", "char blend, tuned weights (cross-fitted)"


def tune_weights(examples: pd.DataFrame, scores: list[CharScores], gold: pd.Series, n_best_size: int = 20,
                 max_answer_chars: int = 100, seed: int = 0, maxiter: int = 15) -> tuple[np.ndarray, float]:
    """Blend weights maximising mean Jaccard on `examples` (scipy differential evolution: the objective is
    piecewise constant, so a gradient or simplex method stalls). Returns (weights, in-sample Jaccard)."""
    from scipy.optimize import differential_evolution

    if not len(examples):
        raise ValueError("no rows to tune blend weights on")
    contexts = examples["context"].tolist()

    def score(w) -> float:
        if np.sum(w) <= 0:
            return 0.0
        spans = decode_char_spans(blend_char_scores(scores, w), n_best_size, max_answer_chars)
        preds = ["" if a < 0 else c[a:b] for c, (a, b) in zip(contexts, spans, strict=True)]
        return mean_jaccard(preds, gold.tolist())

    equal = np.ones(len(scores)) / len(scores)
    res = differential_evolution(lambda w: -score(w), [(0.0, 1.0)] * len(scores), x0=equal, seed=seed,
                                 maxiter=maxiter, popsize=6, polish=False, tol=1e-6)
    best = res.x if -res.fun > score(equal) else equal   # never report weights worse than equal ones
    return best / best.sum(), score(best)


def cv_groups(examples: pd.DataFrame, folds: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Groups for cross-fitting: the training folds when the rows span 2 or more, else two halves of the contexts
    (articles never on both sides); None with a single context."""
    if len(np.unique(folds)) >= 2:
        return folds, "training folds"
    contexts = examples["context"].to_numpy()
    if len(set(contexts)) < 2:
        return None, "one context only: cannot cross-fit"
    from sklearn.model_selection import GroupKFold

    groups = np.zeros(len(examples), dtype=np.int64)
    for g, (_, held) in enumerate(GroupKFold(n_splits=2).split(contexts, groups=contexts)):
        groups[held] = g
    return groups, "two halves of the contexts (one training fold)"


def cross_fitted_spans(examples: pd.DataFrame, scores: list[CharScores], groups: np.ndarray,
                       cfg: BlendConfig = BlendConfig()) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Per group: weights tuned on the other groups' rows, applied to this group's rows. Returns the spans and
    {group: weights}; no row is ever scored with weights tuned on it."""
    ids = examples["id"].to_numpy()
    out = np.full((len(ids), 2), NO_SPAN[0], dtype=np.int64)
    found = {}
    for g in np.unique(groups):
        held = groups == g
        w, _ = tune_weights(examples[~held], [select_char_scores(s, ids[~held]) for s in scores],
                            examples["answer_text"][~held], cfg.n_best_size, cfg.max_answer_chars,
                            maxiter=cfg.tune_maxiter)
        out[held] = decode_char_spans(blend_char_scores([select_char_scores(s, ids[held]) for s in scores], w),
                                      cfg.n_best_size, cfg.max_answer_chars)
        found[str(g)] = [round(float(x), 4) for x in w]
    return out, found


def _score(examples: pd.DataFrame, spans: np.ndarray, rules: AnswerRules | None) -> dict:
    answers = answers_from_spans(examples, spans, rules)
    return {**{f"jaccard_{k}": v for k, v in
               jaccard_by_language(examples.assign(prediction=examples["id"].map(answers))).items()},
            "rows": len(examples)}


@dataclass
class BlendFit:
    """What `fit_blend` found: the per-language table, the chosen blend's per-row OOF, and blend.json's content."""
    table: pd.DataFrame                  # index: prediction; jaccard_all, jaccard_<language>..., rows
    oof: pd.DataFrame                    # id, fold, language, answer_text, prediction, jaccard
    settings: BlendSettings
    examples: pd.DataFrame               # the rows every backbone covers
    spans: dict[str, np.ndarray]         # candidate name -> spans on `examples`
    chosen: str

    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """blend.json, oof_blend.csv and blend_table.csv into `out_dir`, each written atomically."""
        out = Path(out_dir)
        return {"blend": self.settings.save(out / BLEND_JSON), "oof": write_csv(self.oof, out / OOF_BLEND),
                "table": write_csv(self.table.rename_axis("prediction").reset_index(), out / BLEND_TABLE)}


def candidates(ex: pd.DataFrame, at: dict[str, tuple[np.ndarray, CharScores]], folds: np.ndarray,
               cfg: BlendConfig) -> tuple[dict[str, np.ndarray], dict[str, dict], dict]:
    """Every scheme on the rows `ex` from each backbone's (spans, character scores) there, strongest backbone
    first: (spans per candidate, its blend.json settings, notes on the cross-fit)."""
    order = list(at)
    spans = {f"{b} alone": at[b][0] for b in order}
    settings = {f"{b} alone": dict(scheme="single", backbones=[b], weights={b: 1.0}) for b in order}
    cv = {}
    if len(order) < 2:
        return spans, settings, cv
    equal = {b: 1 / len(order) for b in order}
    scores = [at[b][1] for b in order]
    spans[EQUAL] = decode_char_spans(blend_char_scores(scores), cfg.n_best_size, cfg.max_answer_chars)
    settings[EQUAL] = dict(scheme="char", backbones=order, weights=equal)
    k = min(cfg.vote_k, len(order))     # 0: a majority (the winner's 2 of 3; 3 of 4, a tie to the strongest)
    vote = vote_name(len(order), k)
    spans[vote] = vote_spans(ex, [at[b][0] for b in order], k)
    settings[vote] = dict(scheme="vote", backbones=order, weights=equal, vote_k=k)
    groups, cv["cross_fitted_over"] = cv_groups(ex, folds)
    if cfg.tune_weights and groups is not None:
        spans[TUNED], cv["cross_fitted_weights"] = cross_fitted_spans(ex, scores, groups, cfg)
        w, in_sample = tune_weights(ex, scores, ex["answer_text"], cfg.n_best_size, cfg.max_answer_chars,
                                    maxiter=cfg.tune_maxiter)
        tuned = {b: round(float(x), 4) for b, x in zip(order, w, strict=True)}
        settings[TUNED] = dict(scheme="char", backbones=order, weights=tuned)
        cv["tuned_weights_all_rows"] = tuned                  # what the submission uses
        cv["tuned_in_sample_jaccard"] = round(in_sample, 4)   # optimistic: tuned and scored on the same rows
    return spans, settings, cv


def fit_blend(train: pd.DataFrame, run_dirs: list[str], cfg: BlendConfig = BlendConfig(),
              rules: AnswerRules | None = None) -> BlendFit:
    """Score every run, every backbone's merged OOF and every scheme; choose the scheme (see the module doc)."""
    runs = load_runs(train, run_dirs)
    table = {}
    for logits in runs.values():
        for name, x in logits.items():
            ex = train_rows(train, x.example_id)
            table[name] = _score(ex, group_spans(ex, merge_windows([x]), cfg), rules)
    merged = {b: merge_backbone(train, b, r, cfg) for b, r in runs.items()}
    for b, m in merged.items():
        if len(m.runs) > 1:
            mex = train_rows(train, m.ids)
            table[f"{b}, {len(m.runs)} runs merged"] = _score(mex, m.at(mex["id"])[0], rules)
    common = set.intersection(*(set(m.ids.tolist()) for m in merged.values()))
    if not common:
        raise ValueError(f"backbones {list(merged)} share no out-of-fold rows: train the same folds "
                         "(same n_folds and seed) for each")
    ex = train_rows(train, common)
    ids = ex["id"].to_numpy()
    at = {b: m.at(ids) for b, m in merged.items()}
    alone = {b: _score(ex, at[b][0], rules)["jaccard_all"] for b in merged}
    order = sorted(merged, key=lambda b: -alone[b])           # strongest first: the vote falls back on it
    fold_at = {b: merged[b].fold[pd.Index(merged[b].ids).get_indexer(ids)] for b in order}
    finest = max(order, key=lambda b: len(np.unique(fold_at[b])))   # the most folds: the finest cross-fit
    spans, settings, cv = candidates(ex, {b: at[b] for b in order}, fold_at[finest], cfg)
    if cv.get("cross_fitted_over") == "training folds":
        cv["cross_fitted_over"] += f" of {finest}"
    for name, s in spans.items():
        table[name] = _score(ex, s, rules)
    default = {"vote": next((n for n in spans if n.startswith("vote")), None), "char": EQUAL,
               "single": f"{order[0]} alone"}[default_scheme(len(order), cfg)]
    chosen = default
    if cfg.tune_weights:       # by out-of-fold score; a tie keeps the winner's default
        chosen = max(spans, key=lambda n: (table[n]["jaccard_all"], n == default))
    cv.update(rows=len(ex), default=default, chosen=chosen,
              candidates={n: round(table[n]["jaccard_all"], 4) for n in spans})
    blend = BlendSettings(**{"vote_k": min(cfg.vote_k, len(order)), **settings[chosen]},
                          n_best_size=cfg.n_best_size, max_answer_length=cfg.max_answer_length,
                          max_answer_chars=cfg.max_answer_chars,
                          rules=asdict(rules or AnswerRules()),
                          runs={b: merged[b].runs for b in order}, cv=cv)
    answers = answers_from_spans(ex, spans[chosen], rules)
    oof = ex[["id", "language", "answer_text"]].assign(fold=fold_at[finest], prediction=ex["id"].map(answers))
    oof["jaccard"] = [jaccard(p, a) for p, a in zip(oof["prediction"], oof["answer_text"], strict=True)]
    frame = pd.DataFrame(table).T
    frame["rows"] = frame["rows"].astype(int)
    return BlendFit(frame, oof[["id", "fold", "language", "answer_text", "prediction", "jaccard"]], blend, ex, spans,
                    chosen)


def plot_table(table: pd.DataFrame, path: str | Path | None = None):
    """Grouped bars: Jaccard per language of each row of the table; saved to `path` if given."""
    scores = table[[c for c in table.columns if c.startswith("jaccard_")]]
    ax = scores.rename(columns=lambda c: c.removeprefix("jaccard_")).plot.barh(figsize=(8, 1 + 0.6 * len(table)))
    ax.set_xlabel("out-of-fold Jaccard")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig = ax.get_figure()
    fig.tight_layout()
    if path:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=100)
    return fig
