"""The ablation harness: variants differ only where they should, the log is resumable, the table is right."""
import dataclasses
import json

import pandas as pd
import pytest

from research.experiments import ablate, evalsets, grid_flags
from src.common.paths import REPO_ROOT
from src.train import explog


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


def test_a_row_is_updated_in_place_and_an_unknown_run_is_an_error(tmp_path):
    log = tmp_path / "log.jsonl"
    explog.append_run(log, {"run_id": "a", "metrics": {"x": 1}})
    explog.append_run(log, {"run_id": "b", "metrics": {"x": 2}})
    explog.update_run(log, "a", metrics={"x": 3}, rescored_at="abc")
    assert explog.read_log(log) == [{"run_id": "a", "metrics": {"x": 3}, "rescored_at": "abc"},
                                    {"run_id": "b", "metrics": {"x": 2}}]
    with pytest.raises(KeyError, match="no row with run_id 'c'"):
        explog.update_run(log, "c", metrics={})
    # built again elsewhere: the newest row is the cached model's, the older one keeps the scores it had
    explog.append_run(log, {"run_id": "a", "metrics": {"x": 4}})
    explog.update_run(log, "a", metrics={"x": 5})
    assert [r["metrics"]["x"] for r in explog.read_log(log)] == [3, 2, 5]


def test_variants_change_only_their_own_switch():
    base = ablate.variant_recipe("recipe")
    assert base.sequential and [s.name for s in base.stages] == ["external", "target"]
    plain = ablate.variant_recipe("plain")
    assert not plain.sequential and len(plain.stages) == 1
    # plain and recipe feed the same sources the same number of times: only the order differs
    count = lambda r: sorted((s.name, s.repeats) for st in r.stages for s in st.sources)
    assert dict(count(plain)) == {"tydi_en_dev": 1, "xquad_hi_train": 2}
    assert sum(n for name, n in count(base) if name == "xquad_hi_train") == 2
    assert all(st.max_length >= 256 for st in base.stages)               # room for resizing to grow
    base_aug = base.augment.__dict__
    for v in ("crop", "resize", "cutout", "negsamp", "soft"):
        diff = {k for k, val in ablate.variant_recipe(v).augment.__dict__.items() if base_aug[k] != val}
        assert len(diff) == 1, (v, diff)
    every = ablate.variant_recipe("all").augment
    but = ablate.variant_recipe("all-but-soft").augment
    assert every.soft_label_radius == 3 and but.soft_label_radius == 0
    assert dataclasses.replace(but, soft_label_radius=3) == every
    assert ablate.run_config("soft", 0)["train"]["soft_label_radius"] == 3
    with pytest.raises(ValueError, match="unknown variant"):
        ablate.variant_recipe("mixup")


def test_run_ids_follow_the_configuration():
    a, b = ablate.run_config("plain", 0), ablate.run_config("plain", 1)
    assert ablate.run_id_of(a) == ablate.run_id_of(ablate.run_config("plain", 0))
    assert ablate.run_id_of(a) != ablate.run_id_of(b)
    json.dumps(a)                                                  # the log row can hold it


SETS = ablate.EVAL_SETS


def fake_row(config, seed_scores=None, shift=None):
    seed_scores = {0: 0.2, 1: 0.3, 2: 0.4} if seed_scores is None else seed_scores
    s = seed_scores.get(config["seed"], 0.5) + (shift or {}).get(config["variant"], 0.0)
    metrics = {}
    for k, n in enumerate(SETS):
        metrics.update({n: s / (k + 1), f"{n}_lo": s / (k + 1) - 0.05, f"{n}_hi": s / (k + 1) + 0.05})
    return {"run_id": ablate.run_id_of(config), "kind": "ablate", "variant": config["variant"],
            "seed": config["seed"], "metrics": metrics, "train_seconds": 60.0, "n_train_windows": 100}


def fake_execute(calls, shift=None):
    return lambda config, out, data, commit=None: calls.append(config) or fake_row(config, shift=shift)


