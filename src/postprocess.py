"""Per-window logits -> one answer per example: n-best span search with a maximum answer length.

`postprocess_qa_predictions` is the algorithm of HF `utils_qa.postprocess_qa_predictions` (SQuAD v1: every
question has an answer), kept as a plain loop: it is the reference that faster versions must match exactly.
"""
from __future__ import annotations

import collections

import numpy as np
import pandas as pd

from .predict import NO_OFFSET, WindowLogits


def postprocess_qa_predictions(examples: pd.DataFrame, logits: WindowLogits, n_best_size: int = 20,
                               max_answer_length: int = 30) -> dict[str, str]:
    """Best answer text per example id (HF's loop).

    Args:
        examples: frame with `id` and `context`.
        logits: per-window start/end logits with offsets.
        n_best_size: how many top start and top end positions to combine per window.
        max_answer_length: longest answer, in tokens.
    """
    windows_of = collections.defaultdict(list)
    for i, eid in enumerate(logits.example_id):
        windows_of[eid].append(i)
    predictions = {}
    for eid, context in zip(examples["id"], examples["context"]):
        candidates = []
        for w in windows_of.get(eid, []):
            start_logits = logits.start[w].astype(np.float32)
            end_logits = logits.end[w].astype(np.float32)
            offsets = logits.offsets[w]
            start_indexes = np.argsort(start_logits)[-1: -n_best_size - 1: -1].tolist()
            end_indexes = np.argsort(end_logits)[-1: -n_best_size - 1: -1].tolist()
            for s in start_indexes:
                for e in end_indexes:
                    # out of the context, or not a valid span
                    if offsets[s, 0] == NO_OFFSET or offsets[e, 0] == NO_OFFSET:
                        continue
                    if e < s or e - s + 1 > max_answer_length:
                        continue
                    candidates.append((float(start_logits[s] + end_logits[e]), int(offsets[s, 0]), int(offsets[e, 1])))
        if candidates:
            _, a, b = sorted(candidates, key=lambda c: c[0], reverse=True)[0]
            predictions[eid] = context[a:b]
        else:
            predictions[eid] = ""
    return predictions
