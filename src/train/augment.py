"""Augmentations borrowed from vision, as pure functions over frames, window arrays and tensors.

- random crop (the project's; no notebook of the winner crops): each repeat of a source is windowed with another
  stride and another start offset (`crop_frame`, `crop_stride`), so the model sees other windows of the same contexts;
- progressive resizing: the window length grows stage by stage (`progressive_lengths`). The winner's own form
  (kldarek/chaii XLMR_pretraining116/119, MUR_pretraining122f02, `prepare_datasets`) is a length per pass and
  source, which recipes write as each stage's (or source's) `max_length`/`doc_stride`;
- cutout, two kinds. The winner's (`QACollator(token_cutout=p)`, `token_cutout_mask`): every non-special token,
  question and answer included, replaced by the mask token with probability p, drawn anew for every batch (his
  `random_mask_data_collator`: XLMR_pretraining119 cell 20, p = 0.1; MUR_pretraining122f02 cell 19, p = 0.03).
  The project's (`QACollator(cutout=f)`, `cutout_mask`): exactly round(f x n) of a window's n context tokens outside
  the answer;
- negative sampling, two kinds. The winner's (`keep_negatives`, a recipe source's `negative_keep`): each window
  without the answer kept with probability p, drawn anew each time a source is windowed (his
  `negative_sampling(ratio)`: `random.random() < ratio` per window, XLMR_pretraining68 cell 6). The project's
  (`sample_negatives`, the recipe's `negative_fraction`): a seeded round(fraction x n) of the n windows without the
  answer, optionally weighted towards the examples a previous model got wrong (`hard_negative_weights`);
- soft labels: start/end targets spread over neighbouring tokens in proportion to the Jaccard of the span they
  would give, trained with a KL loss (`soft_targets`, `soft_label_loss`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")


# ---- random crop -------------------------------------------------------------------------------------------------

def crop_frame(df: pd.DataFrame, rng: np.random.Generator, max_chars: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop a random head of each context (at a word boundary, never past the answer's start, at most `max_chars`).

    Returns the cropped frame (answer_start shifted) and the number of characters cut from each context, so window
    positions can be mapped back to the original context.
    """
    contexts, starts, cuts = [], [], []
    for ctx, start in zip(df["context"], df["answer_start"], strict=True):
        limit = min(max_chars, start if start >= 0 else len(ctx) // 2)
        # word starts in [0, limit]: a cut inside a word would invent a new token
        choices = [0] + [i + 1 for i in range(limit) if ctx[i].isspace() and not ctx[i + 1].isspace()]
        cut = int(choices[rng.integers(len(choices))])
        contexts.append(ctx[cut:])
        starts.append(start - cut if start >= 0 else start)
        cuts.append(cut)
    out = df.copy()
    out["context"], out["answer_start"] = contexts, starts
    return out, np.asarray(cuts, dtype=np.int64)


def crop_stride(doc_stride: int, rng: np.random.Generator) -> int:
    """Another overlap between consecutive windows: uniform in [doc_stride / 2, doc_stride]."""
    return int(rng.integers(max(1, doc_stride // 2), doc_stride + 1))


# ---- progressive resizing ----------------------------------------------------------------------------------------

def progressive_lengths(n_stages: int, lengths: tuple[int, ...] = (256, 384, 512)) -> list[int]:
    """Window length per stage: `lengths` in order, the last one repeated for any further stage."""
    if n_stages < 1 or not lengths or list(lengths) != sorted(lengths):
        raise ValueError(f"need >= 1 stage and increasing lengths, got {n_stages}, {lengths}")
    return [int(lengths[min(k, len(lengths) - 1)]) for k in range(n_stages)]


# ---- negative sampling -------------------------------------------------------------------------------------------

def sample_negatives(has_answer: np.ndarray, fraction: float, rng: np.random.Generator,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """Keep mask: every window with the answer, and round(fraction * n) of the n windows without it.

    With `weights` (one per window, >= 0), negatives are drawn without replacement in proportion to them.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"negative fraction must be in [0, 1], got {fraction}")
    has_answer = np.asarray(has_answer, dtype=bool)
    keep = has_answer.copy()
    neg = np.flatnonzero(~has_answer)
    n_keep = int(round(fraction * len(neg)))
    if n_keep:
        p = None
        if weights is not None:
            w = np.asarray(weights, dtype=float)[neg]
            if (w < 0).any() or not np.isfinite(w).all():
                raise ValueError("hard-negative weights must be finite and >= 0")
            # every negative stays possible: a zero weight would make choice() fail once the rest are drawn
            w = w + 1e-6 * max(w.max(), 1.0)
            p = w / w.sum()
        keep[rng.choice(neg, size=n_keep, replace=False, p=p)] = True
    return keep


def keep_negatives(has_answer: np.ndarray, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Keep mask: every window with the answer, and each window without it with probability `probability`, an
    independent draw per window (the winner's `negative_sampling(ratio)`, kldarek/chaii XLMR_pretraining68 cell 6:
    `random.random() < ratio`), so the number kept varies from draw to draw."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"negative keep probability must be in [0, 1], got {probability}")
    has_answer = np.asarray(has_answer, dtype=bool)
    if probability >= 1.0:
        return np.ones(len(has_answer), dtype=bool)
    return has_answer | (rng.random(len(has_answer)) < probability)


def hard_negative_weights(oof: pd.DataFrame, floor: float = 0.05) -> dict[str, float]:
    """Per example id, 1 - (a previous model's out-of-fold Jaccard) + floor: its negatives are drawn more often
    where that model was wrong. `oof` is a `train.py` oof.csv (columns id, jaccard)."""
    missing = {"id", "jaccard"} - set(oof.columns)
    if missing:
        raise ValueError(f"out-of-fold frame needs columns id, jaccard; missing {sorted(missing)}")
    return dict(zip(oof["id"].astype(str), 1.0 - oof["jaccard"].astype(float).clip(0, 1) + floor, strict=True))


# ---- cutout + padding ----------------------------------------------------------------------------------------------

def cutout_mask(context_start: int, context_end: int, keep: tuple[int, int], fraction: float,
                rng: np.random.Generator) -> np.ndarray:
    """Token positions to mask: round(fraction * n) of the n context tokens outside the answer span `keep`."""
    lo, hi = keep
    candidates = [i for i in range(context_start, context_end + 1) if not lo <= i <= hi]
    n = int(round(fraction * len(candidates)))
    return rng.choice(candidates, size=n, replace=False) if n else np.empty(0, dtype=np.int64)


def token_cutout_mask(input_ids: torch.Tensor, special_ids, probability: float,
                      rng: np.random.Generator) -> torch.Tensor:
    """(B, L) bool: each token whose id is not in `special_ids` chosen with probability `probability`, independently.
    The winner's cutout (kldarek/chaii XLMR_pretraining119 cell 20, `random_mask_data_collator`: a Bernoulli draw
    over the whole padded batch, special tokens excluded): question and answer tokens can be masked too, labels stay.
    His list of special ids is XLM-R's hard-coded `[0, 1, 2]` (<s>, <pad>, </s>); here the tokenizer's own, so the
    same rule holds for MuRIL's and RemBERT's vocabularies."""
    special = torch.isin(input_ids, torch.as_tensor(sorted(special_ids), dtype=input_ids.dtype))
    draw = torch.from_numpy(rng.random(tuple(input_ids.shape)) < probability)
    return draw & ~special


@dataclass
class QACollator:
    """Pads windows of any length (one batch may mix stages) and applies cutout, drawn anew for every batch.

    Two cutouts, both writing the mask token without MLM labels. `cutout` (the project's context cutout): exactly a
    fraction of a window's context tokens, never question or special tokens, never the answer span.
    `token_cutout` (the winner's): each non-special token with that probability, question and answer included
    (`token_cutout_mask`). With `keep_context_bounds` the batch also carries `context_start`/`context_end` (the
    soft-label loss needs them).
    """
    tokenizer: object
    cutout: float = 0.0
    seed: int = 0
    keep_context_bounds: bool = False
    token_cutout: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.cutout < 1.0:
            raise ValueError(f"cutout fraction must be in [0, 1), got {self.cutout}")
        if not 0.0 <= self.token_cutout < 1.0:
            raise ValueError(f"token_cutout probability must be in [0, 1), got {self.token_cutout}")
        if (self.cutout or self.token_cutout) and self.tokenizer.mask_token_id is None:
            raise ValueError("cutout needs a tokenizer with a mask token")
        self._rng = np.random.default_rng(self.seed)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        keys = [k for k in MODEL_KEYS if k in features[0]]
        batch = self.tokenizer.pad([{k: f[k] for k in keys} for f in features], return_tensors="pt")
        bounds = ("context_start", "context_end") if self.keep_context_bounds else ()
        for k in ("start_positions", "end_positions") + bounds:
            batch[k] = torch.tensor([int(f[k]) for f in features], dtype=torch.long)
        if self.cutout:
            ids = batch["input_ids"]
            for r, f in enumerate(features):
                pos = cutout_mask(int(f["context_start"]), int(f["context_end"]),
                                  (int(f["start_positions"]), int(f["end_positions"])), self.cutout, self._rng)
                ids[r, torch.as_tensor(pos, dtype=torch.long)] = self.tokenizer.mask_token_id
        if self.token_cutout:
            ids = batch["input_ids"]
            ids[token_cutout_mask(ids, self.tokenizer.all_special_ids, self.token_cutout, self._rng)] = \
                self.tokenizer.mask_token_id
        return dict(batch)


# ---- soft labels ---------------------------------------------------------------------------------------------------

def soft_targets(start: torch.Tensor, end: torch.Tensor, context_start: torch.Tensor, context_end: torch.Tensor,
                 length: int, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, length) start and end target distributions.

    A start at token i (within `radius` of the gold start s, inside the context, not after the gold end e) gives
    the span [i, e]; its weight is the token-level Jaccard of [i, e] with [s, e]; the same for ends. Weights are
    normalised to sum to 1. A no-answer window (start == end == CLS, outside the context) keeps a one-hot target.
    Token-level rather than word-level Jaccard: labels are token positions, and words would need the text here.
    """
    B = start.shape[0]
    t_start = torch.zeros(B, length)
    t_end = torch.zeros(B, length)
    for b in range(B):
        s, e, c0, c1 = int(start[b]), int(end[b]), int(context_start[b]), int(context_end[b])
        if not c0 <= s <= e <= c1:
            t_start[b, s] = t_end[b, e] = 1.0
            continue
        gold = e - s + 1
        for i in range(max(c0, s - radius), min(e, s + radius) + 1):
            span = e - i + 1  # [i, e] vs [s, e]: one contains the other, so Jaccard = shorter / longer
            t_start[b, i] = min(span, gold) / max(span, gold)
        for j in range(max(s, e - radius), min(c1, e + radius) + 1):
            span = j - s + 1
            t_end[b, j] = min(span, gold) / max(span, gold)
    return t_start / t_start.sum(1, keepdim=True), t_end / t_end.sum(1, keepdim=True)


def soft_label_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                    context_start: torch.Tensor, context_end: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of the start and end KL(target || softmax(logits)), averaged over the batch (as HF's QA loss)."""
    L = start_logits.shape[1]
    ts, te = soft_targets(start, end, context_start, context_end, L, radius)
    ts, te = ts.to(start_logits.device), te.to(end_logits.device)
    kl = torch.nn.functional.kl_div
    return (kl(start_logits.float().log_softmax(-1), ts, reduction="batchmean")
            + kl(end_logits.float().log_softmax(-1), te, reduction="batchmean")) / 2