def test_grid_skips_logged_runs_and_the_table_has_mean_sd_interval_and_verdicts(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ablate, "execute", fake_execute(calls))
    log = tmp_path / "log.jsonl"
    explog.append_run(log, fake_row(ablate.run_config("plain", 1)))
    explog.append_run(log, {"run_id": "base-qa-x", "kind": "base-qa", "metrics": {}})   # another kind: ignored
    ablate.run_grid(["plain", "cutout"], log, tmp_path, tmp_path)
    assert [(c["variant"], c["seed"]) for c in calls] == [("plain", 0), ("plain", 2), ("cutout", 0)]
    calls.clear()
    ablate.run_grid(["plain", "cutout"], log, tmp_path, tmp_path)   # resumed: nothing left to run
    assert calls == []
    text = ablate.report(log, tmp_path / "t.md", tmp_path / "p.png")
    lines = text.splitlines()
    assert lines[0].startswith("| variant | seeds | xquad_hi (paragraph) | xquad_in_hi (paragraph) | "
                               "xquad_in_ta (paragraph) | tydi_te (paragraph) | tydi_bn (paragraph) | train windows")
    assert lines[2].startswith("| plain | 3 | 0.300 ± 0.100 [0.25, 0.35] | 0.150 ± 0.050 [0.10, 0.20] |")
    assert lines[3].startswith("| cutout | 1 | 0.200 [0.15, 0.25] |")                  # one seed: no sd
    # cutout's -0.1 on xquad_hi is one plain sd: within 2 x sqrt(0.1^2 + 0.1^2)
    assert "- cutout (1 seed): within the noise everywhere (xquad_hi -0.100" in text
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_the_table_names_each_columns_shape_and_never_invents_an_article_score():
    from research.experiments import ablation_table
    rows = [{"variant": "plain", "seed": s, "train_seconds": 60.0, "n_train_windows": 100,
             "metrics": {"xquad_hi": 0.4 + s / 10, "xquad_hi_lo": 0.3, "xquad_hi_hi": 0.5}} for s in (0, 1)]
    rows.append({"variant": "crop", "seed": 0, "train_seconds": 60.0, "n_train_windows": 100,
                 "metrics": {"xquad_hi": 0.45, "xquad_hi_lo": 0.35, "xquad_hi_hi": 0.55, "xquad_hi_article": 0.3,
                             "xquad_hi_article_lo": 0.25, "xquad_hi_article_hi": 0.35}})
    s = ablation_table.summary(rows, ["xquad_hi"], ["plain"])
    old = ablation_table.markdown_table(s[s["variant"] == "plain"], ["xquad_hi"]).splitlines()
    assert old[0] == "| variant | seeds | xquad_hi (paragraph) | train windows | train time (min) |"  # no article yet
    lines = ablation_table.markdown_table(s, ["xquad_hi"]).splitlines()
    assert lines[0] == ("| variant | seeds | xquad_hi (paragraph) | xquad_hi (article) | train windows | "
                        "train time (min) |")
    assert lines[2] == "| plain | 2 | 0.450 ± 0.071 [0.30, 0.50] | - | 100 | 1.0 |"     # logged before: "-"
    assert lines[3] == "| crop | 1 | 0.450 [0.35, 0.55] | 0.300 [0.25, 0.35] | 100 | 1.0 |"
    only = ablation_table.markdown_table(s, ["xquad_hi"], shapes=["article"]).splitlines()
    assert only[0].startswith("| variant | seeds | xquad_hi (article) | train windows")


def test_a_variant_far_from_plain_gets_follow_up_seeds_and_a_verdict_beyond_the_noise(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ablate, "execute", fake_execute(calls, shift={"negsamp": 0.5, "crop": 0.05}))
    log = tmp_path / "log.jsonl"
    ablate.run_grid(["plain", "negsamp", "crop"], log, tmp_path, tmp_path)
    # crop (half a plain sd below plain's mean) is not followed up; negsamp (+0.5) is
    assert [(c["variant"], c["seed"]) for c in calls] == [("plain", 0), ("plain", 1), ("plain", 2), ("negsamp", 0),
                                                          ("crop", 0), ("negsamp", 1), ("negsamp", 2)]
    text = ablate.report(log, None, None)
    assert "- negsamp (3 seeds): beyond the noise on xquad_hi +0.500" in text


