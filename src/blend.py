"""Combine the predictions of several models: token-level, character-level, and a word vote across backbones.

- Models that share a tokenizer and window settings produce aligned windows: their logits are averaged position by
  position (`average_logits`), then decoded exactly as one model (`postprocess.best_spans`).
- Models with different tokenizers are blended at character level: every character of a context takes the
  start/end logit of the token covering it (averaged over the windows covering it), scores are averaged over models
  with weights, and the best span is decoded over characters where some token starts/ends (`char_blend_spans`).
- Across backbones the winner voted per word: a context word stays if at least k of the n backbone blends cover it,
  and the answer is the best contiguous run of kept words (`vote_span`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_path
from .metric import jaccard_by_language, mean_jaccard
from .postprocess import NO_SPAN, AnswerRules, answers_from_spans, best_spans
from .predict import MODEL_CONFIG, NO_OFFSET, WindowLogits, predict_examples, share_offsets


@dataclass(frozen=True)
class BlendConfig:
    """How predictions are combined; the defaults are the winner's settings."""
    n_best_size: int = 20
    max_answer_length: int = 30     # tokens, for a token-level decode
    max_answer_chars: int = 100     # characters, for a character-level decode (99% of XQuAD-hi answers: <= 94)
    vote_k: int = 2                 # a word stays if >= vote_k backbone blends keep it (the winner: 2 of 3)
    vote_min_backbones: int = 3     # with fewer backbones there is no majority: blend all at character level


# ---------------------------------------------------------------------------------------------- token level

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
    w = _weights(weights, len(logits))
    start = sum(wi * x.start.astype(np.float32) for wi, x in zip(w, logits))
    end = sum(wi * x.end.astype(np.float32) for wi, x in zip(w, logits))
    return logits[0].with_logits(start, end)


def _weights(weights, n: int) -> np.ndarray:
    w = np.asarray(weights if weights is not None else [1.0] * n, dtype=np.float64)
    if len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} models")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be >= 0 and not all 0, got {w.tolist()}")
    return w / w.sum()


# ---------------------------------------------------------------------------------------------- character level

@dataclass
class CharScores:
    """Start/end scores on the characters of each example's context, flat over examples.

    Example i owns characters bounds[i]:bounds[i+1]. Each character takes the score of the token covering it; a
    span may only start (end) where a token starts (ends), so only those scores are kept: `start` is NaN where
    no token starts, `end` where none ends, and `covered` says which characters some token covers."""
    ids: np.ndarray         # (m,) example ids
    bounds: np.ndarray      # (m + 1,) int64
    start: np.ndarray       # (total,) float32
    end: np.ndarray         # (total,) float32
    covered: np.ndarray     # (total,) bool


