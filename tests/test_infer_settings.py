"""Inference settings are chosen on questions no run trained on, and their gain is a paired difference."""
import numpy as np
import pandas as pd
import pytest

from research.experiments import ablate, evalsets, infer_settings
from src.common.paths import SHARED_DIR

needs_data = pytest.mark.skipif(not (SHARED_DIR / "data" / "xquad").is_dir(),
                                reason="shared real data not present on this machine")


@needs_data
def test_dev_split_is_what_no_run_trained_on_and_no_evaluated_article():
    data = SHARED_DIR / "data"
    dev = infer_settings.dev_split(data)
    trains, evals = ablate.load_data(data)
    assert len(dev) == 925 - ablate.SIZES["xquad_hi_train"]
    for variant in ablate.VARIANTS:       # every variant trains on the same sample of questions
        used = pd.concat(ablate.frames_for(ablate.variant_recipe(variant), trains).values())
        assert not set(dev["id"]) & set(used["id"])
    assert evalsets.leaks(evals, {"dev": dev}) == []


def test_grid_table_ranks_by_mean_and_gains_are_paired():
    trained, other = infer_settings.TRAINED.label(), "wider"
    ids = [f"q{i}" for i in range(40)]
    base = np.tile([0.0, 1.0], 20)
    # "wider" fixes the same 4 questions in both seeds: a small, consistent, paired gain
    better = base.copy()
    better[[0, 2, 4, 6]] = 1.0
    seeds = [pd.DataFrame({trained: base, other: better}, index=ids) for _ in range(2)]
    t = infer_settings.grid_table(seeds)
    assert t["setting"].tolist() == [other, trained]
    assert t.loc[0, "gain"] == pytest.approx(0.1) and t.loc[1, "gain"] == 0
    lo, hi = (float(x) for x in t.loc[0, "gain 95%"].strip("[]").split(","))
    assert 0 <= lo < 0.1 < hi          # paired: no resample can make a gain that never loses negative


def test_a_tie_keeps_the_training_setting():
    trained = infer_settings.TRAINED.label()
    ids = [f"q{i}" for i in range(10)]
    same = np.linspace(0, 1, 10)
    seeds = [pd.DataFrame({trained: same, **{f"tie {k}": same for k in range(5)}}, index=ids)]
    assert infer_settings.grid_table(seeds).loc[0, "setting"] == trained
