"""Punctuation split from words before tokenizing, with a character map back to the original text.

XLM-R's and RemBERT's SentencePiece vocabularies hold pieces that join a punctuation mark to the text beside it
(e5-small's tokenizer: "2.5%" -> "▁2." "5%", "(தமிழ்நாடு)." -> ... "டு" ")."): a span cannot end where such an
answer ends, and word-level Jaccard loses the word. The winner named this (his talk) as a reason for MuRIL's lead
and did not get to it. Splitting puts a space between a word and a punctuation mark touching it, so every mark
starts a piece of its own; the map sends each token's span back to the original context, so labels, answers and
every post-processing rule work on the original text and an answer is always a substring of it.

What is split: a boundary between a Unicode punctuation character (category P*: ASCII marks, the Devanagari danda
"।" and double danda "॥", quotes, brackets, dashes) and a character that is neither whitespace nor punctuation.
What stays whole: a mark between two digits (any script's: "1,857", "2.5", "1857-58", "12:30", "3/4"): numbers are
answers in their own right and the vocabularies hold their pieces; runs of marks ("...", ").") are not split
among themselves (whitespace-split Jaccard never separates them either).

The setting belongs to the tokenizer, like BERT's `do_lower_case`: `configure` records it in the tokenizer's
`init_kwargs`, which `save_pretrained` writes to tokenizer_config.json, so a model trained with it carries it
and its tokenizer splits at inference by itself; `configure` refuses a request for the other way.
"""
from __future__ import annotations

import unicodedata

KEY = "presplit_punctuation"   # the tokenizer_config.json field


def is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _number_separator(text: str, i: int) -> bool:
    return 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()


def split_punctuation(text: str) -> tuple[str, list[int]]:
    """`text` with a space between each punctuation mark and a word character it touches, and for each character
    of the result (plus one past the end) its index in `text`; an inserted space maps to the character after it."""
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        if i and not ch.isspace() and not text[i - 1].isspace():
            p_prev = is_punct(text[i - 1]) and not _number_separator(text, i - 1)
            p_here = is_punct(ch) and not _number_separator(text, i)
            if p_prev != p_here:
                out.append(" ")
                index.append(i)
        out.append(ch)
        index.append(i)
    index.append(len(text))
    return "".join(out), index


def to_original(span: tuple[int, int], index: list[int]) -> tuple[int, int]:
    """A character span of the split text as the span of the original text it covers (empty stays empty)."""
    a, b = span
    return (index[a], index[a]) if b <= a else (index[a], index[b - 1] + 1)


def enabled(tokenizer) -> bool:
    """Whether `tokenizer` pre-splits punctuation (as recorded in its tokenizer_config.json)."""
    return bool(getattr(tokenizer, "init_kwargs", {}).get(KEY, False))


def configure(tokenizer, presplit: bool | None, where: str = "the model", training: bool = False):
    """`tokenizer` set to pre-split punctuation (True) or not (False); None keeps what it records.

    Training records the choice (False too) in the tokenizer, which is saved with the model. Inference may not ask
    for the other way: the model learned one kind of text (a tokenizer without a record was trained without it)."""
    if presplit is None:
        return tokenizer
    if not training and enabled(tokenizer) != presplit:
        record = f"says {KEY}={enabled(tokenizer)}" if KEY in tokenizer.init_kwargs else f"has no {KEY}"
        raise ValueError(f"{where} was trained {'with' if enabled(tokenizer) else 'without'} {KEY} (its "
                         f"tokenizer_config.json {record}): predicting with {KEY}={presplit} feeds it text it never "
                         "saw. Leave it unset (None) to predict as the model was trained.")
    tokenizer.init_kwargs[KEY] = bool(presplit)
    return tokenizer