def test_follow_up_seeds_run_in_the_callers_order(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ablate, "execute", fake_execute(calls, shift={"all": -0.5, "recipe": 0.5}))
    ablate.run_grid(["plain", "all", "recipe"], tmp_path / "log.jsonl", tmp_path, tmp_path)
    # the Makefile lists the whole scheme first, so its follow-ups run first (not in the module's VARIANTS order)
    assert [(c["variant"], c["seed"]) for c in calls][-4:] == [("all", 1), ("all", 2), ("recipe", 1), ("recipe", 2)]


def test_seeds_option_runs_every_variant_with_them_and_the_table_keeps_all_seeds(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ablate, "execute", fake_execute(calls))
    log = tmp_path / "log.jsonl"
    ablate.run_grid(["plain"], log, tmp_path, tmp_path)
    ablate.run_grid(["plain", "cutout"], log, tmp_path, tmp_path, seeds=(0, 1))
    assert [(c["variant"], c["seed"]) for c in calls] == [("plain", 0), ("plain", 1), ("plain", 2),
                                                          ("cutout", 0), ("cutout", 1)]
    explog.append_run(log, dict(fake_row(ablate.run_config("cutout", 2)), run_id="cutout-s2-otherconfig"))
    lines = ablate.report(log, None, None).splitlines()
    assert lines[2].startswith("| plain | 3 |")
    assert lines[3].startswith("| cutout | 2 |")                    # the row of another config is left out


def test_seeds_take_commas_or_spaces_and_a_bad_one_is_named():
    assert grid_flags.parse_seeds("1,2") == grid_flags.parse_seeds("1 2") == grid_flags.parse_seeds(" 1, 2 ") == (1, 2)
    assert grid_flags.parse_seeds("") is None
    with pytest.raises(SystemExit, match=r"--seeds .*'x' is not one"):
        grid_flags.parse_seeds("1,x")


def test_make_ablate_reads_and_writes_the_committed_log(monkeypatch):
    seen = []
    monkeypatch.setattr(ablate, "report", lambda log, table, png: seen.append(log) or "")
    ablate.main(["report"])
    assert seen == [explog.REPO_LOG] and explog.REPO_LOG.parent.name == "docs"