def _window_index(logits: WindowLogits, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows grouped by example: windows of ids[i] are order[ptr[i]:ptr[i+1]]."""
    code = pd.Index(ids).get_indexer(logits.example_id)
    order = np.argsort(code, kind="stable")
    order = order[code[order] >= 0]
    ptr = np.searchsorted(code[order], np.arange(len(ids) + 1))
    return order, ptr


def _mean_over_windows(window: np.ndarray, pos: np.ndarray, value: np.ndarray, total: int) -> np.ndarray:
    """Per character: the best token at `pos` within a window (XLM-R's lone "▁" token shares its start with
    the next token), then the mean over windows; NaN where no token is."""
    key = window * total + pos
    uniq, inv = np.unique(key, return_inverse=True)
    best = np.full(len(uniq), -np.inf)
    np.maximum.at(best, inv, value)
    p = uniq % total
    count = np.bincount(p, minlength=total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.bincount(p, best, total) / count).astype(np.float32)


def char_scores(ids, context_lengths, logits: WindowLogits, windows: np.ndarray | None = None) -> CharScores:
    """Map one model's token logits onto the characters of each context (averaged over the windows that cover
    them). `windows` restricts to a subset of window rows (for chunking)."""
    ids = np.asarray(ids)
    lengths = np.asarray(context_lengths, dtype=np.int64)
    bounds = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    total = int(bounds[-1])
    if windows is None:
        windows = np.arange(len(logits))
    code = pd.Index(ids).get_indexer(logits.example_id[windows])
    windows, code = windows[code >= 0], code[code >= 0]
    off = logits.offsets[windows]                                   # (w, L, 2)
    a, b = off[..., 0].astype(np.int64), off[..., 1].astype(np.int64)
    tok = (a != NO_OFFSET) & (b > a)
    code_tok = np.broadcast_to(code[:, None], a.shape)[tok]
    if tok.any() and (b[tok] > lengths[code_tok]).any():
        raise ValueError("token offsets run past the end of their context: logits and examples do not match")
    window = np.broadcast_to(np.arange(len(windows))[:, None], a.shape)[tok]
    a, b = a[tok] + bounds[code_tok], b[tok] + bounds[code_tok]
    s = logits.start[windows][tok].astype(np.float64)
    e = logits.end[windows][tok].astype(np.float64)
    edges = np.bincount(a, minlength=total + 1) - np.bincount(b, minlength=total + 1)
    covered = np.cumsum(edges)[:total] > 0
    return CharScores(ids, bounds, _mean_over_windows(window, a, s, max(total, 1)),
                      _mean_over_windows(window, b - 1, e, max(total, 1)), covered)


def blend_char_scores(scores: list[CharScores], weights: list[float] | None = None) -> CharScores:
    """Weighted mean over models. A span may start (end) only where every model covering that character has a
    token start (end): allowing any model's boundary lets a finer tokenizer's mid-word boundary inherit a coarser
    model's whole-word score and win (tests/test_blend.py shows it). Words are token boundaries for all these
    tokenizers, so every whole word stays possible."""
    w = _weights(weights, len(scores))
    first = scores[0]
    for i, x in enumerate(scores[1:], start=1):
        if not np.array_equal(x.bounds, first.bounds):
            raise ValueError(f"model {i} was mapped onto other examples than model 0")
    out = []
    for field in ("start", "end"):
        total = np.zeros(len(first.start))
        norm = np.zeros(len(first.start))
        ok = np.ones(len(first.start), dtype=bool)
        for wi, x in zip(w, scores):
            v = getattr(x, field)
            has = ~np.isnan(v)
            total[has] += wi * v[has]
            norm[has] += wi
            ok &= has | ~x.covered
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(ok & (norm > 0), total / norm, np.nan).astype(np.float32))
    return CharScores(first.ids, first.bounds, out[0], out[1], np.logical_or.reduce([x.covered for x in scores]))


def decode_char_spans(cs: CharScores, n_best_size: int = 20, max_answer_chars: int = 100) -> np.ndarray:
    """(m, 2) best span [start, end) per example: top-k start characters x top-k end characters (where tokens
    start/end), end >= start, at most `max_answer_chars`; ties go to the earlier character."""
    out = np.full((len(cs.ids), 2), NO_SPAN[0], dtype=np.int64)
    for i in range(len(cs.ids)):
        lo, hi = cs.bounds[i], cs.bounds[i + 1]
        s, e = cs.start[lo:hi], cs.end[lo:hi]
        starts, ends = np.flatnonzero(~np.isnan(s)), np.flatnonzero(~np.isnan(e))
        if not len(starts) or not len(ends):
            continue
        starts = starts[np.argsort(-s[starts], kind="stable")[:n_best_size]]
        ends = ends[np.argsort(-e[ends], kind="stable")[:n_best_size]]
        score = s[starts][:, None] + e[ends][None, :]
        length = ends[None, :] - starts[:, None] + 1
        score = np.where((length >= 1) & (length <= max_answer_chars), score, -np.inf)
        best = int(score.argmax())
        if np.isfinite(score.flat[best]):
            out[i] = starts[best // len(ends)], ends[best % len(ends)] + 1
    return out


def char_blend_spans(examples: pd.DataFrame, logits: list[WindowLogits], weights: list[float] | None = None,
                     n_best_size: int = 20, max_answer_chars: int = 100, chunk: int = 256) -> np.ndarray:
    """Character-level blend of models with any tokenizers -> (n_examples, 2) spans. Works through `chunk`
    examples at a time, so memory stays that of the logits themselves."""
    ids = examples["id"].to_numpy()
    lengths = examples["context"].str.len().to_numpy()
    index = [_window_index(x, ids) for x in logits]
    out = np.full((len(ids), 2), NO_SPAN[0], dtype=np.int64)
    for c in range(0, len(ids), chunk):
        sl = slice(c, c + chunk)
        per_model = [char_scores(ids[sl], lengths[sl], x, order[ptr[c]:ptr[min(c + chunk, len(ids))]])
                     for x, (order, ptr) in zip(logits, index)]
        out[sl] = decode_char_spans(blend_char_scores(per_model, weights), n_best_size, max_answer_chars)
    return out


def tune_weights(examples: pd.DataFrame, scores: list[CharScores], gold: pd.Series, n_best_size: int = 20,
                 max_answer_chars: int = 100, seed: int = 0, maxiter: int = 15) -> tuple[np.ndarray, float]:
    """Blend weights maximising mean Jaccard on out-of-fold predictions (scipy differential evolution: the
    objective is piecewise constant, so a gradient or simplex method stalls). Returns (weights, Jaccard)."""
    from scipy.optimize import differential_evolution

    contexts = examples["context"].tolist()

    def score(w) -> float:
        if np.sum(w) <= 0:
            return 0.0
        spans = decode_char_spans(blend_char_scores(scores, w), n_best_size, max_answer_chars)
        preds = ["" if a < 0 else c[a:b] for c, (a, b) in zip(contexts, spans)]
        return mean_jaccard(preds, gold.tolist())

    equal = np.ones(len(scores)) / len(scores)
    res = differential_evolution(lambda w: -score(w), [(0.0, 1.0)] * len(scores), x0=equal, seed=seed,
                                 maxiter=maxiter, popsize=6, polish=False, tol=1e-6)
    best = res.x if -res.fun > score(equal) else equal   # never report weights worse than equal ones
    return best / best.sum(), score(best)


# ---------------------------------------------------------------------------------------------- word vote

WORD = re.compile(r"\S+")


def vote_span(context: str, spans: list[tuple[int, int]], k: int = 2, fallback: int = 0) -> tuple[int, int]:
    """Word-level vote of n answer spans over one context.

    A context word (whitespace-separated, as the metric splits) is kept if at least `k` spans overlap it. The
    answer is the contiguous run of kept words with the most votes (ties: the longer, then the earlier run). With
    no kept word the answer is `spans[fallback]` (put the strongest backbone first); empty spans vote for nothing.
    """
    if not 1 <= k <= len(spans):
        raise ValueError(f"vote needs 1 <= k <= n, got k={k} for n={len(spans)} answers")
    words = np.array([m.span() for m in WORD.finditer(context)], dtype=np.int64).reshape(-1, 2)
    votes = np.zeros(len(words), dtype=np.int64)
    for a, b in spans:
        if 0 <= a < b:
            votes += (words[:, 0] < b) & (words[:, 1] > a)
    kept = votes >= k
    if not kept.any():
        return tuple(int(x) for x in spans[fallback])
    best, run = None, None
    for i in range(len(words) + 1):
        if i < len(words) and kept[i]:
            run = run if run is not None else i
            continue
        if run is not None:
            key = (int(votes[run:i].sum()), i - run, -run)
            if best is None or key > best[0]:
                best = (key, run, i - 1)
            run = None
    _, first, last = best
    return int(words[first, 0]), int(words[last, 1])


def vote_spans(examples: pd.DataFrame, spans: list[np.ndarray], k: int = 2) -> np.ndarray:
    """`vote_span` per example over the (n_examples, 2) spans of each backbone blend."""
    return np.array([vote_span(c, [s[i] for s in spans], k) for i, c in enumerate(examples["context"])],
                    dtype=np.int64).reshape(-1, 2)


# ---------------------------------------------------------------------------------------------- end to end

def blend_spans(examples: pd.DataFrame, logits: list[WindowLogits], weights: list[float] | None = None,
                cfg: BlendConfig = BlendConfig()) -> np.ndarray:
    """One set of spans from several models: token-level when all windows align, else character level."""
    if all(same_windows(logits[0], x) for x in logits[1:]):
        return best_spans(examples["id"].to_numpy(), average_logits(logits, weights), cfg.n_best_size,
                          cfg.max_answer_length)
    return char_blend_spans(examples, logits, weights, cfg.n_best_size, cfg.max_answer_chars)


def ensemble_spans(examples: pd.DataFrame, logits: list[WindowLogits], backbones: list[str],
                   weights: list[float] | None = None, cfg: BlendConfig = BlendConfig()) -> np.ndarray:
    """The winner's scheme: blend within each backbone, then vote across backbones (k of n) when there are at
    least `cfg.vote_min_backbones` of them; with fewer, one character-level blend of all models."""
    names = list(dict.fromkeys(backbones))
    w = list(weights) if weights is not None else [1.0] * len(logits)
    if len(names) < max(cfg.vote_min_backbones, 2):
        return blend_spans(examples, logits, w, cfg)
    per_backbone = []
    for name in names:
        idx = [i for i, b in enumerate(backbones) if b == name]
        per_backbone.append(blend_spans(examples, [logits[i] for i in idx], [w[i] for i in idx], cfg))
    return vote_spans(examples, per_backbone, cfg.vote_k)


def model_backbone(model_dir: str | Path) -> str:
    """The backbone a fine-tuned model directory was trained from (its chaii_config.json), else its folder name."""
    cfg = Path(model_dir) / MODEL_CONFIG
    if cfg.exists():
        return json.loads(cfg.read_text())["backbone"]
    return Path(model_dir).name


def predict_answers(examples: pd.DataFrame, model_dirs: list[str], weights: list[float] | None = None,
                    n_best_size: int = 20, max_answer_length: int = 30, batch_size: int = 64,
                    cfg: BlendConfig | None = None, rules: AnswerRules | None = None) -> dict[str, str]:
    """Answer per example id from one or more fine-tuned model directories (see `ensemble_spans`)."""
    cfg = cfg or BlendConfig(n_best_size=n_best_size, max_answer_length=max_answer_length)
    logits = share_offsets([predict_examples(d, examples, batch_size) for d in model_dirs])
    spans = ensemble_spans(examples, logits, [model_backbone(d) for d in model_dirs], weights, cfg)
    return answers_from_spans(examples, spans, rules)


# ---------------------------------------------------------------------------------------------- reports

def run_name(run_dir: str | Path) -> str:
    return "/".join(Path(run_dir).parts[-2:])


def run_backbone(run_dir: str | Path) -> str:
    """Backbone of a training run folder (metrics.json), else the folder above `fold<k>`."""
    m = Path(run_dir) / "metrics.json"
    if m.exists():
        return json.loads(m.read_text())["config"]["backbone"]
    return Path(run_dir).parent.name


def oof_spans(train: pd.DataFrame, run_dirs: list[str], weights: list[float] | None = None,
              cfg: BlendConfig = BlendConfig(), tune: bool = False) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Out-of-fold answer spans on the ids all runs share: each run, each backbone's blend (with >= 2 runs), the
    blend of all runs (character level when tokenizers differ), the vote across backbones (with >= 2 backbones)
    and, with `tune`, the blend with weights tuned on these same predictions (optimistic: in-sample).
    Returns (the shared examples, {name: (n, 2) spans})."""
    logits = {run_name(d): WindowLogits.load(Path(d) / "oof_logits.npz") for d in run_dirs}
    backbone = {run_name(d): run_backbone(d) for d in run_dirs}
    shared = set.intersection(*(set(x.example_id) for x in logits.values()))
    examples = train[train["id"].isin(shared)].reset_index(drop=True)
    ids = examples["id"].to_numpy()
    spans = {n: best_spans(ids, x, cfg.n_best_size, cfg.max_answer_length) for n, x in logits.items()}
    w = dict(zip(logits, weights)) if weights is not None else {n: 1.0 for n in logits}
    names = list(dict.fromkeys(backbone.values()))
    per_backbone = []
    for b in names:
        members = [n for n in logits if backbone[n] == b]
        per_backbone.append(spans[members[0]])
        if len(members) > 1:
            per_backbone[-1] = spans[f"blend {b}"] = blend_spans(
                examples, [logits[n] for n in members], [w[n] for n in members], cfg)
    if len(logits) > 1:
        spans["blend all (char level)" if len(names) > 1 else "blend all"] = blend_spans(
            examples, list(logits.values()), list(w.values()), cfg)
    if len(names) > 1:
        k = min(cfg.vote_k, len(names))
        spans[f"vote {k} of {len(names)}"] = vote_spans(examples, per_backbone, k)
    if tune and len(logits) > 1:
        cs = [char_scores(ids, examples["context"].str.len().to_numpy(), x) for x in logits.values()]
        tuned, _ = tune_weights(examples, cs, examples["answer_text"], cfg.n_best_size, cfg.max_answer_chars)
        name = "blend all, tuned weights " + ",".join(f"{x:.2f}" for x in tuned) + " (in-sample)"
        spans[name] = decode_char_spans(blend_char_scores(cs, tuned), cfg.n_best_size, cfg.max_answer_chars)
    return examples, spans


