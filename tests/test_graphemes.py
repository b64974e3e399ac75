"""Answer spans widened to whole letters (extended grapheme clusters), and nothing else moved."""
import numpy as np
import pandas as pd
import pytest

from src.infer.answer_rules import AnswerRules, answers_from_spans, apply_rules
from src.infer.graphemes import cuts_letter, letter_bounds, letters_report, whole_letter_spans

HINDI = "सौ लड़कियों ने विद्यालय में श्री राम को देखा।"
TAMIL = "தமிழ்நாடு பக்கம் உள்ள கிராமம்"
ENGLISH = "The Normans (Norman: Nourmands) gave their name to Normandy, in 10th-century France."


def span_of(context: str, piece: str, skip: int = 0, cut_end: int = 0) -> tuple[int, int]:
    """[a, b) of `piece` in `context`, its start moved right by `skip` and its end left by `cut_end` characters."""
    a = context.index(piece)
    return a + skip, a + len(piece) - cut_end


@pytest.mark.parametrize("context, span, widened", [
    (HINDI, span_of(HINDI, "लड़कियों", skip=4), "कियों"),       # starts on the vowel sign ि: "ियों" alone
    (HINDI, span_of(HINDI, "विद्यालय", cut_end=5), "विद्या"),      # "विद" ends before the virama of द्य
    (HINDI, span_of(HINDI, "श्री", cut_end=3), "श्री"),             # "श" alone: the conjunct is one letter
    (HINDI, span_of(HINDI, "लड़कियों", cut_end=1), "लड़कियों"),      # ends before the last vowel sign ं
    (TAMIL, span_of(TAMIL, "தமிழ்நாடு", skip=2), "மிழ்நாடு"),       # starts on the vowel sign ி
    (TAMIL, span_of(TAMIL, "பக்கம்", cut_end=1), "பக்கம்"),          # ends before the final virama ்
    (TAMIL, span_of(TAMIL, "பக்கம்", cut_end=4), "பக்"),            # "பக" ends before the virama of க்
])
def test_spans_inside_a_letter_are_widened_to_whole_letters(context, span, widened):
    out = whole_letter_spans([context], [span])[0]
    assert context[out[0]:out[1]] == widened
    assert out[0] <= span[0] and out[1] >= span[1]
    assert cuts_letter([context], [span]).tolist() == [True]
    assert apply_rules(context, span, AnswerRules(whole_letters=True)) == tuple(out.tolist())


@pytest.mark.parametrize("context", [HINDI, TAMIL, ENGLISH])
def test_spans_on_letter_boundaries_are_unchanged_and_english_never_moves(context):
    bounds = letter_bounds(context)
    on = np.array([(a, b) for a in bounds for b in bounds if a < b])
    assert (whole_letter_spans([context] * len(on), on) == on).all()
    if context == ENGLISH:      # every character is a letter of its own: no span at all moves
        every = np.array([(a, b) for a in range(len(context)) for b in range(a + 1, len(context) + 1)])
        assert (whole_letter_spans([context] * len(every), every) == every).all()


def test_the_no_span_sentinel_empty_spans_and_out_of_range_ends_are_untouched():
    c = HINDI
    inside = c.index("ि")
    spans = np.array([(-1, -1), (inside, inside), (inside + 1, inside), (0, len(c) + 5), (len(c) + 1, len(c) + 3)])
    assert (whole_letter_spans([c] * len(spans), spans) == spans).all()
    assert whole_letter_spans([], np.zeros((0, 2), np.int64)).shape == (0, 2)


def test_many_spans_at_once_match_one_at_a_time_and_land_on_boundaries():
    rng = np.random.default_rng(0)
    contexts = [HINDI, TAMIL, ENGLISH]
    rows = rng.integers(0, 3, 300)
    a = np.array([rng.integers(0, len(contexts[r])) for r in rows])
    b = np.array([rng.integers(x + 1, len(contexts[r]) + 1) for x, r in zip(a, rows, strict=True)])
    spans = np.stack([a, b], axis=1)
    ctx = pd.Series([contexts[r] for r in rows])
    out = whole_letter_spans(ctx, spans)
    one = np.array([whole_letter_spans([c], [s])[0] for c, s in zip(ctx, spans, strict=True)])
    assert (out == one).all()
    for c, (x, y) in zip(ctx, out.tolist(), strict=True):
        bounds = set(letter_bounds(c).tolist())
        assert x in bounds and y in bounds
    assert cuts_letter(ctx, spans).sum() > 30       # Hindi and Tamil: many random cuts fall inside a letter


def test_answer_rules_widen_only_when_asked():
    examples = pd.DataFrame({"id": ["h", "t", "none"], "context": [HINDI, TAMIL, TAMIL]})
    spans = np.array([span_of(HINDI, "लड़कियों", skip=4), span_of(TAMIL, "பக்கம்", cut_end=1), (-1, -1)])
    assert answers_from_spans(examples, spans) == {"h": "ियों", "t": "பக்கம", "none": ""}
    assert answers_from_spans(examples, spans, AnswerRules(whole_letters=True)) == {"h": "कियों", "t": "பக்கம்",
                                                                                    "none": ""}
    assert not AnswerRules().whole_letters        # off by default: not measured on real out-of-fold answers yet


def test_letters_report_counts_cuts_and_scores_both_ways():
    examples = pd.DataFrame({"id": ["h1", "h2", "t1", "t2"], "context": [HINDI, HINDI, TAMIL, TAMIL],
                             "language": ["hindi", "hindi", "tamil", "tamil"],
                             "answer_text": ["लड़कियों", "श्री राम", "பக்கம்", "கிராமம்"]})
    spans = np.array([span_of(HINDI, "लड़कियों", skip=4),          # cut, and still a part of the word when widened
                      span_of(HINDI, "श्री राम"),                  # whole
                      span_of(TAMIL, "பக்கம்", cut_end=1),          # cut: widened, it is the gold answer
                      span_of(TAMIL, "கிராமம்")])                   # whole
    r = letters_report(examples, spans)
    assert r.loc["hindi"].to_dict() == {"answers": 2, "cut_letter": 1, "jaccard_as_is": 0.5,
                                        "jaccard_whole_letters": 0.5, "gain": 0.0}
    assert r.loc["tamil", "cut_letter"] == 1 and r.loc["tamil", "jaccard_as_is"] == 0.5
    assert r.loc["tamil", "jaccard_whole_letters"] == 1.0
    assert r.loc["all", "answers"] == 4 and r.loc["all", "gain"] == pytest.approx(0.75 - 0.5)
