"""Combine the predictions of several models: token-level, character-level, and a word vote across backbones.

Pure functions over per-window logits (`WindowLogits`) and character spans; fitting the blend on out-of-fold
predictions is `blend_fit.py`, inference from model folders `ensemble.py`.

- Models that share a tokenizer and window settings produce aligned windows: their logits are averaged position by
  position (`average_logits`), then decoded exactly as one model (`postprocess.best_spans`).
- Models with different tokenizers are blended at character level (`char_blend.py`, re-exported here).
- Across backbones the winner voted per word: a context word stays if at least k of the n backbone blends cover it,
  and the answer is the best contiguous run of kept words (`vote_span`). His k was 2 of 3, a majority; the default
  keeps a majority for any n (`vote_threshold`): 3 of 4, a 2-2 tie going to the strongest backbone's side.
- `ensemble_spans` puts them together: models averaged within each backbone, then one of the schemes "vote",
  "char" (backbones blended per character, with weights) or "single" (one backbone alone).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from src.blend.chars import (  # noqa: F401
    CharScores,
    Group,
    blend_char_scores,
    char_blend_spans,
    char_scores,
    concat_char_scores,
    decode_char_spans,
    group_char_scores,
    nested_char_spans,
    normalized_weights,
    select_char_scores,
)
from src.infer.postprocess import best_spans
from src.infer.predict import WindowLogits

SCHEMES = ("vote", "char", "single")


@dataclass(frozen=True)
class BlendConfig:
    """How predictions are combined and fitted; the defaults are the winner's settings."""
    n_best_size: int = 20
    max_answer_length: int = 30     # tokens, for a token-level decode
    max_answer_chars: int = 100     # characters, for a character-level decode (99% of XQuAD-hi answers: <= 94)
    # a word stays if >= vote_k backbone blends keep it; 0: a majority of them (`vote_threshold`): the winner's 2 of
    # 3, and 3 of 4 with a fourth family, a 2-2 tie decided by the strongest backbone
    vote_k: int = 0
    vote_min_backbones: int = 3     # with fewer backbones there is no majority: blend all at character level
    tune_weights: bool = True       # fit_blend: tune backbone weights (cross-fitted) and pick the scheme by OOF score
    tune_maxiter: int = 15          # differential evolution generations per tuning


def default_scheme(n_backbones: int, cfg: BlendConfig = BlendConfig()) -> str:
    """The winner's combination: a word vote with >= `cfg.vote_min_backbones` backbones (2 of 3; 3 of 4 with a
    fourth family, `vote_threshold`), else one character-level blend; a single backbone is used alone."""
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
    w = normalized_weights(weights, len(logits))
    start = sum(wi * x.start.astype(np.float32) for wi, x in zip(w, logits, strict=True))
    end = sum(wi * x.end.astype(np.float32) for wi, x in zip(w, logits, strict=True))
    return logits[0].with_logits(start, end)


def merge_windows(members: list[WindowLogits], weights: list[float] | None = None) -> Group:
    """One backbone's models as few logits as possible: their token-level mean when all windows match (the
    winner's average within a backbone), else the models themselves, to be blended per character."""
    w = normalized_weights(weights, len(members)).tolist()
    if all(same_windows(members[0], x) for x in members[1:]):
        return [average_logits(members, w) if len(members) > 1 else members[0]], [1.0]
    return list(members), w


# ---------------------------------------------------------------------------------------------- word vote

WORD = re.compile(r"\S+")


