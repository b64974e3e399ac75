"""Answer spans that never cut a letter: character spans widened to whole extended grapheme clusters.

A Hindi or Tamil letter is often several code points: a consonant, then vowel signs, a virama, a nukta. A
subword tokenizer's offsets can fall between them, and an answer that starts on a vowel sign (`ियों`) or ends
before a virama matches no word of the gold answer, so word-level Jaccard loses that whole word. Unicode's
extended grapheme clusters (UAX #29; the `regex` module's `\\X`, which transformers already installs) are the
letters a reader sees: `whole_letter_spans` moves each span's start back to the start of its letter and its end
forward to the end of its letter. Used by `AnswerRules(whole_letters=True)`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import regex

_LETTER = regex.compile(r"\X")


def letter_bounds(text: str) -> np.ndarray:
    """Every boundary between extended grapheme clusters of `text`, 0 and len(text) included, ascending."""
    return np.array([m.start() for m in _LETTER.finditer(text)] + [len(text)], dtype=np.int64)


def whole_letter_spans(contexts, spans: np.ndarray) -> np.ndarray:
    """(n, 2) character spans [a, b) into `contexts[i]`, each widened to whole letters (extended grapheme
    clusters): `a` back to the start of the letter it falls in, `b` forward to the end of the letter it falls in.

    Unchanged: spans already on letter boundaries (most of them), the "no span" sentinel (a < 0), empty spans
    (a >= b) and ends beyond the context (slicing clamps them anyway). The boundaries of each distinct context are
    found once and every span into it is looked up at once (`np.searchsorted`): an article's questions share one.
    """
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    out = spans.copy()
    live = np.flatnonzero((spans[:, 0] >= 0) & (spans[:, 0] < spans[:, 1]))
    if not len(live):
        return out
    seq = contexts.tolist() if hasattr(contexts, "tolist") else list(contexts)
    if len(seq) != len(spans):
        raise ValueError(f"{len(seq)} contexts but {len(spans)} spans")
    rows_of: dict[str, list[int]] = {}
    for i in live.tolist():
        rows_of.setdefault(seq[i], []).append(i)
    for context, rows in rows_of.items():
        bounds = letter_bounds(context)
        a, b = spans[rows, 0], spans[rows, 1]
        inside = a < len(context)
        out[rows, 0] = np.where(inside, bounds[np.searchsorted(bounds, np.minimum(a, len(context)), "right") - 1], a)
        inside = b <= len(context)
        out[rows, 1] = np.where(inside, bounds[np.searchsorted(bounds, np.minimum(b, len(context)), "left")], b)
    return out


def cuts_letter(contexts, spans: np.ndarray) -> np.ndarray:
    """Per span: does it start or end inside a letter (would `whole_letter_spans` move it)?"""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    return (whole_letter_spans(contexts, spans) != spans).any(axis=1)


def letters_report(examples: pd.DataFrame, spans: np.ndarray, by: str = "language") -> pd.DataFrame:
    """Per value of `by` and overall (`all`): answers, how many cut a letter, and mean Jaccard (the best over the
    `answers` golds where the frame has them) of the spans as they are and widened to whole letters."""
    from src.infer.metric import score_rows
    from src.infer.span_text import span_texts

    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    wide = whole_letter_spans(examples["context"], spans)
    scores = {name: score_rows(examples.assign(prediction=span_texts(examples["context"], s)))["jaccard"].to_numpy()
              for name, s in (("as_is", spans), ("whole_letters", wide))}
    frame = pd.DataFrame({"group": examples[by].astype(str).to_numpy(), "cut": (wide != spans).any(axis=1), **scores})
    rows = [(str(g), d) for g, d in frame.groupby("group")] + [("all", frame)]
    return pd.DataFrame([{by: g, "answers": len(d), "cut_letter": int(d["cut"].sum()),
                          "jaccard_as_is": d["as_is"].mean(), "jaccard_whole_letters": d["whole_letters"].mean(),
                          "gain": d["whole_letters"].mean() - d["as_is"].mean()} for g, d in rows]).set_index(by)
