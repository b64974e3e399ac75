"""Per-window logits -> one answer per example: n-best span search with a maximum answer length.

`postprocess_qa_predictions` is the algorithm of HF `utils_qa.postprocess_qa_predictions` (SQuAD v1: every
question has an answer), kept as a plain loop: it is the reference that `best_spans` (vectorized over all windows
at once) must match exactly, ties included. `AnswerRules` are optional edits of the chosen span (edge stripping,
script-aware rules, `src.infer.answer_rules`), each a toggle measured on out-of-fold predictions by `rules_report`.
"""
from __future__ import annotations

import collections

import numpy as np
import pandas as pd

from src.infer.answer_rules import AnswerRules, answers_from_spans
from src.infer.predict import NO_OFFSET, WindowLogits

NO_SPAN = (-1, -1)  # an example without any valid candidate span: its answer is ""


def postprocess_qa_predictions(examples: pd.DataFrame, logits: WindowLogits, n_best_size: int = 20,
                               max_answer_length: int = 30) -> dict[str, str]:
    """Best answer text per example id (HF's loop; the reference for `best_spans`).

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
    for eid, context in zip(examples["id"], examples["context"], strict=True):
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


def best_spans(example_ids, logits: WindowLogits, n_best_size: int = 20,
               max_answer_length: int = 30, chunk: int = 4096) -> np.ndarray:
    """(n_examples, 2) character span [start, end) of the best answer per example; NO_SPAN where none is valid.

    The same search as the reference loop, on all windows at once: top-k starts x top-k ends per window, spans
    inside the context, end >= start, at most `max_answer_length` tokens, highest start+end logit (float32 sum).
    Ties go where the reference's stable sort sends them: the first window, then the first start, then the first
    end in argsort-descending order; where tied logits could change the pick, the window is searched again with
    the reference's own `np.argsort` (see `_best_in_windows`).

    Most windows are decided without the top-k search. No candidate of a window scores above its best context
    start plus its best context end (its bound: float32 addition is monotone), so a window whose bound is below
    its example's best score so far could not be picked and is skipped. Each remaining window's best valid span
    over all its context positions (`_context_best`) is its answer when that span is the only one at its score
    and its start and end are surely in the reference's top k; the others are searched. Two rounds: each
    example's window of highest bound, then the windows that could still beat (or tie) the best.
    """
    ids = example_ids.tolist() if hasattr(example_ids, "tolist") else list(example_ids)
    out = np.full((len(ids), 2), NO_SPAN[0], dtype=np.int64)
    n = len(logits)
    if n == 0 or len(ids) == 0 or logits.start.shape[1] == 0:
        return out
    first_row: dict = {}
    for i, eid in enumerate(ids):
        first_row.setdefault(eid, i)
    code = _example_rows(logits.example_id, first_row)
    offsets = logits.offsets
    in_ctx = offsets[:, :, 0] != NO_OFFSET
    keys = [_order_key(logits.start), _order_key(logits.end)]
    bound = sum(_key_value(key.max(axis=1, where=in_ctx, initial=floor), floor) for key, floor in keys)
    k = min(n_best_size, logits.start.shape[1])
    score = np.full(n, -np.inf, dtype=np.float32)
    s_tok = np.zeros(n, dtype=np.int64)
    e_tok = np.zeros(n, dtype=np.int64)
    has = np.zeros(n, dtype=bool)
    done = code < 0

    def decide(r: np.ndarray, best: np.ndarray | None = None, found: np.ndarray | None = None) -> None:
        """Windows `r`: those that can still win (all of them without `best`) answer with their best context
        span where it is surely the reference's pick; the others get the top-k search."""
        tight, s, e, sure = _context_best(logits.start[r], logits.end[r], in_ctx[r], k, max_answer_length)
        done[r] = True
        if best is not None:
            # ">=": a window that can only tie the best must be decided too, it may come first
            live = ~found[code[r]] | (tight >= best[code[r]])
            r, tight, s, e, sure = r[live], tight[live], s[live], e[live], sure[live]
        q = r[sure]
        score[q], s_tok[q], e_tok[q], has[q] = tight[sure], s[sure], e[sure], True
        rest = r[~sure]
        for c in range(0, len(rest), chunk):  # bounds the (windows, k, k) candidate arrays
            q = rest[c: c + chunk]
            score[q], s_tok[q], e_tok[q], has[q] = _best_in_windows(
                logits.start[q], logits.end[q], offsets[q], n_best_size, max_answer_length)

    def example_best() -> tuple[np.ndarray, np.ndarray]:
        best = np.full(len(ids), -np.inf, dtype=np.float32)
        w = np.flatnonzero(has)
        np.maximum.at(best, code[w], score[w])
        found = np.zeros(len(ids), dtype=bool)
        found[code[w]] = True
        return best, found

    decide(_first_per_group(np.flatnonzero(~done), code, bound))   # each example's most promising window
    best, found = example_best()
    open_ = np.flatnonzero(~done)
    decide(open_[~found[code[open_]] | (bound[open_] >= best[code[open_]])], best, found)

    w = np.flatnonzero(has & (code >= 0))
    if len(w):
        top = _first_per_group(w, code, score)        # per example the best score, the first window on a tie
        out[code[top], 0] = offsets[top, s_tok[top], 0]
        out[code[top], 1] = offsets[top, e_tok[top], 1]
    # a duplicated id gets the answer of its first occurrence everywhere, as a dict would
    if len(first_row) < len(ids):
        out = out[[first_row[e] for e in ids]]
    return out


