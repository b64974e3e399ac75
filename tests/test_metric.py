import numpy as np
import pandas as pd
import pytest

from src.infer.metric import (
    bootstrap_ci,
    exact_match,
    f1_score,
    jaccard,
    jaccard_by_language,
    mean_jaccard,
    normalize_answer,
    qa_metrics,
    score_rows,
)


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


# ---------------------------------------------------------------- SQuAD EM/F1, several golds, intervals

@pytest.mark.parametrize("pred, gold, em, f1", [
    ("The Denver Broncos", "Denver Broncos", 1.0, 1.0),          # article and case dropped
    ("Denver Broncos!", "denver broncos", 1.0, 1.0),             # ASCII punctuation dropped
    ("Broncos", "Denver Broncos", 0.0, 2 / 3),                   # P 1, R 1/2
    ("the the Broncos Broncos", "Broncos", 0.0, 2 / 3),          # bags: P 1/2, R 1
    ("नई दिल्ली", "दिल्ली", 0.0, 2 / 3),
    ("x", "y", 0.0, 0.0),
])
def test_squad_em_and_f1_hand_computed(pred, gold, em, f1):
    assert exact_match(pred, gold) == em and f1_score(pred, gold) == pytest.approx(f1)


def test_normalize_answer_is_squads():
    assert normalize_answer("  An apple, the PEAR.  ") == "apple pear"


def test_scores_take_the_best_gold_per_question():
    df = pd.DataFrame({"prediction": ["नई दिल्ली", "chennai", "q"],
                       "answer_text": ["दिल्ली", "madurai", "z"],
                       "answers": [["दिल्ली", "नई दिल्ली"], ["madurai", "Chennai city"], np.nan],
                       "language": ["hindi", "tamil", "tamil"]})
    s = score_rows(df)
    assert s["jaccard"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert s["em"].tolist() == [1.0, 0.0, 0.0] and s["f1"].tolist() == pytest.approx([1.0, 2 / 3, 0.0])
    m = qa_metrics(df)
    assert m["jaccard_all"] == pytest.approx(0.5) and m["jaccard_tamil"] == pytest.approx(0.25)
    assert m["em_hindi"] == 1.0 and m["nonzero_all"] == pytest.approx(2 / 3) and m["nonzero_tamil"] == 0.5
    # without the answers column only the first gold counts
    assert qa_metrics(df.drop(columns="answers"))["jaccard_hindi"] == pytest.approx(0.5)


def test_bootstrap_interval_covers_the_true_mean_and_is_seeded():
    rng = np.random.default_rng(123)
    covered, widths = 0, []
    for _ in range(200):                          # 200 samples of 265 Bernoulli(0.3) "questions"
        x = (rng.random(265) < 0.3).astype(float)
        lo, hi = bootstrap_ci(x, n_boot=400, seed=1)
        covered += lo <= 0.3 <= hi
        widths.append(hi - lo)
    assert 0.90 <= covered / 200 <= 0.99           # nominal 95%
    assert np.mean(widths) == pytest.approx(2 * 1.96 * np.sqrt(0.3 * 0.7 / 265), rel=0.15)
    x = rng.random(50)
    assert bootstrap_ci(x, seed=7) == bootstrap_ci(x, seed=7) != bootstrap_ci(x, seed=8)
    lo, hi = bootstrap_ci(x)
    assert lo < x.mean() < hi
    assert np.isnan(bootstrap_ci([])[0])
    m = qa_metrics(pd.DataFrame({"prediction": ["a", "b"], "answer_text": ["a", "c"], "language": ["x", "x"]}),
                   interval=True)
    assert m["jaccard_all_lo"] <= m["jaccard_all"] <= m["jaccard_all_hi"]