def test_a_real_run_with_a_tiny_stand_in_trains_scores_logs_and_resumes(tiny_dirs, tmp_path, monkeypatch):
    from src.data.synthetic import make_synthetic_qa
    trains = {"tydi_en_dev": make_synthetic_qa(10, seed=0), "xquad_hi_train": make_synthetic_qa(20, seed=1)}
    # the sets share their ids, as XQuAD and XQuAD-IN share SQuAD's: each must still be scored on its own contexts
    evals = {n: make_synthetic_qa(4, seed=10 + k).assign(eval_set=n, id=[f"q{i}" for i in range(4)])
             for k, n in enumerate(SETS)}
    monkeypatch.setattr(ablate, "load_data", lambda data_dir: (trains, evals))
    monkeypatch.setattr(ablate, "base_model", lambda overrides=None: tiny_dirs["tiny-bert"])
    monkeypatch.setattr(ablate, "TRAIN", dict(ablate.TRAIN, backbone="tiny-bert", learning_rate=1e-3, bf16=False,
                                              batch_size=8))
    log = tmp_path / "log.jsonl"
    ablate.run_grid(["plain"], log, tmp_path / "runs", tmp_path, seeds=(0,))
    rows = explog.read_log(log)
    assert len(rows) == 1 and rows[0]["kind"] == "ablate" and rows[0]["data"]["train"] == {
        "tydi_en_dev": 10, "xquad_hi_train": 20}
    m = rows[0]["metrics"]
    for n in SETS:
        assert m[f"{n}_lo"] <= m[n] <= m[f"{n}_hi"] and 0 <= m[f"{n}_f1"] <= 1
    assert not (tmp_path / "runs" / rows[0]["run_id"] / "checkpoints").exists()
    from src.infer.predict import WindowLogits
    held = WindowLogits.load(tmp_path / "runs" / rows[0]["run_id"] / "xquad_hi_logits.npz")
    assert set(held.example_id) == {f"xquad_hi/q{i}" for i in range(4)}
    oof = pd.read_csv(tmp_path / "runs" / rows[0]["run_id"] / "oof.csv")
    contexts = evalsets.combined(evals).set_index("id")["context"]
    assert len(oof) == 4 * len(SETS) and all(
        isinstance(p, float) or p in contexts[i] for i, p in zip(oof["id"], oof["prediction"], strict=True))
    # re-scoring the saved model gives the same scores and rewrites the row and the run's metrics.json
    rid = rows[0]["run_id"]
    again = ablate.rescore(rid, log, tmp_path / "runs", tmp_path)
    assert again["metrics"] == m and "rescored_at" in explog.read_log(log)[0]
    saved = json.loads((tmp_path / "runs" / rid / "metrics.json").read_text())["metrics"]
    assert saved["jaccard_xquad_hi"] == m["xquad_hi"]
    monkeypatch.setattr(ablate, "execute", lambda *a, **k: pytest.fail("a logged run was re-run"))
    ablate.run_grid(["plain"], log, tmp_path / "runs", tmp_path, seeds=(0,))
    assert ablate.report(log, None, None).splitlines()[2].startswith("| plain | 1 |")


def test_another_base_gets_its_own_run_ids_and_the_default_keeps_the_logged_ones(monkeypatch):
    logged = {r["run_id"] for r in explog.read_log(explog.REPO_LOG)}
    default = ablate.run_config("plain", 0)
    assert ablate.run_id_of(default) in logged and "base_config" not in default
    over = grid_flags.parse_base_overrides(["group_by_length=true", "max_windows=0"])
    assert over == {"group_by_length": True, "max_windows": 0}
    monkeypatch.setattr(ablate, "BASE", over)
    other = ablate.run_config("plain", 0)
    assert other["base_config"] == over and other["base"] != default["base"]
    assert ablate.run_id_of(other) != ablate.run_id_of(default)


def test_a_train_override_gets_its_own_run_ids_and_cannot_reorder_a_designed_recipe(monkeypatch):
    default = ablate.run_config("plain", 0)
    over = grid_flags.parse_train_overrides(["group_by_length=true", "learning_rate=1e-4", "epochs=2"], ablate.TRAIN)
    assert over == {"group_by_length": True, "learning_rate": 1e-4, "epochs": 2}
    monkeypatch.setattr(ablate, "TRAIN", dict(ablate.TRAIN, **over))
    other = ablate.run_config("plain", 0)
    assert other["train"]["group_by_length"] is True and ablate.run_id_of(other) != ablate.run_id_of(default)
    with pytest.raises(ValueError, match="'recipe' feeds its stages in order"):
        ablate.run_config("recipe", 0)
    for pair, message in [("seed=3", "KEY in"), ("epochs=1.5", "wants a int"), ("bf16=yes", "true or false")]:
        with pytest.raises(SystemExit, match=message):
            grid_flags.parse_train_overrides([pair], ablate.TRAIN)


@pytest.mark.parametrize("pair, message", [("nope=1", "KEY in"), ("max_windows", "KEY=VALUE"),
                                           ("group_by_length=maybe", "true or false"),
                                           ("max_windows=many", "wants a int")])
def test_a_bad_base_override_names_the_field(pair, message):
    with pytest.raises(SystemExit, match=message):
        grid_flags.parse_base_overrides([pair])


