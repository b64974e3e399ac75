"""The bf16 check's report: differences are judged against the seed spread, loss curves compared step by step."""
from research.bench.bf16_check import SETS, report


def _run(precision, seed, j, losses):
    r = {"name": f"{precision}-s{seed}", "precision": precision, "seed": seed, "windows": 64, "train_seconds": 10.0
         if precision == "fp32" else 6.0, "losses": losses}
    for s in SETS:
        r.update({f"jaccard_{s}": j, f"jaccard_{s}_lo": j - 0.05, f"jaccard_{s}_hi": j + 0.05, f"f1_{s}": j})
    return r


def test_report_says_within_noise_only_when_the_difference_is_under_twice_the_seed_sd():
    close = [_run("fp32", 0, 0.30, [(10, 2.0)]), _run("fp32", 1, 0.34, [(10, 2.2)]),
             _run("bf16", 0, 0.31, [(10, 2.1)]), _run("bf16", 1, 0.35, [(10, 2.3)])]
    text = report(close)
    assert "bf16 1.67x fp32" in text and text.count("within seed noise") == len(SETS)
    assert "same seed: 0.100; between two seeds of one precision: 0.200" in text
    far = close[:2] + [_run("bf16", 0, 0.10, [(10, 4.0)]), _run("bf16", 1, 0.12, [(10, 4.1)])]
    assert report(far).count("beyond seed noise") == len(SETS)
