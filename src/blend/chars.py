"""Character-level blending: models with different tokenizers combined on the characters of each context.

Every character takes the start/end logit of the token covering it (averaged over the windows covering it);
scores are averaged over models with weights, and the best span is decoded over characters where tokens
start/end (`char_blend_spans`). `nested_char_spans` does it for groups (backbones) of models.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from src.infer.postprocess import NO_SPAN
from src.infer.predict import NO_OFFSET, WindowLogits

Group = tuple[list[WindowLogits], list[float]]   # one backbone's models and their weights within it


def normalized_weights(weights, n: int) -> np.ndarray:
    """`weights` (None: equal) checked and scaled to sum 1."""
    w = np.asarray(weights if weights is not None else [1.0] * n, dtype=np.float64)
    if len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} models")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be >= 0 and not all 0, got {w.tolist()}")
    return w / w.sum()


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
    w = normalized_weights(weights, len(scores))
    first = scores[0]
    for i, x in enumerate(scores[1:], start=1):
        if not np.array_equal(x.bounds, first.bounds):
            raise ValueError(f"model {i} was mapped onto other examples than model 0")
    # weight 0: no say, not even on boundaries
    scores, w = [x for x, wi in zip(scores, w, strict=True) if wi > 0], w[w > 0]
    out = []
    for field in ("start", "end"):
        total = np.zeros(len(first.start))
        norm = np.zeros(len(first.start))
        ok = np.ones(len(first.start), dtype=bool)
        for wi, x in zip(w, scores, strict=True):
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
    """Character-level blend of models with any tokenizers -> (n_examples, 2) spans."""
    return nested_char_spans(examples, [([x], [1.0]) for x in logits], weights, n_best_size, max_answer_chars, chunk)


def nested_char_spans(examples: pd.DataFrame, groups: list[Group], weights: list[float] | None = None,
                      n_best_size: int = 20, max_answer_chars: int = 100, chunk: int = 256) -> np.ndarray:
    """Character-level blend of groups (backbones) of models: character scores averaged within each group with
    its weights, then across groups with `weights`. Works through `chunk` examples at a time, so memory stays
    that of the logits themselves."""
    ids = examples["id"].to_numpy()
    lengths = examples["context"].str.len().to_numpy()
    index = [[_window_index(x, ids) for x in members] for members, _ in groups]
    out = np.full((len(ids), 2), NO_SPAN[0], dtype=np.int64)
    for c in range(0, len(ids), chunk):
        sl, stop = slice(c, c + chunk), min(c + chunk, len(ids))
        per_group = [blend_char_scores([char_scores(ids[sl], lengths[sl], x, order[ptr[c]:ptr[stop]])
                                        for x, (order, ptr) in zip(members, idx, strict=True)], w)
                     for (members, w), idx in zip(groups, index, strict=True)]
        out[sl] = decode_char_spans(blend_char_scores(per_group, weights), n_best_size, max_answer_chars)
    return out


def group_char_scores(ids, context_lengths, group: Group) -> CharScores:
    """Character scores of one group (backbone) over the examples `ids`, all at once (no chunking)."""
    members, w = group
    return blend_char_scores([char_scores(ids, context_lengths, x) for x in members], w)


def concat_char_scores(parts: list[CharScores]) -> CharScores:
    """The examples of several CharScores one after the other (e.g. the held-out folds of one backbone)."""
    lengths = np.concatenate([np.diff(p.bounds) for p in parts])
    return CharScores(np.concatenate([p.ids for p in parts]), np.r_[0, np.cumsum(lengths)].astype(np.int64),
                      *(np.concatenate([getattr(p, f) for p in parts]) for f in ("start", "end", "covered")))


def select_char_scores(cs: CharScores, ids) -> CharScores:
    """The examples `ids` of `cs`, in that order; an id that `cs` lacks is an error."""
    ids = np.asarray(ids)
    pos = pd.Index(cs.ids).get_indexer(ids)
    if (pos < 0).any():
        raise ValueError(f"no character scores for example {ids[pos < 0][0]!r}")
    lengths = np.diff(cs.bounds)[pos]
    bounds = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    src = np.repeat(cs.bounds[pos] - bounds[:-1], lengths) + np.arange(bounds[-1])
    return CharScores(ids, bounds, cs.start[src], cs.end[src], cs.covered[src])
