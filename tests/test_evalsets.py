"""The evaluation sets are the agreed ones and no evaluation question or article is in any training source."""
import pandas as pd
import pytest

from research import evalsets
from src.paths import SHARED_DIR

needs_data = pytest.mark.skipif(not (SHARED_DIR / "data" / "xquad").is_dir(),
                                reason="shared real data not present on this machine")


@pytest.fixture(scope="module")
def built():
    return evalsets.eval_sets(), evalsets.train_sources()


@needs_data
def test_evaluation_sets_have_the_agreed_sizes_and_every_gold(built):
    evals, trains = built
    assert evalsets.sizes(evals) == {"xquad_hi": 265, "xquad_in_hi": 195, "xquad_in_ta": 170, "tydi_te": 669,
                                     "tydi_bn": 113}
    assert set(evals["xquad_hi"]["title"]) == set(evalsets.xquad_titles()[36:]) and len(evalsets.xquad_titles()) == 48
    for name, df in evals.items():
        assert set(df["eval_set"]) == {name} and set(df["language"]) == {evalsets.LANGUAGE[name]}
        assert df["answers"].map(len).min() >= 1
    assert evalsets.sizes(trains) == {"tydi_en": 3694, "tydi_en_dev": 440, "squad_dev": 8123, "xquad_hi_train": 925}


@needs_data
def test_no_evaluation_id_or_title_in_any_training_source(built):
    evals, trains = built
    assert evalsets.leaks(evals, trains) == []
    # the check itself sees a leak: one held-out XQuAD question (a SQuAD dev id) put back into SQuAD
    planted = dict(trains, squad_dev=pd.concat([trains["squad_dev"], evals["xquad_hi"].iloc[:1]]))
    found = evalsets.leaks(evals, planted)
    assert any("xquad_hi and squad_dev share 1 id" in f for f in found)
    assert any("title" in f for f in found)
