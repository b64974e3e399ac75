import pandas as pd
import pytest

from src.metric import jaccard, jaccard_by_language, mean_jaccard


@pytest.mark.parametrize("a, b, expected", [
    ("दिल्ली", "दिल्ली", 1.0),
    ("नई दिल्ली", "दिल्ली", 0.5),                 # {नई, दिल्ली} vs {दिल्ली}: 1/2
    ("சென்னை நகரம்", "மதுரை நகரம்", 1 / 3),        # 1 shared of 3 distinct
    ("Ramanujan", "ramanujan", 1.0),               # lowercased
    ("a a b", "b", 0.5),                           # sets, not bags
    ("x", "y", 0.0),
    ("", "", 1.0),
    ("", "y", 0.0),
])
def test_jaccard_hand_computed(a, b, expected):
    assert jaccard(a, b) == pytest.approx(expected)


def test_mean_and_by_language():
    df = pd.DataFrame({"prediction": ["a b", "c", "d"], "answer_text": ["a", "c", "e"],
                       "language": ["hindi", "tamil", "tamil"]})
    assert mean_jaccard(df.prediction, df.answer_text) == pytest.approx((0.5 + 1 + 0) / 3)
    by = jaccard_by_language(df)
    assert by == pytest.approx({"all": 0.5, "hindi": 0.5, "tamil": 0.5})
    with pytest.raises(ValueError):
        mean_jaccard(["a"], [])
