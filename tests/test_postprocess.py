import numpy as np
import pandas as pd
import pytest

from src.infer.answer_rules import AnswerRules, apply_rules
from src.infer.postprocess import postprocess_qa_predictions, predict_texts
from src.infer.predict import NO_OFFSET, WindowLogits

CONTEXT = "राम का जन्म अयोध्या में हुआ"
# word spans as token offsets; position 0 = CLS and 1 = a question token (no offset)
SPANS = [(0, 3), (4, 6), (7, 11), (12, 19), (20, 23), (24, 27)]


def window(start_scores, end_scores, eid="x"):
    L = len(SPANS) + 2
    offsets = np.full((1, L, 2), NO_OFFSET, dtype=np.int32)
    offsets[0, 2:] = SPANS
    s = np.full((1, L), -5.0, dtype=np.float16)
    e = np.full((1, L), -5.0, dtype=np.float16)
    for k, v in start_scores.items():
        s[0, k] = v
    for k, v in end_scores.items():
        e[0, k] = v
    return WindowLogits(np.array([eid]), s, e, offsets)


EX = pd.DataFrame({"id": ["x"], "context": [CONTEXT]})


def test_best_valid_span():
    w = window({5: 4.0, 2: 1.0}, {5: 3.0, 6: 1.0})
    assert postprocess_qa_predictions(EX, w) == {"x": "अयोध्या"}


def test_skips_end_before_start_and_question_tokens():
    # best start (idx 6) is after best end (idx 3); CLS/question positions score highest but have no offsets
    w = window({0: 9.0, 1: 9.0, 6: 5.0, 3: -1.0}, {0: 9.0, 3: 5.0, 7: 0.5})
    assert postprocess_qa_predictions(EX, w) == {"x": "में हुआ"}  # start 6 .. end 7: 5.5 beats 3 .. 3: 4.0


def test_max_answer_length():
    w = window({2: 5.0, 6: 1.0}, {7: 5.0, 6: 0.0})
    assert postprocess_qa_predictions(EX, w, max_answer_length=10) == {"x": "राम का जन्म अयोध्या में हुआ"}
    assert postprocess_qa_predictions(EX, w, max_answer_length=2) == {"x": "में हुआ"}


def test_best_over_windows_and_no_window():
    a = window({2: 1.0}, {2: 1.0})
    b = window({4: 3.0}, {4: 3.0})
    both = WindowLogits(np.array(["x", "x"]), np.vstack([a.start, b.start]), np.vstack([a.end, b.end]),
                        np.vstack([a.offsets, b.offsets]))
    ex = pd.DataFrame({"id": ["x", "y"], "context": [CONTEXT, "other"]})
    assert postprocess_qa_predictions(ex, both) == {"x": "जन्म", "y": ""}


def random_windows(rng, n_examples=60, max_windows=6, width=40, levels=None):
    """Interleaved windows of random contexts: question tokens and padding without offsets, float16 logits.

    With `levels`, logits take few distinct values, so ties between starts, ends, spans and windows abound."""
    contexts, ids, starts, ends, offsets = [], [], [], [], []
    for x in range(n_examples):
        words = rng.integers(1, 6, size=rng.integers(5, 60))
        context = " ".join("".join(rng.choice(list("कखगघचछजझटठडढ"), int(n))) for n in words)
        bounds, pos = [], 0
        for n in words:
            bounds.append((pos, pos + int(n)))
            pos += int(n) + 1
        contexts.append(context)
        for _ in range(0 if x % 7 == 0 else rng.integers(1, max_windows + 1)):   # some examples get no window
            q = rng.integers(1, 5)                                # CLS + question tokens
            lo = rng.integers(0, len(bounds))
            ctx = bounds[lo: lo + rng.integers(1, width - q)]
            off = np.full((width, 2), NO_OFFSET, dtype=np.int32)
            off[q: q + len(ctx)] = ctx
            n_tok = q + len(ctx) + 1                               # + SEP; the rest is padding
            if levels:
                s, e = rng.choice(levels, width), rng.choice(levels, width)
            else:
                s, e = rng.normal(0, 3, width), rng.normal(0, 3, width)
            s, e = s.astype(np.float16), e.astype(np.float16)
            s[n_tok:] = e[n_tok:] = -np.inf                       # padding, as predict_windows writes it
            ids.append(f"e{x}"), starts.append(s), ends.append(e), offsets.append(off)
    order = rng.permutation(len(ids))
    logits = WindowLogits(np.array(ids)[order], np.stack(starts)[order], np.stack(ends)[order],
                          np.stack(offsets)[order])
    return pd.DataFrame({"id": [f"e{x}" for x in range(n_examples)], "context": contexts}), logits


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("levels", [None, [0.0, 1.0, 2.0], [0.5]])
@pytest.mark.parametrize("n_best, max_len", [(20, 30), (1, 30), (5, 1), (3, 2), (64, 4), (20, 1000)])
def test_vectorized_equals_reference(seed, levels, n_best, max_len):
    rng = np.random.default_rng(seed)
    examples, logits = random_windows(rng, levels=levels)
    expected = postprocess_qa_predictions(examples, logits, n_best, max_len)
    assert predict_texts(examples, logits, n_best, max_len) == expected
    assert "" in expected.values() and len(set(expected.values())) > 10   # the data exercised both cases


