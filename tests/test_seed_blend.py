import numpy as np
import pandas as pd

from research.experiments import seed_blend
from src.infer.predict import NO_OFFSET, WindowLogits

CONTEXT = "राम का जन्म अयोध्या में हुआ"
SPANS = [(0, 3), (4, 6), (7, 11), (12, 19), (20, 23), (24, 27)]   # word offsets; token 0 = CLS, 1 = the question


def model(start: dict, end: dict, ids=("a", "b")) -> WindowLogits:
    """One window per example, the same scores for each."""
    n, width = len(ids), len(SPANS) + 2
    offsets = np.full((n, width, 2), NO_OFFSET, dtype=np.int32)
    offsets[:, 2:] = SPANS
    s = np.full((n, width), -5.0, dtype=np.float16)
    e = np.full((n, width), -5.0, dtype=np.float16)
    for k, v in start.items():
        s[:, k] = v
    for k, v in end.items():
        e[:, k] = v
    return WindowLogits(np.array(ids), s, e, offsets)


VALID = pd.DataFrame({"id": ["a", "b"], "context": [CONTEXT] * 2, "answer_text": ["अयोध्या"] * 2,
                      "eval_set": ["s"] * 2})


def test_two_seeds_wrong_in_opposite_ways_average_to_the_gold_answer():
    # seed 1 prefers "जन्म" (token 4) by a little over "अयोध्या" (5); seed 2 prefers "में" (6) by a little over it:
    # each alone is wrong, and their average puts "अयोध्या" on top
    one = model({4: 4.0, 5: 3.5, 6: -3.0}, {4: 4.0, 5: 3.5, 6: -3.0})
    two = model({4: -3.0, 5: 3.5, 6: 4.0}, {4: -3.0, 5: 3.5, 6: 4.0})
    m = seed_blend.blend_metrics(VALID, [one, two], ["s"])["s"]
    assert m["seeds_mean"] == 0.0 and m["seeds_best"] == 0.0
    assert m["average"] == 1.0 and m["gain"] == 1.0


def test_a_seed_averaged_with_itself_gains_nothing_and_the_table_says_so():
    one = model({5: 4.0}, {5: 4.0})
    m = seed_blend.blend_metrics(VALID, [one, one], ["s"])
    assert m["s"]["average"] == m["s"]["seeds_mean"] == 1.0 and m["s"]["gain"] == 0.0
    row = {"grid": "article", "variant": "plain", "runs": ["r0", "r1"], "sets": ["s"], "metrics": m}
    assert "| article | plain | 2 | s | 1.000 | 1.000 | 1.000 [1.000, 1.000] | +0.000 [+0.000, +0.000] |" \
        in seed_blend.markdown([row])


def test_size_flags_pick_the_bigger_grid_and_its_rows_say_which(monkeypatch, tmp_path):
    # the full-data runs (--size hindi=925 --size tamil=658) have their own run ids: averaging them needs the grid's
    # sizes set as `ablate run` sets them, and the table must tell that grid from the default one
    from research.experiments import ablate_long
    monkeypatch.setattr(ablate_long, "SIZES", dict(ablate_long.SIZES))
    seen = {}

    def fake_run(shape, variant, log, data_dir, out_root=None, overrides=()):
        seen.update(sizes=dict(ablate_long.SIZES), overrides=list(overrides))

    monkeypatch.setattr(seed_blend, "run", fake_run)
    seed_blend.main(["--size", "hindi=925", "--size", "tamil=658", "--log", str(tmp_path / "log.jsonl"),
                     "--table", str(tmp_path / "t.md")])
    assert seen["sizes"]["hindi"] == 925 and seen["sizes"]["tamil"] == 658
    assert seen["overrides"] == ["hindi=925", "tamil=658"]
    m = seed_blend.blend_metrics(VALID, [model({5: 4.0}, {5: 4.0})] * 2, ["s"])
    row = {"grid": "article", "overrides": seen["overrides"], "variant": "plain", "runs": ["r0", "r1"],
           "sets": ["s"], "metrics": m}
    assert "| article (hindi=925, tamil=658) | plain | 2 |" in seed_blend.markdown([row])