def _context_best(start: np.ndarray, end: np.ndarray, in_ctx: np.ndarray, k: int, max_answer_length: int):
    """Per window: the best start + end logit over every valid span of context positions (float32, -inf if none;
    no top-k restriction, so no candidate of the reference scores higher), that span's start and end, and
    whether it is surely the reference's pick: the only span at that score, its start and end surely among the
    reference's top k (at most k positions reach their values). The best end within reach of each start is a
    sliding maximum, built by doubling."""
    n, width = start.shape
    s32, e32 = _as_float32(start), _as_float32(end)
    s = np.where(in_ctx, s32, np.float32(-np.inf))
    e = np.where(in_ctx, e32, np.float32(-np.inf))
    rows = np.arange(n)
    w = min(max_answer_length, width)
    if w < 1:
        return np.full(n, -np.inf, np.float32), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)
    pad = np.full((n, width), -np.inf, dtype=np.float32)
    span, slide = 1, e
    while 2 * span <= w:                      # slide[:, i] = max(e[:, i : i + span])
        slide = np.maximum(slide, np.concatenate([slide[:, span:], pad[:, :span]], axis=1))
        span *= 2
    if span < w:                              # two overlapping windows of `span` cover i .. i + w - 1
        slide = np.maximum(slide, np.concatenate([slide[:, w - span:], pad[:, : w - span]], axis=1))
    total = s + slide
    i = total.argmax(axis=1)
    best = total[rows, i]
    band = i[:, None] + np.arange(w)
    sums = s[rows, i][:, None] + np.where(band < width, e[rows[:, None], np.minimum(band, width - 1)], -np.inf)
    hit = sums == best[:, None]
    j = i + hit.argmax(axis=1)
    sure = ((best > -np.inf) & ((total == best[:, None]).sum(axis=1) == 1) & (hit.sum(axis=1) == 1)
            & ((s32 >= s32[rows, i][:, None]).sum(axis=1) <= k) & ((e32 >= e32[rows, j][:, None]).sum(axis=1) <= k))
    return best, i, j, sure


def _example_rows(window_ids: np.ndarray, first_row: dict) -> np.ndarray:
    """Each window's example row (-1: not among the examples). Windows of one example are consecutive, so only
    the first of each run is looked up (a dict, not pd.Index.get_indexer: pandas 3 converts object ids to Arrow
    strings first, 10x slower here)."""
    n = len(window_ids)
    heads = np.flatnonzero(np.r_[True, window_ids[1:] != window_ids[:-1]]) if n else np.zeros(0, np.int64)
    rows = np.fromiter((first_row.get(e, -1) for e in window_ids[heads].tolist()), dtype=np.int64, count=len(heads))
    return np.repeat(rows, np.diff(np.r_[heads, n]))


def _order_key(x: np.ndarray) -> tuple[np.ndarray, np.generic]:
    """Values that sort as `x` does, and the key below every value. float16 logits become int16 keys (their bits,
    negatives flipped): integer argmax and max are several times faster than converting every window to float32."""
    if x.dtype != np.float16:
        return x.astype(np.float32, copy=False), np.float32(-np.inf)
    bits = x.view(np.int16)
    return bits ^ ((bits >> 15) & np.int16(0x7FFF)), np.int16(-32768)


def _key_value(key: np.ndarray, floor) -> np.ndarray:
    """float32 values of `_order_key` keys; the floor (no value) is -inf."""
    if key.dtype != np.int16:
        return key
    value = (key ^ ((key >> 15) & np.int16(0x7FFF))).view(np.float16).astype(np.float32)
    return np.where(key == floor, np.float32(-np.inf), value)