def test_a_reproduced_run_is_logged_as_a_repeat_and_the_table_keeps_the_original(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ablate, "execute", lambda config, out, data, commit=None: calls.append(out) or dict(
        fake_row(config, seed_scores={0: 0.25}), precision="bf16", machine={"cpu": "Xeon"}, train_seconds=120.0))
    log = tmp_path / "log.jsonl"
    config = ablate.run_config("plain", 0)
    original = dict(fake_row(config), config=config, precision="fp32", machine={"cpu": "EPYC"})
    explog.append_run(log, original)
    rid = original["run_id"]
    logged, new = ablate.reproduce(rid, log, tmp_path, tmp_path)
    assert logged["metrics"] == original["metrics"]
    assert (new["run_id"], new["kind"], new["reproduces"]) == (f"{rid}-r1", "reproduce", rid)
    assert calls == [tmp_path / f"{rid}-r1"]                       # its own folder: the original's model stays
    assert ablate.reproduce(rid, log, tmp_path, tmp_path)[1]["run_id"] == f"{rid}-r2"
    text = ablate.report(log, None, None)
    assert text.splitlines()[2].startswith("| plain | 1 | 0.200 [0.15, 0.25] |")   # the repeats stay out of it
    assert f"| {rid} | EPYC | fp32 | 1.0 | 0.200 |" in text and f"| {rid}-r1 | Xeon | bf16 | 2.0 | 0.250 |" in text
    assert "| the 2 repeats of plain, mean ± sd | | | 2.0 | 0.250 ± 0.000 |" in text
    other = ablate.run_config("cutout", 0)     # another variant's repeat stays out of plain's group
    explog.append_run(log, dict(fake_row(other), config=other, machine={"cpu": "EPYC"}))
    ablate.reproduce(ablate.run_id_of(other), log, tmp_path, tmp_path)
    text = ablate.report(log, None, None)
    assert "| the 2 repeats of plain, mean ± sd | | | 2.0 | 0.250 ± 0.000 |" in text
    assert "repeats of cutout" not in text and "the 3 repeats" not in text
    with pytest.raises(SystemExit, match="not an ablation run in .*log.jsonl"):
        ablate.reproduce(f"{rid}-r1", log, tmp_path, tmp_path)


def test_make_ablate_target_prints_the_committed_runs_without_training_and_keeps_the_grids_table(
        tmp_path, monkeypatch):
    import re
    import shlex
    makefile = (REPO_ROOT / "Makefile").read_text()
    target_args = shlex.split(re.search(r"^TARGET_ARGS := (.*)$", makefile, re.M).group(1))
    recipe_line = re.search(r"^ablate-target:.*\n\t(.*)$", makefile, re.M).group(1)
    assert "TABLE=docs/ablation_target_table.md" in recipe_line and "PLOT=" in recipe_line
    for name in ("BASE", "TRAIN", "SIZES"):   # main() sets these module globals from the flags
        monkeypatch.setattr(ablate, name, dict(getattr(ablate, name)))
    monkeypatch.setattr(ablate, "execute", lambda *a, **k: pytest.fail("a logged target run was re-run"))
    ablate.main(["run", "--variants", "plain", "--seeds", "0,1,2", *target_args, "--table", str(tmp_path / "t.md")])
    text = (tmp_path / "t.md").read_text()
    plain = text.splitlines()[2]
    assert plain.startswith("| plain | 3 | 0.453 ± 0.011") and "| 2998 |" in plain
    # the bf16 repeats on an AMX Xeon, grouped under their variant
    assert re.search(r"\| the \d+ repeats of plain, mean ± sd \| \| \| [\d.]+ \| 0\.4[5-9]\d ± ", text)


