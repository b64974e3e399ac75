"""Combine the predictions of several models: token-level, character-level, and a word vote across backbones.

Pure functions over per-window logits (`WindowLogits`) and character spans; fitting the blend on out-of-fold
predictions is `blend_fit.py`, inference from model folders `ensemble.py`.

- Models that share a tokenizer and window settings produce aligned windows: their logits are averaged position by
  position (`average_logits`), then decoded exactly as one model (`postprocess.best_spans`).
- Models with different tokenizers are blended at character level: every character of a context takes the
  start/end logit of the token covering it (averaged over the windows covering it), scores are averaged over models
  with weights, and the best span is decoded over characters where some token starts/ends (`char_blend_spans`).
- Across backbones the winner voted per word: a context word stays if at least k of the n backbone blends cover it,
  and the answer is the best contiguous run of kept words (`vote_span`).
- `ensemble_spans` puts them together: models averaged within each backbone, then one of the schemes "vote",
  "char" (backbones blended per character, with weights) or "single" (one backbone alone).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .postprocess import NO_SPAN, best_spans
from .predict import NO_OFFSET, WindowLogits

SCHEMES = ("vote", "char", "single")


@dataclass(frozen=True)
class BlendConfig:
    """How predictions are combined and fitted; the defaults are the winner's settings."""
    n_best_size: int = 20
    max_answer_length: int = 30     # tokens, for a token-level decode
    max_answer_chars: int = 100     # characters, for a character-level decode (99% of XQuAD-hi answers: <= 94)
    vote_k: int = 2                 # a word stays if >= vote_k backbone blends keep it (the winner: 2 of 3)
    vote_min_backbones: int = 3     # with fewer backbones there is no majority: blend all at character level
    tune_weights: bool = True       # fit_blend: tune backbone weights (cross-fitted) and pick the scheme by OOF score
    tune_maxiter: int = 15          # differential evolution generations per tuning


def default_scheme(n_backbones: int, cfg: BlendConfig = BlendConfig()) -> str:
    """The winner's combination: a word vote with >= `cfg.vote_min_backbones` backbones (2 of 3), else one
    character-level blend; a single backbone is used alone."""
    if n_backbones >= max(cfg.vote_min_backbones, 2):
        return "vote"
    return "char" if n_backbones > 1 else "single"


def run_name(run_dir: str | Path) -> str:
    """A training run's name in tables and blend.json: "<backbone>/fold<k>" (its last two folders)."""
    return "/".join(Path(run_dir).parts[-2:])


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
    scores, w = [x for x, wi in zip(scores, w) if wi > 0], w[w > 0]   # weight 0: no say, not even on boundaries
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
    """Character-level blend of models with any tokenizers -> (n_examples, 2) spans."""
    return nested_char_spans(examples, [([x], [1.0]) for x in logits], weights, n_best_size, max_answer_chars, chunk)


Group = tuple[list[WindowLogits], list[float]]   # one backbone's models and their weights within it


def merge_windows(members: list[WindowLogits], weights: list[float] | None = None) -> Group:
    """One backbone's models as few logits as possible: their token-level mean when all windows match (the
    winner's average within a backbone), else the models themselves, to be blended per character."""
    w = _weights(weights, len(members)).tolist()
    if all(same_windows(members[0], x) for x in members[1:]):
        return [average_logits(members, w) if len(members) > 1 else members[0]], [1.0]
    return list(members), w


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
                                        for x, (order, ptr) in zip(members, idx)], w)
                     for (members, w), idx in zip(groups, index)]
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




# ---------------------------------------------------------------------------------------------- schemes

def blend_spans(examples: pd.DataFrame, logits: list[WindowLogits], weights: list[float] | None = None,
                cfg: BlendConfig = BlendConfig()) -> np.ndarray:
    """One set of spans from several models: token-level when all windows align, else character level."""
    if all(same_windows(logits[0], x) for x in logits[1:]):
        return best_spans(examples["id"].to_numpy(), average_logits(logits, weights), cfg.n_best_size,
                          cfg.max_answer_length)
    return char_blend_spans(examples, logits, weights, cfg.n_best_size, cfg.max_answer_chars)


def group_spans(examples: pd.DataFrame, group: Group, cfg: BlendConfig = BlendConfig()) -> np.ndarray:
    """Spans of one backbone: decoded as one model when its windows merged, else per character."""
    members, _ = group
    if len(members) == 1:
        return best_spans(examples["id"].to_numpy(), members[0], cfg.n_best_size, cfg.max_answer_length)
    return nested_char_spans(examples, [group], None, cfg.n_best_size, cfg.max_answer_chars)


def ensemble_spans(examples: pd.DataFrame, logits: list[WindowLogits], backbones: list[str],
                   weights: list[float] | None = None, cfg: BlendConfig = BlendConfig(), scheme: str | None = None,
                   backbone_weights: dict[str, float] | None = None) -> np.ndarray:
    """Spans from models of one or more backbones (`backbones[i]` is model i's).

    Models are averaged within each backbone (`merge_windows`, with `weights` per model), then combined by
    `scheme`: "vote" (word vote, k = `cfg.vote_k` of n backbones; no kept word -> the first backbone's answer),
    "char" (backbones blended per character with `backbone_weights`, default equal) or "single" (the first
    backbone alone). None: `default_scheme` (the winner's: vote with 3 backbones). Backbones count in order of
    first appearance, so put the strongest first."""
    names = list(dict.fromkeys(backbones))
    scheme = scheme or default_scheme(len(names), cfg)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown blend scheme {scheme!r}; expected one of {SCHEMES}")
    w = list(weights) if weights is not None else [1.0] * len(logits)
    if len(w) != len(logits):
        raise ValueError(f"{len(w)} weights for {len(logits)} models")
    if scheme == "single":
        names = names[:1]
    groups = [merge_windows([x for x, b in zip(logits, backbones) if b == name],
                            [wi for wi, b in zip(w, backbones) if b == name]) for name in names]
    if scheme == "vote":
        return vote_spans(examples, [group_spans(examples, g, cfg) for g in groups], min(cfg.vote_k, len(groups)))
    bw = [backbone_weights[n] for n in names] if backbone_weights else [1.0] * len(names)
    groups, bw = [g for g, x in zip(groups, bw) if x > 0], [x for x in bw if x > 0]   # weight 0: not used at all
    if len(groups) == 1:
        return group_spans(examples, groups[0], cfg)
    return nested_char_spans(examples, groups, bw, cfg.n_best_size, cfg.max_answer_chars)
