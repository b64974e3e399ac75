"""The ablation harness: variants differ only where they should, the log is resumable, the table is right."""
import json

import pytest

from research import ablate
from src import explog


def test_experiment_log_appends_rows_and_reports_a_broken_line(tmp_path):
    log = tmp_path / "log.jsonl"
    assert explog.read_log(log) == [] and explog.done_run_ids(log) == set()
    explog.append_run(log, {"run_id": "a", "metrics": {"hi": 0.5}})
    explog.append_run(log, {"run_id": "b", "metrics": {"hi": 0.25}})
    assert explog.done_run_ids(log) == {"a", "b"}
    assert list(explog.log_frame(log)["metrics.hi"]) == [0.5, 0.25]
    assert not list(tmp_path.glob(".log.jsonl.*"))                 # no temporary file left behind
    with pytest.raises(ValueError, match="run_id"):
        explog.append_run(log, {"metrics": {}})
    log.write_text(log.read_text() + '{"run_id": "c", "metr\n')
    with pytest.raises(ValueError, match="line 3"):
        explog.read_log(log)
    assert explog.config_hash({"a": 1, "b": [1, 2]}) == explog.config_hash({"b": [1, 2], "a": 1})
    assert explog.config_hash({"a": 1}) != explog.config_hash({"a": 2})


def test_variants_change_only_their_own_switch():
    base = ablate.variant_recipe("recipe")
    assert base.sequential and [s.name for s in base.stages] == ["external", "target"]
    plain = ablate.variant_recipe("plain")
    assert not plain.sequential and len(plain.stages) == 1
    # plain and recipe feed the same sources the same number of times: only the order differs
    count = lambda r: sorted((s.name, s.repeats) for st in r.stages for s in st.sources)
    assert sorted(dict(count(plain)).items()) == sorted({"tydi_en": 1, "squad": 1, "xquad_hi": 2}.items())
    assert sum(n for name, n in count(base) if name == "xquad_hi") == 2
    base_aug = base.augment.__dict__
    for v in ("crop", "resize", "cutout", "negsamp", "soft"):
        diff = {k for k, val in ablate.variant_recipe(v).augment.__dict__.items() if base_aug[k] != val}
        assert len(diff) == 1, (v, diff)
    assert ablate.run_config("soft", 0)["train"]["soft_label_radius"] == 3
    with pytest.raises(ValueError, match="unknown variant"):
        ablate.variant_recipe("mixup")


def test_run_ids_follow_the_configuration():
    a, b = ablate.run_config("plain", 0), ablate.run_config("plain", 1)
    assert ablate.run_id_of(a) == ablate.run_id_of(ablate.run_config("plain", 0))
    assert ablate.run_id_of(a) != ablate.run_id_of(b)
    json.dumps(a)                                                  # the log row can hold it


def fake_row(config, seed_scores={0: 0.2, 1: 0.3, 2: 0.4}):
    s = seed_scores.get(config["seed"], 0.5)
    return {"run_id": ablate.run_id_of(config), "variant": config["variant"], "seed": config["seed"],
            "metrics": {"hi": s, "te": s / 2, "bn": s / 4}, "train_seconds": 60.0, "n_train_windows": 100}


def test_grid_skips_logged_runs_and_the_table_has_mean_and_sd(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ablate, "execute", lambda config, out, data, commit=None: calls.append(config) or fake_row(config))
    log = tmp_path / "log.jsonl"
    explog.append_run(log, fake_row(ablate.run_config("plain", 1)))
    ablate.run_grid(["plain", "cutout"], log, tmp_path, tmp_path)
    assert [(c["variant"], c["seed"]) for c in calls] == [("plain", 0), ("plain", 2), ("cutout", 0)]
    calls.clear()
    ablate.run_grid(["plain", "cutout"], log, tmp_path, tmp_path)   # resumed: nothing left to run
    assert calls == []
    text = ablate.report(log, tmp_path / "t.md", tmp_path / "p.png")
    lines = text.splitlines()
    assert lines[0].startswith("| variant | hi | te | bn |")
    assert lines[2].startswith("| plain | 0.300 | 0.150 | 0.075 | 0.175 | 0.100 / 0.050 / 0.025 | 3 |")
    assert lines[3].startswith("| cutout | 0.200 | 0.100 | 0.050 | 0.117 |  | 1 | 100 | 1.0 |")   # one seed: no sd
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_seeds_option_runs_every_variant_with_them_and_the_table_keeps_all_seeds(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ablate, "execute", lambda config, out, data, commit=None: calls.append(config) or fake_row(config))
    log = tmp_path / "log.jsonl"
    ablate.run_grid(["plain"], log, tmp_path, tmp_path)
    ablate.run_grid(["plain", "cutout"], log, tmp_path, tmp_path, seeds=(0, 1))
    assert [(c["variant"], c["seed"]) for c in calls] == [("plain", 0), ("plain", 1), ("plain", 2),
                                                          ("cutout", 0), ("cutout", 1)]
    explog.append_run(log, dict(fake_row(ablate.run_config("cutout", 2)), run_id="cutout-s2-otherconfig"))
    lines = ablate.report(log, None, None).splitlines()
    assert lines[2].startswith("| plain |") and "| 3 |" in lines[2]
    assert lines[3].startswith("| cutout |") and "| 2 |" in lines[3]    # the row of another config is left out