def test_vectorized_on_real_tiny_model_logits(tiny_dirs):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from src.data.features import frame_to_batch, prepare_eval_features
    from src.data.synthetic import make_synthetic_qa
    from src.infer.predict import predict_windows

    df = make_synthetic_qa(30, seed=3)
    df["context"] = [" ".join(df["context"].sample(3, random_state=i)) + " " + c for i, c in enumerate(df["context"])]
    for name in ("tiny-bert", "tiny-xlmr"):
        tok = AutoTokenizer.from_pretrained(tiny_dirs[name])
        model = AutoModelForQuestionAnswering.from_pretrained(tiny_dirs[name])
        feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), tok, 64, 16)
        logits = predict_windows(model, feats, 32, tok.pad_token_id)
        assert len(logits) > 3 * len(df)
        assert predict_texts(df, logits) == postprocess_qa_predictions(df, logits)


@pytest.mark.parametrize("context, span, rules, expected", [
    ("विद्रोह (1857), बाद", (8, 15), AnswerRules(strip_edges=True), "1857"),
    ("विद्रोह (1857), बाद", (8, 15), AnswerRules(), "(1857),"),
    ("राम हुआ। ", (4, 9), AnswerRules(strip_edges=True), "हुआ"),          # danda stripped, matras kept
    ("வருடம் கி.பி. 1800 இல்", (7, 12), AnswerRules(keep_abbreviations=True), "கி.பி."),
    ("வருடம் கி.பி. 1800 இல்", (7, 12), AnswerRules(), "கி.பி"),
    # a word that merely ends in the letter ई is not the abbreviation ई. (ईसवी): its sentence dot stays out
    ("वह खुश हुई. फिर", (7, 10), AnswerRules(keep_abbreviations=True), "हुई"),
    ("मेरा भाई. वह", (5, 8), AnswerRules(keep_abbreviations=True), "भाई"),
    ("सन 1857 ई. में", (3, 9), AnswerRules(keep_abbreviations=True), "1857 ई."),
    ("सन 320 ई.पू. में", (3, 11), AnswerRules(keep_abbreviations=True), "320 ई.पू."),
    ("वर्ष १८५७ में", (6, 8), AnswerRules(whole_numbers=True), "१८५७"),  # cut Devanagari number widened
    ("year 1,857 then", (7, 9), AnswerRules(whole_numbers=True), "1,857"),
    ("वर्ष १८५७ में", (0, 4), AnswerRules(whole_numbers=True), "वर्ष"),     # no number touched
    ("x", (-1, -1), AnswerRules(strip_edges=True), ""),
    ("(,)", (0, 3), AnswerRules(strip_edges=True), ""),
])
def test_answer_rules(context, span, rules, expected):
    a, b = apply_rules(context, span, rules)
    assert ("" if a < 0 else context[a:b]) == expected
