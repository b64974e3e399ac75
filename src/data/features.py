"""Sliding-window features with offsets and start/end labels: the algorithm of HF `run_qa.py`, as pure functions.

Both functions take a batch of examples as a dict of lists (what `datasets.Dataset.map(batched=True)` passes) and
return a dict of lists, one entry per window. A context longer than `max_length` becomes several windows that
overlap by `doc_stride` tokens; a training window that does not contain the whole answer is labelled with the CLS
index (the "no answer" position), exactly as run_qa.py does.

Context offsets are the characters a token can give an answer (`token_char_spans`), not the tokenizer's raw ones:
XLM-R-style tokenizers fold the space before a word into its offsets and emit a lone "▁" whose offsets cover a
space or the next word's first character (transformers#17454); raw, either adds an edge character to an answer.
"""
from __future__ import annotations

from typing import Any

from src.data import presplit

SPIECE_UNDERLINE = "▁"  # SentencePiece's word-start marker


def lone_underline_id(tokenizer) -> int | None:
    """Id of the lone "▁" token in a SentencePiece vocabulary; None for tokenizers without one (WordPiece)."""
    tid = tokenizer.convert_tokens_to_ids(SPIECE_UNDERLINE)
    return None if tid is None or tid == tokenizer.unk_token_id else tid


def token_char_spans(text: str, offsets, input_ids, lone_id: int | None) -> list[tuple[int, int]]:
    """Each token's character span in `text` without whitespace at either edge; a lone "▁" holds no character
    of its own and gets the empty span where the next word starts.

    e5-small's "▁1857" has offsets " 1857" and its lone "▁" covers the space; tiny-xlmr's lone "▁" covers the
    next word's first character (transformers#17454). Raw, an answer starting or ending on them gains a space or
    a character. Whitespace at an answer's edge scores nothing in word-level Jaccard, so trimming it loses nothing.
    """
    out = []
    for (a, b), tid in zip(offsets, input_ids, strict=True):
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        out.append((a, a) if tid == lone_id else (a, b))
    return out


def _tokenize(examples: dict[str, list], tokenizer, max_length: int, doc_stride: int, pad: bool):
    pad_on_right = tokenizer.padding_side == "right"
    # Leading whitespace in questions wastes tokens and (for some tokenizers) shifts truncation: run_qa strips it.
    questions = [q.lstrip() for q in examples["question"]]
    contexts = examples["context"]
    # a tokenizer set to pre-split punctuation (src/data/presplit.py) reads the split texts; context offsets are
    # mapped back below, so everything downstream sees the original context
    split = presplit.enabled(tokenizer)
    if split:
        questions = [presplit.split_punctuation(q)[0] for q in questions]
        pairs = [presplit.split_punctuation(c) for c in contexts]
        contexts, index = [p[0] for p in pairs], [p[1] for p in pairs]
    questions = fit_questions(questions, tokenizer, max_length, doc_stride)
    enc = tokenizer(
        questions if pad_on_right else contexts,
        contexts if pad_on_right else questions,
        truncation="only_second" if pad_on_right else "only_first",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length" if pad else False,
    )
    context_index = 1 if pad_on_right else 0
    lone_id = lone_underline_id(tokenizer)
    for i, ex in enumerate(enc["overflow_to_sample_mapping"]):
        ctx = [k for k, s in enumerate(enc.sequence_ids(i)) if s == context_index]
        offsets, ids = enc["offset_mapping"][i], enc["input_ids"][i]
        spans = token_char_spans(contexts[ex], [offsets[k] for k in ctx], [ids[k] for k in ctx], lone_id)
        if split:
            spans = [presplit.to_original(span, index[ex]) for span in spans]
        for k, span in zip(ctx, spans, strict=True):
            offsets[k] = span
    return enc, context_index


def fit_questions(questions: list[str], tokenizer, max_length: int, doc_stride: int) -> list[str]:
    """Questions cut (at a token boundary) to what leaves the context more than `doc_stride` tokens per window.

    Without this one long question (TyDi has 60-token ones) at max_length 128 makes the fast tokenizer panic
    ("stride must be strictly less than max_len") and fails the whole batch; run_qa.py has the same failure.
    Questions that fit are returned unchanged.
    """
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - doc_stride - 1
    if room < 1:
        raise ValueError(f"max_length {max_length} leaves no room for a question with doc_stride {doc_stride}")
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [q if len(ids) <= room else q[:offsets[room - 1][1]]
            for q, ids, offsets in zip(questions, enc["input_ids"], enc["offset_mapping"], strict=True)]