def _first_per_group(rows: np.ndarray, group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per group among `rows`: the row of the highest `value`, the first row on a tie."""
    if len(rows) == 0:
        return rows
    order = rows[np.lexsort((rows, -value[rows], group[rows]))]
    return order[np.r_[True, group[order][1:] != group[order][:-1]]]


def _top_k(x: np.ndarray, k: int) -> np.ndarray:
    """Per row of `x`, the indices of the k largest values, best first: the same top-k set as the reference's
    `np.argsort(x)[::-1][:k]`, but equal values inside it in arbitrary order (`_best_in_windows` redoes the rows
    where that matters). A value partition (several times faster than argpartition) finds the (k+1)-th value; the
    top k are the values above it. Where the k-th value ties with the (k+1)-th, which of them is in the top k is
    the sort's own choice: those rows take the reference's full argsort."""
    n, width = x.shape
    if k >= width:
        return _reference_top_k(x, k)
    part = np.partition(x, width - k - 1, axis=1)
    above = part[:, width - k - 1]                        # the (k+1)-th largest value
    border = part[:, width - k:].min(axis=1) == above     # the k-th largest ties with it
    mask = x > above[:, None]
    mask[border] = False
    mask[border, :k] = True                               # placeholders, replaced below
    # row-major: k per row, in column order (flatnonzero: 3x faster than nonzero's row and column arrays)
    top = (np.flatnonzero(mask).reshape(n, k) - np.arange(0, n * width, width)[:, None]).astype(np.int32)
    order = np.argsort(np.take_along_axis(x, top, axis=1), axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, axis=1)
    if border.any():
        top[border] = _reference_top_k(x[border], k)
    return top


def _reference_top_k(x: np.ndarray, k: int) -> np.ndarray:
    """Exactly the reference's `np.argsort(x)[::-1][:k]` per row, tie order included (the sort's own, unstable)."""
    return np.argsort(x, axis=1)[:, ::-1][:, :k].astype(np.int32)


def _best_in_windows(start, end, offsets, n_best_size: int, max_answer_length: int):
    """Per window: best valid score, its start and end token, and whether any candidate was valid.

    The top-k sets are the reference's (`_top_k`); only the order of equal logits inside them may differ, which
    can change the pick only when two valid candidates reach the best score: those windows (a few percent) are
    searched again with the reference's own full argsort."""
    k = min(n_best_size, start.shape[1])
    start, end = _as_float32(start), _as_float32(end)
    top_s, top_e = _top_k(start, k), _top_k(end, k)
    score, s_tok, e_tok, has, n_best = _search(start, end, offsets, top_s, top_e, max_answer_length)
    redo = np.flatnonzero(n_best > 1)
    if len(redo):
        exact = _search(start[redo], end[redo], offsets[redo], _reference_top_k(start[redo], k),
                        _reference_top_k(end[redo], k), max_answer_length)
        for full, part in zip((score, s_tok, e_tok, has), exact[:4], strict=True):   # exact[4]: n_best, not kept
            full[redo] = part
    return score, s_tok, e_tok, has


def _search(start, end, offsets, top_s, top_e, max_answer_length: int):
    """Best valid (start, end) among top_s x top_e per window, first in the reference's iteration order on a
    tie; also how many valid candidates reach that best score."""
    n, k = top_s.shape
    rows = np.arange(n)[:, None]
    score = start[rows, top_s][:, :, None] + end[rows, top_e][:, None, :]          # (n, k, k) float32
    in_ctx_s = offsets[rows, top_s, 0] != NO_OFFSET
    in_ctx_e = offsets[rows, top_e, 0] != NO_OFFSET
    # 0 <= end - start < max_answer_length in one unsigned comparison (a negative difference wraps around)
    length_ok = (top_e[:, None, :] - top_s[:, :, None]).view(np.uint32) < max_answer_length
    valid = (length_ok & in_ctx_s[:, :, None] & in_ctx_e[:, None, :]).reshape(n, k * k)
    flat = np.where(valid, score.reshape(n, k * k), np.float32(-np.inf))
    best = flat.argmax(axis=1)                                   # first maximum = the reference's iteration order
    i = np.arange(n)
    best_score = flat[i, best]
    n_best = (flat == best_score[:, None]).sum(axis=1)           # a finite best: only valid candidates equal it
    has = np.ones(n, dtype=bool)
    low = np.flatnonzero(best_score == -np.inf)   # no valid candidate, or only ones scored -inf (padding)
    if len(low):
        v = valid[low]
        has[low] = v.any(axis=1)
        best[low] = np.where(has[low], v.argmax(axis=1), best[low])   # the first valid one, as the reference
        n_best[low] = v.sum(axis=1)
    return best_score, top_s[i, best // k], top_e[i, best % k], has, n_best


# every float16 bit pattern's float32 value: the conversion as one gather (exact, single-threaded). numpy's
# astype is 2x slower; torch's .float() is faster on idle cores but stalls for milliseconds when they are busy
_FLOAT16_TO_32 = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)


def _as_float32(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.float16:
        return np.take(_FLOAT16_TO_32, np.ascontiguousarray(x).view(np.uint16))
    return x.astype(np.float32, copy=False)


def predict_texts(examples: pd.DataFrame, logits: WindowLogits, n_best_size: int = 20, max_answer_length: int = 30,
                  rules: AnswerRules | None = None) -> dict[str, str]:
    """Answer per example id: `best_spans` (same answers as the reference loop, much faster), then `rules`."""
    ids = examples["id"].tolist()
    return answers_from_spans(examples, best_spans(ids, logits, n_best_size, max_answer_length), rules, ids)