def test_the_time_column_keeps_to_the_first_runs_machine_settings():
    # a seed run later on a twice-as-fast CPU (or with other malloc settings) would halve the variant's minutes
    from research.experiments import ablation_table
    amd = {"cpu": "AMD EPYC", "malloc": None}
    rows = [{"variant": "plain", "seed": s, "train_seconds": sec, "n_train_windows": 100, "machine": m,
             "metrics": {"xquad_hi": 0.4, "xquad_hi_lo": 0.3, "xquad_hi_hi": 0.5}}
            for s, sec, m in [(0, 600.0, amd), (1, 720.0, amd), (2, 300.0, {"cpu": "Intel(R) Xeon(R) Processor"}),
                              (3, 360.0, {"cpu": "AMD EPYC", "malloc": {"MALLOC_MMAP_THRESHOLD_": "33554432"}})]]
    s = ablation_table.summary(rows, ["xquad_hi"], ["plain"])
    assert s.loc[0, "n_seeds"] == 4
    assert s.loc[0, "train_min"] == 11.0       # (600 + 720) / 2 s: the two runs on seed 0's settings
    assert ablation_table.summary(rows[2:], ["xquad_hi"])["train_min"][0] == 5.0


def test_a_grid_logged_on_another_kind_of_machine_gets_no_new_run_until_plain_is_repeated_there(
        tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(ablate, "execute", fake_execute(calls))
    xeon, epyc = ("Intel(R) Xeon(R) Processor", True), {"cpu": "AMD EPYC", "cpu_bf16": True}
    monkeypatch.setattr(ablate, "this_machine_kind", lambda: xeon)
    log = tmp_path / "log.jsonl"
    plain = [dict(fake_row(ablate.run_config("plain", s)), machine=epyc) for s in (0, 1, 2)]
    for row in plain:
        explog.append_run(log, row)
    ablate.run_grid(["plain", "cutout"], log, tmp_path, tmp_path)
    assert calls == []
    out = capsys.readouterr().out
    assert "not run cutout-s0" in out and "trained on AMD EPYC" in out and "reproduce" in out
    assert "--any-machine" in out
    for row in plain[:2]:     # two of plain's three runs repeated here: no offset yet, still nothing runs
        explog.append_run(log, dict(row, run_id=row["run_id"] + "-r1", kind="reproduce", reproduces=row["run_id"],
                                    machine={"cpu": xeon[0], "cpu_bf16": True}))
    ablate.run_grid(["plain", "cutout"], log, tmp_path, tmp_path)
    assert calls == []
    explog.append_run(log, dict(plain[2], run_id=plain[2]["run_id"] + "-r1", kind="reproduce",
                                reproduces=plain[2]["run_id"], machine={"cpu": xeon[0], "cpu_bf16": True}))
    monkeypatch.setattr(ablate, "this_machine_kind", lambda: pytest.fail("probed with nothing left to run"))
    ablate.run_grid(["plain"], log, tmp_path, tmp_path)   # a complete grid never probes the machine
    monkeypatch.setattr(ablate, "this_machine_kind", lambda: xeon)
    ablate.run_grid(["plain", "cutout"], log, tmp_path, tmp_path)    # plain's offset is measured here: it runs
    assert [(c["variant"], c["seed"]) for c in calls] == [("cutout", 0)]
    calls.clear()
    monkeypatch.setattr(ablate, "this_machine_kind", lambda: ("AMD EPYC", False))   # a third kind, no repeats
    ablate.run_grid(["crop"], log, tmp_path, tmp_path, seeds=(0,))
    assert calls == []
    ablate.run_grid(["crop"], log, tmp_path, tmp_path, seeds=(0,), any_machine=True)
    assert [(c["variant"], c["seed"]) for c in calls] == [("crop", 0)]
    calls.clear()
    monkeypatch.setattr(ablate, "this_machine_kind", lambda: ("AMD EPYC", True))   # the grid's kind: runs as before
    ablate.run_grid(["resize"], log, tmp_path, tmp_path, seeds=(0,))
    assert [(c["variant"], c["seed"]) for c in calls] == [("resize", 0)]


def test_runs_from_another_kind_of_machine_are_shifted_by_plains_offset_there():
    from research.experiments import ablation_table
    a, c, d = ({"cpu": "EPYC", "cpu_bf16": True}, {"cpu": "Xeon", "cpu_bf16": True},
               {"cpu": "Xeon", "cpu_bf16": False})

    def row(variant, seed, score, machine, **extra):
        return {"run_id": f"{variant}-s{seed}" + extra.pop("suffix", ""), "variant": variant, "seed": seed,
                "machine": machine, "train_seconds": 60.0, "n_train_windows": 100,
                "metrics": {"x": score, "x_lo": score - 0.05, "x_hi": score + 0.05, "x_article": score / 2}, **extra}
    rows = [row("plain", s, v, a) for s, v in [(0, 0.40), (1, 0.42), (2, 0.44)]]
    rows += [row("cutout", 0, 0.45, a), row("cutout", 1, 0.39, c), row("cutout", 2, 0.40, c), row("crop", 0, 0.3, d)]
    repeats = [row("plain", s, v, c, suffix="-r1", kind="reproduce", reproduces=f"plain-s{s}")
               for s, v in [(0, 0.37), (1, 0.38), (2, 0.39)]]
    repeats += [row("plain", 0, 0.2, d, suffix="-r2", kind="reproduce", reproduces="plain-s0")]   # one seed only
    offsets = ablation_table.machine_offsets(rows, repeats, ["x", "x_article"])
    assert set(offsets) == {("Xeon", True)}            # the bf16-less Xeon repeated one seed of plain: no offset
    assert offsets[("Xeon", True)] == pytest.approx({"x": 0.04, "x_article": 0.02})
    shifted = ablation_table.on_first_machine(rows, repeats, ["x", "x_article"])
    assert [r.get("offset_from") for r in shifted] == [None] * 4 + ["Xeon", "Xeon", None]
    assert shifted[4]["metrics"] == pytest.approx({"x": 0.43, "x_lo": 0.38, "x_hi": 0.48, "x_article": 0.215})
    assert rows[4]["metrics"]["x"] == 0.39                                    # the logged row is left alone
    assert shifted[6] is rows[6]                                              # no offset: as logged
    s = ablation_table.summary(shifted, ["x"], ["plain", "cutout"])
    assert s.loc[1, "x"] == pytest.approx((0.45 + 0.43 + 0.44) / 3) and s.loc[1, "n_offset"] == 2
    assert "| cutout | 3 (2 shifted) | 0.440 ± 0.010 [0.39, 0.49] |" in ablation_table.markdown_table(s, ["x"])
    note = ablation_table.offsets_note(rows, repeats, ["x", "x_article"])
    assert note.startswith("Shifted to EPYC") and "2 runs trained on Xeon (bf16 True)" in note
    assert "x +0.040 ± 0.013, x_article +0.020 ± 0.006" in note      # sqrt(0.02^2/3 + 0.01^2/3) for x


def test_the_table_says_plainly_which_variant_beats_plain_beyond_the_noise_or_that_none_does():
    from research.experiments import ablation_table

    def rows(variant, scores):
        return [{"variant": variant, "seed": k, "train_seconds": 60.0, "n_train_windows": 100,
                 "metrics": {"x": v, "x_lo": v - 0.05, "x_hi": v + 0.05, "y": 0.5, "y_lo": 0.4, "y_hi": 0.6}}
                for k, v in enumerate(scores)]
    plain = rows("plain", [0.40, 0.41, 0.42])                       # sd 0.01: beyond = above plain by 2*sqrt(2)*0.01
    s = ablation_table.summary(plain + rows("crop", [0.43, 0.44, 0.45]), ["x", "y"], ["plain"])
    assert ablation_table.ahead_of_plain(s, ["x", "y"]) == ("Ahead of plain beyond the noise: crop on x (+0.030, "
                                                           "3 seeds).")
    s = ablation_table.summary(plain + rows("crop", [0.42, 0.43, 0.44]) + rows("cutout", [0.2]), ["x", "y"])
    assert ablation_table.ahead_of_plain(s, ["x", "y"]) == "Ahead of plain beyond the noise: no variant, on any set."
    assert ablation_table.ahead_of_plain(ablation_table.summary(plain[:1], ["x"]), ["x"]) == ""   # noise unknown