def prepare_train_features(examples: dict[str, list], tokenizer, max_length: int = 384, doc_stride: int = 128,
                           pad: bool = False) -> dict[str, list[Any]]:
    """Windows with `start_positions`/`end_positions` (token indices; CLS when the answer is not inside).

    Also returns `example_id` (which example each window came from), `has_answer` (used by negative sampling),
    `context_start`/`context_end` (first/last context token) and `window_start_char`/`window_end_char` (the
    character span of the context the window covers).
    """
    enc, context_index = _tokenize(examples, tokenizer, max_length, doc_stride, pad)
    sample_map = enc.pop("overflow_to_sample_mapping")
    offsets_all = enc.pop("offset_mapping")
    starts, ends, ids, has_answer, ctx_first, ctx_last, char_first, char_last = [], [], [], [], [], [], [], []
    for i, offsets in enumerate(offsets_all):
        input_ids = enc["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
        sequence_ids = enc.sequence_ids(i)
        ex = sample_map[i]
        ids.append(examples["id"][ex])
        answer = examples["answer_text"][ex]
        start_char = int(examples["answer_start"][ex])
        end_char = start_char + len(answer)
        # first and last context token of this window
        token_start = 0
        while sequence_ids[token_start] != context_index:
            token_start += 1
        token_end = len(input_ids) - 1
        while sequence_ids[token_end] != context_index:
            token_end -= 1
        # where this window sits: augmentations (cutout, soft labels, random crop) need the context's bounds
        ctx_first.append(token_start)
        ctx_last.append(token_end)
        char_first.append(offsets[token_start][0])
        char_last.append(offsets[token_end][1])
        if not answer or not (offsets[token_start][0] <= start_char and offsets[token_end][1] >= end_char):
            starts.append(cls_index)
            ends.append(cls_index)
            has_answer.append(False)
            continue
        # move token_start/token_end to the two ends of the answer (run_qa.py's loop). Bounded by the last
        # context token: run_qa.py bounds it by the sequence length and so walks into [SEP] (offset (0, 0))
        # when the answer starts at the window's last context token, labelling [SEP] as the start.
        context_end = token_end
        while token_start <= context_end and offsets[token_start][0] <= start_char:
            token_start += 1
        starts.append(token_start - 1)
        while offsets[token_end][1] >= end_char:
            token_end -= 1
        ends.append(token_end + 1)
        has_answer.append(True)
    enc["start_positions"] = starts
    enc["end_positions"] = ends
    enc["example_id"] = ids
    enc["has_answer"] = has_answer
    enc["context_start"], enc["context_end"] = ctx_first, ctx_last
    enc["window_start_char"], enc["window_end_char"] = char_first, char_last
    return dict(enc)


def prepare_eval_features(examples: dict[str, list], tokenizer, max_length: int = 384, doc_stride: int = 128,
                          pad: bool = False) -> dict[str, list[Any]]:
    """Windows with `example_id` and `offset_mapping`, where non-context tokens get `None` (as in run_qa.py), and
    so do context tokens that hold no character (a lone "▁"): neither can be an answer's edge."""
    enc, context_index = _tokenize(examples, tokenizer, max_length, doc_stride, pad)
    sample_map = enc.pop("overflow_to_sample_mapping")
    enc["example_id"] = []
    for i in range(len(enc["input_ids"])):
        sequence_ids = enc.sequence_ids(i)
        enc["example_id"].append(examples["id"][sample_map[i]])
        enc["offset_mapping"][i] = [o if sequence_ids[k] == context_index and o[1] > o[0] else None
                                    for k, o in enumerate(enc["offset_mapping"][i])]
    return dict(enc)


def frame_to_batch(df) -> dict[str, list]:
    """A frame as the dict-of-lists batch that the feature functions take."""
    return {c: df[c].tolist() for c in df.columns}
