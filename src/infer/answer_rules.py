"""Optional edits of a chosen answer span (`AnswerRules`), answer texts from spans, and `rules_report`, which
measures each rule on out-of-fold spans."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from src.infer.graphemes import whole_letter_spans
from src.infer.metric import jaccard_by_language
from src.infer.span_text import span_texts


@dataclass(frozen=True)
class AnswerRules:
    """Optional edits of a chosen span; all off by default (the winner's final submission used none).

    strip_edges: drop punctuation/spaces at both ends ("1857)," -> "1857"): for tokenizers that glue punctuation
        to words (XLM-R, RemBERT). The winner found it helped the public and hurt the private leaderboard.
    keep_abbreviations: a span ending in a Hindi/Tamil abbreviation (கி.பி, கி.மு, ई.पू, ...) keeps its final
        dot when the context has one (public notebooks' rule; the gold answers keep it).
    whole_numbers: a span that cuts a number (ASCII, Devanagari ०-९ or Tamil ௦-௯ digits) is widened to the whole
        number: subword tokenizers split long digit runs, and Jaccard gives nothing for a part of a word.
    whole_letters: a span that starts or ends inside a letter (an extended grapheme cluster: a vowel sign or a
        virama left behind or alone, as in the answer "ियों") is widened to whole letters
        (`src.infer.graphemes`). Off until measured on out-of-fold answers
        (`python -m research.experiments.whole_letters RUN_DIR`).
    """
    strip_edges: bool = False
    keep_abbreviations: bool = False
    whole_numbers: bool = False
    whole_letters: bool = False

    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


# Abbreviations whose final dot belongs to the answer (without that dot); from public chaii notebooks. Each must
# be a whole word in the context: "ई" (ईसवी, "1857 ई.") must not match the last letter of हुई or भाई.
ABBREVIATIONS = ("கி.பி", "கி.மு", "கி.மீ", "ई.पू", "ई")
DIGIT_RUN = re.compile(r"\d+(?:[.,]\d+)*")  # \d matches every script's decimal digits (Unicode Nd)


def _is_edge_junk(ch: str) -> bool:
    # punctuation and separators only: combining marks (matras, virama: category M) are part of a word
    return unicodedata.category(ch)[0] in "PZ" or ch.isspace()


def _ends_with_word(context: str, a: int, b: int, word: str) -> bool:
    """Does the span [a, b) end with `word` as a whole word (nothing word-like right before it)?"""
    start = b - len(word)
    if start < a or context[start:b] != word:
        return False
    # letters, digits and combining marks (matras, virama) continue a word; a space or punctuation ends it
    return start == 0 or unicodedata.category(context[start - 1])[0] not in "LMN"


def apply_rules(context: str, span: tuple[int, int], rules: AnswerRules) -> tuple[int, int]:
    """The span after the enabled rules, in the order: whole letters, whole numbers, edge stripping,
    abbreviations."""
    a, b = int(span[0]), int(span[1])
    if a < 0 or a >= b:
        return a, b
    if rules.whole_letters:
        a, b = whole_letter_spans([context], [(a, b)])[0].tolist()
    if rules.whole_numbers:
        for m in DIGIT_RUN.finditer(context, max(0, a - 32), min(len(context), b + 32)):
            if m.start() < a < m.end():
                a = m.start()
            if m.start() < b < m.end():
                b = m.end()
    if rules.strip_edges:
        while a < b and _is_edge_junk(context[a]):
            a += 1
        while b > a and _is_edge_junk(context[b - 1]):
            b -= 1
    if rules.keep_abbreviations and b < len(context) and context[b] == ".":
        if any(_ends_with_word(context, a, b, x) for x in ABBREVIATIONS):
            b += 1
    return a, b


def answers_from_spans(examples: pd.DataFrame, spans: np.ndarray, rules: AnswerRules | None = None,
                       ids: list | None = None) -> dict[str, str]:
    """Answer text per id from character spans, after `rules` (`ids`: `examples["id"]` already as a list)."""
    rules = rules or AnswerRules()
    if rules.whole_letters:   # all spans at once (each context's letters found once), then the per-span rules
        spans, rules = whole_letter_spans(examples["context"], spans), replace(rules, whole_letters=False)
    if rules.any():
        spans = np.array([apply_rules(c, (a, b), rules) for c, (a, b)
                          in zip(examples["context"].tolist(), np.asarray(spans).tolist(), strict=True)],
                         dtype=np.int64)
    return dict(zip(examples["id"].tolist() if ids is None else ids, span_texts(examples["context"], spans),
                    strict=True))


def rules_report(examples: pd.DataFrame, spans: np.ndarray, gold_col: str = "answer_text") -> pd.DataFrame:
    """Jaccard per language with no rule, with each rule alone, and with all of them (on out-of-fold spans)."""
    variants = {"none": AnswerRules()}
    for f in fields(AnswerRules):
        variants[f.name] = replace(AnswerRules(), **{f.name: True})
    variants["all"] = AnswerRules(**{f.name: True for f in fields(AnswerRules)})
    rows = {}
    for name, rules in variants.items():
        answers = answers_from_spans(examples, spans, rules)
        rows[name] = jaccard_by_language(examples.assign(prediction=examples["id"].map(answers)), gold_col=gold_col)
    return pd.DataFrame(rows).T.rename(columns=lambda c: f"jaccard_{c}")
