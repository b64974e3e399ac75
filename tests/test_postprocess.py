import numpy as np
import pandas as pd

from src.postprocess import postprocess_qa_predictions
from src.predict import NO_OFFSET, WindowLogits

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