def vote_threshold(n: int, k: int = 0) -> tuple[int, bool]:
    """(votes a word needs, whether a word with exactly half of the n votes stays when the strongest backbone is
    among them) for a vote of n backbones; k = 0 is a majority, any other k is exactly "k of n".

    Why a majority with the strongest's casting vote for four families (and any n): the winner's 2 of 3 is a
    majority, and a word kept by a majority cannot lose to a disjoint run of kept words. "2 of 4" would keep two
    disjoint pairs' answers, one picked by length; "3 of 4" alone would fall back to the strongest backbone's own
    answer on every 2-2 split, even where one other family agrees with it. Deciding the tie for the strongest side
    is the winner's own tie-break (no kept word: the strongest backbone's answer). With odd n there is no tie, so
    3 families vote exactly as he did. Two backbones need both (2 of 2, as before): a casting vote would make the
    vote the strongest backbone alone. The character-level blend of the families stays a candidate beside the
    vote: `fit.fit_blend` scores it, each family alone and the vote out of fold and keeps the best.
    """
    if n < 1:
        raise ValueError("a vote needs at least one answer")
    if k == 0:
        return n // 2 + 1, n % 2 == 0 and n >= 4
    if not 1 <= k <= n:
        raise ValueError(f"vote needs 1 <= k <= n (or k=0, a majority), got k={k} for n={n} answers")
    return k, False


def vote_name(n: int, k: int = 0, of: str = "") -> str:
    """The vote's name in tables: 'vote 2 of 3', 'vote 3 of 4 families, a tie to the strongest'."""
    need, tie = vote_threshold(n, k)
    return f"vote {need} of {n}{' ' + of if of else ''}" + (", a tie to the strongest" if tie else "")


def vote_span(context: str, spans: list[tuple[int, int]], k: int = 0, fallback: int = 0) -> tuple[int, int]:
    """Word-level vote of n answer spans over one context.

    A context word (whitespace-separated, as the metric splits) is kept if at least `k` spans overlap it; k = 0:
    a majority, and with an even n >= 4 also a word exactly half of them overlap when `spans[fallback]` is one of
    them (`vote_threshold`). The answer is the contiguous run of kept words with the most votes (ties: the longer,
    then the earlier run). With no kept word the answer is `spans[fallback]` (put the strongest backbone first);
    empty spans vote for nothing.
    """
    need, tie = vote_threshold(len(spans), k)
    words = np.array([m.span() for m in WORD.finditer(context)], dtype=np.int64).reshape(-1, 2)
    covers = np.zeros((len(spans), len(words)), dtype=bool)
    for i, (a, b) in enumerate(spans):
        if 0 <= a < b:
            covers[i] = (words[:, 0] < b) & (words[:, 1] > a)
    votes = covers.sum(axis=0)
    kept = votes >= need
    if tie:
        kept |= (2 * votes == len(spans)) & covers[fallback]
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


def vote_spans(examples: pd.DataFrame, spans: list[np.ndarray], k: int = 0) -> np.ndarray:
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
    `scheme`: "vote" (word vote, k = `cfg.vote_k` of n backbones, 0 a majority with the first backbone deciding a
    tie; no kept word -> the first backbone's answer),
    "char" (backbones blended per character with `backbone_weights`, default equal) or "single" (the first
    backbone alone). None: `default_scheme` (the winner's: vote with 3 or more backbones). Backbones count in order
    of first appearance, so put the strongest first."""
    names = list(dict.fromkeys(backbones))
    scheme = scheme or default_scheme(len(names), cfg)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown blend scheme {scheme!r}; expected one of {SCHEMES}")
    w = list(weights) if weights is not None else [1.0] * len(logits)
    if len(w) != len(logits):
        raise ValueError(f"{len(w)} weights for {len(logits)} models")
    if scheme == "single":
        names = names[:1]
    groups = [merge_windows([x for x, b in zip(logits, backbones, strict=True) if b == name],
                            [wi for wi, b in zip(w, backbones, strict=True) if b == name]) for name in names]
    if scheme == "vote":
        return vote_spans(examples, [group_spans(examples, g, cfg) for g in groups], min(cfg.vote_k, len(groups)))
    bw = [backbone_weights[n] for n in names] if backbone_weights else [1.0] * len(names)
    # weight 0: not used at all
    groups, bw = [g for g, x in zip(groups, bw, strict=True) if x > 0], [x for x in bw if x > 0]
    if len(groups) == 1:
        return group_spans(examples, groups[0], cfg)
    return nested_char_spans(examples, groups, bw, cfg.n_best_size, cfg.max_answer_chars)