def score_spans(examples: pd.DataFrame, spans: dict[str, np.ndarray], rules: AnswerRules | None = None) -> pd.DataFrame:
    """Jaccard per language (columns) of each set of spans (rows)."""
    rows = {name: _score(examples, s, rules) for name, s in spans.items()}
    return pd.DataFrame(rows).T.rename(columns=lambda c: f"jaccard_{c}")


def oof_report(train: pd.DataFrame, run_dirs: list[str], weights: list[float] | None = None,
               n_best_size: int = 20, max_answer_length: int = 30, cfg: BlendConfig | None = None,
               tune: bool = False) -> pd.DataFrame:
    """Jaccard per language of every row of `oof_spans`."""
    cfg = cfg or BlendConfig(n_best_size=n_best_size, max_answer_length=max_answer_length)
    return score_spans(*oof_spans(train, run_dirs, weights, cfg, tune))


def plot_report(report: pd.DataFrame, path: str | Path | None = None):
    """Grouped bars: Jaccard per language for each single model, blend and vote; saved to `path` if given."""
    ax = report.rename(columns=lambda c: c.removeprefix("jaccard_")).plot.barh(figsize=(8, 1 + 0.6 * len(report)))
    ax.set_xlabel("out-of-fold Jaccard")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig = ax.get_figure()
    fig.tight_layout()
    if path:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=100)
    return fig


def _score(examples: pd.DataFrame, spans: np.ndarray, rules: AnswerRules | None = None) -> dict:
    answers = answers_from_spans(examples, spans, rules)
    return jaccard_by_language(examples.assign(prediction=examples["id"].map(answers)))

