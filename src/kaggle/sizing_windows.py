"""The windows a recipe source is cut into, estimated from its token lengths alone, and what one window costs.

`prepare_train_features` cuts an example longer than a window into overlapping windows (HF's overflowing tokens
with `stride`). Here the same cut is counted from a source's constants in `src/kaggle/sizing_facts.py` (an
equal-weight sample of its context lengths in tokens, its mean question length), since the data sets are not on the
machine that builds the kernels. The result is a histogram of window lengths, from which `src/kaggle/sizing.py`
takes a batch's padded length, the tokens and, with `flops_per_window`, the FLOPs of each kernel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from src.kaggle.sizing_facts import SPECIAL_TOKENS, SourceSize


def flops_per_window(layers: int, hidden: int, ffn: int, length: float = 384, length_sq: float | None = None) -> float:
    """Forward FLOPs of one encoder window: 2 x (QKV + output projections + FFN) x tokens + attention scores and
    their weighted sum (`length_sq`: the mean squared length when lengths vary)."""
    dense = 2 * length * (4 * hidden * hidden + 2 * hidden * ffn)
    attention = 2 * 2 * (length * length if length_sq is None else length_sq) * hidden
    return float(layers * (dense + attention))


def window_lengths(context: int, question: float, max_length: int, overlap: float) -> list[float]:
    """The windows one example is cut into: `max_length` long but the last (HF's overflowing tokens with `stride`)."""
    cap = max_length - question - SPECIAL_TOKENS
    if context <= cap:
        return [question + SPECIAL_TOKENS + context]
    step = cap - overlap
    n = 1 + math.ceil((context - cap) / step)
    return [float(max_length)] * (n - 1) + [question + SPECIAL_TOKENS + context - (n - 1) * step]


def mean_overlap(doc_stride: int, random_crop: bool) -> float:
    """`augment.crop_stride` draws the overlap uniformly in [stride // 2, stride]: its mean."""
    return (max(1, doc_stride // 2) + doc_stride) / 2 if random_crop else float(doc_stride)


@dataclass
class Histogram:
    """Window lengths with weights (= numbers of windows)."""
    lengths: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def add(self, lengths: list[float], weight: float) -> None:
        self.lengths += lengths
        self.weights += [weight] * len(lengths)

    @property
    def windows(self) -> float:
        return float(sum(self.weights))

    def batch_max(self, batch: int) -> tuple[float, float]:
        """E[max length] and E[max length^2] of a batch of `batch` windows drawn from the mix: the collator pads
        a batch to its longest window."""
        if not self.windows:
            return 0.0, 0.0
        x = np.asarray(self.lengths)
        order = np.argsort(x, kind="stable")
        x, p = x[order], np.asarray(self.weights)[order] / self.windows
        cdf = np.cumsum(p)
        pmax = np.diff(np.concatenate([[0.0], np.minimum(cdf, 1.0) ** batch]))
        return float((x * pmax).sum()), float((x * x * pmax).sum())


def source_windows(size: SourceSize, questions: float, max_length: int, doc_stride: int, random_crop: bool,
                   negative_fraction: float = 1.0) -> Histogram:
    """Windows of one repeat of a source of `questions` examples, as a length histogram."""
    hist = Histogram()
    overlap = mean_overlap(doc_stride, random_crop)
    per = questions / len(size.context_tokens)
    for c in size.context_tokens:
        hist.add(window_lengths(c, size.question_tokens, max_length, overlap), per)
    if negative_fraction < 1.0 and hist.windows:
        # every window with the answer (about one per answerable question) and that fraction of the rest
        positives = min(questions * size.answerable, hist.windows)
        keep = (positives + negative_fraction * (hist.windows - positives)) / hist.windows
        hist.weights = [w * keep for w in hist.weights]
    return hist
