"""The winner-recipe grid: its runs and ids, his recipe's passes at the stand-in's scale, and its table printed from
a log without training."""
import json

import pandas as pd
import pytest

from research.experiments import ablate, evalsets
from research.experiments import ablate_long as L
from research.experiments import ablate_winner as W
from src.data.synthetic import make_synthetic_qa
from src.train import explog
from src.train.windows import build_dataset
from tests.test_ablate_long import articles, fake_row

DATA = evalsets.DATA_DIR
needs_data = pytest.mark.skipif(not (DATA / "xquad" / "xquad.hi.json").exists(), reason="needs ../shared/data")


def tiny_pools() -> dict[str, pd.DataFrame]:
    pools = {"hindi": articles(24, 1, "hindi", "hi"), "tamil": articles(16, 2, "tamil", "ta"),
             "squad_articles": articles(12, 4, "hindi", "sq", per_article=6)}
    for k, name in enumerate(W.TYDI):
        pools[name] = make_synthetic_qa(8, seed=10 + k).assign(id=[f"{name}{i}" for i in range(8)])
    return pools


def test_every_run_is_defined_with_its_own_id():
    ids = {v: W.run_id_of(W.run_config(v, 0)) for v in W.VARIANTS}
    assert len(set(ids.values())) == len(ids) and all(i.startswith(f"winner-{v}-s0-") for v, i in ids.items())
    assert ids == {v: W.run_id_of(W.run_config(v, 0)) for v in W.VARIANTS}               # stable
    assert W.run_id_of(W.run_config("winner", 1)) != ids["winner"]
    others = {g.run_id_of(g.run_config(v, s)) for g in (ablate, L) for v in g.VARIANTS for s in (0, 1, 2)}
    assert not set(ids.values()) & others
    for v in W.VARIANTS:
        config = W.run_config(v, 0)
        json.dumps(config)                                          # the log row holds it
        assert config["grid"] == "winner" and config["eval"] == list(W.EVAL_SETS)
        assert config["start"] == ("raw e5-small" if v == "winner-raw" else "base")
        assert config["base_config"] == L.BASE
    assert W.SEEDS == {"plain": (0, 1, 2), "winner": (0, 1, 2)}
    # TyDi bn/te dev train here: their paragraph sets are not scored (they would leak)
    assert not {"tydi_te", "tydi_bn"} & set(W.EVAL_SETS) and W.TABLE_SETS == ("xquad_hi", "xquad_in_ta")
    row = {"run_id": ids["winner"], "kind": W.KIND, "variant": "winner", "seed": 0}
    assert ablate.of_current_config(row, W) and not ablate.of_current_config(row, L)
    assert ablate.grid_of("winner") is W
    with pytest.raises(ValueError, match="unknown variant"):
        W.variant_recipe("mixup")


def test_winner_is_his_68_type_recipe_and_each_row_changes_one_thing():
    r = W.variant_recipe("winner")
    assert r.sequential and [s.name for s in r.stages] == ["pass1", "pass2", "tail"]
    keep = [{s.name: s.negative_keep for s in st.sources} for st in r.stages]
    assert keep == [{"squad_articles": 0.1, "tydi_en_dev": 0.1, "tydi_bn_dev": 0.1, "tydi_te_dev": 0.1,
                     "hindi": 0.1, "tamil": 0.1},
                    {"tydi_en_dev": 0.1, "tydi_bn_dev": 0.1, "tydi_te_dev": 0.1, "hindi": 0.2, "tamil": 0.2},
                    {"hindi": None, "tamil": None}]                 # the tail: every window
    assert r.augment.negative_fraction == 1.0 and not r.augment.random_crop and r.augment.token_cutout == 0
    assert {(st.max_length, st.doc_stride) for st in r.stages} == {(W.LENGTH, W.STRIDE)}
    assert W.variant_recipe("winner-raw").stages == r.stages
    assert [s.name for s in W.variant_recipe("winner-no-tail").stages] == ["pass1", "pass2"]
    assert all(s.negative_keep is None for st in W.variant_recipe("winner-no-negsamp").stages for s in st.sources)
    thin = W.variant_recipe("winner-thin-tail")
    assert thin.stages[:2] == r.stages[:2] and {s.negative_keep for s in thin.stages[2].sources} == {0.3}
    his119 = W.variant_recipe("winner-119")
    assert [(st.max_length, st.doc_stride) for st in his119.stages] == [(256, 96), (384, 144), (384, 144)]
    assert his119.augment.token_cutout == 0.1 and {s.negative_keep for s in his119.stages[2].sources} == {0.3}
    plain, eqc = W.variant_recipe("plain"), W.variant_recipe("plain-eqc")
    assert plain.to_dict() == L.variant_recipe("plain").to_dict()   # the whole-article grid's plain
    assert [(s.name, s.repeats) for s in eqc.stages[0].sources] == [(s.name, 2) for s in plain.stages[0].sources]


def test_his_recipe_on_tiny_pools_reads_the_target_three_times_the_tail_whole(tokenizer, monkeypatch):
    monkeypatch.setattr(W, "LENGTH", 64)
    monkeypatch.setattr(W, "STRIDE", 32)
    pools = tiny_pools()
    r = W.variant_recipe("winner")
    ds = build_dataset(r, ablate.frames_for(r, pools), tokenizer, seed=0).to_pandas()
    plain = W.his_recipe("all", keep={p: dict.fromkeys(k, None) for p, k in W.KEEP.items()})
    full = build_dataset(plain, ablate.frames_for(plain, pools), tokenizer, seed=0).to_pandas()
    target = ds["source"].isin(W.TARGET)
    for k in (0, 1, 2):                                              # every answer window in every pass
        got = ds[(ds["stage"] == k) & target]
        assert got["has_answer"].sum() == full[(full["stage"] == k) & full["source"].isin(W.TARGET)]["has_answer"].sum()
    tail, all_tail = ds[ds["stage"] == 2], full[full["stage"] == 2]
    assert len(tail) == len(all_tail) and (~tail["has_answer"]).sum() > 20   # the tail keeps every negative
    kept = [(~ds[(ds["stage"] == k) & target]["has_answer"]).sum() for k in (0, 1)]
    assert kept[0] < kept[1] < (~tail["has_answer"]).sum()           # 0.1, then 0.2, then all
    assert ablate.questions_fed(r, ablate.frames_for(r, pools))["hindi"] == 24


def test_report_prints_the_table_and_the_closing_sentence_from_a_log_without_training(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    assert W.__name__ in ablate.report(log, None, None, grid=W)        # nothing logged: says so, trains nothing
    for seed, score in ((0, 0.30), (1, 0.32), (2, 0.31)):       # plain's runs are the whole-article grid's
        explog.append_run(log, fake_row("plain", seed, score, windows=2962, grid=L))
    explog.append_run(log, fake_row("negsamp30", 0, 0.9, grid=L))        # the whole-article grid's: not here
    for seed, score in ((0, 0.45), (1, 0.46), (2, 0.44)):
        explog.append_run(log, fake_row("winner", seed, score, windows=6069, grid=W))
    explog.append_run(log, fake_row("winner-no-tail", 0, 0.31, windows=3221, grid=W))
    ablate.main(["report", "--shape", "winner", "--log", str(log), "--table", str(tmp_path / "t.md")])
    text = (tmp_path / "t.md").read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    assert text.startswith(W.CAPTION)
    header = next(line for line in text.splitlines() if line.startswith("| variant"))
    assert header == ("| variant | seeds | xquad_hi (paragraph) | xquad_in_ta (paragraph) | xquad_hi (article) | "
                      "xquad_in_ta (article) | train windows | train time (min) |")
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    assert rows["plain"].startswith("| plain | 3 |") and rows["plain"].endswith("| 2962 | 10.0 |")
    assert rows["winner"].startswith("| winner | 3 |") and rows["winner"].endswith("| 6069 | 10.0 |")
    assert "- winner (3 seeds): beyond the noise on xquad_hi_article +0.140" in text
    assert "- winner-no-tail (1 seed): within the noise everywhere" in text
    assert "**Ahead of plain beyond the noise: winner on xquad_hi_article (+0.140, 3 seeds)" in text


def test_window_counts_come_from_tokenizing_only(tokenizer, monkeypatch, tmp_path):
    monkeypatch.setattr(W, "LENGTH", 64)
    monkeypatch.setattr(W, "STRIDE", 32)
    monkeypatch.setattr(W, "load_data", lambda d: (tiny_pools(), {}))
    monkeypatch.setattr("src.train.stand_ins.ensure_e5_small", lambda: tokenizer.name_or_path)
    monkeypatch.setattr(W.ablate, "fine_tune", lambda *a, **k: pytest.fail("counting must not train"))
    counts = W.window_counts(tmp_path, variants=["plain", "winner", "winner-no-tail"]).set_index("variant")
    assert counts.loc["winner", "windows"] > counts.loc["winner-no-tail", "windows"]
    assert counts.loc["winner", "per stage"].startswith("pass1 ") and "tail" in counts.loc["winner", "per stage"]


@needs_data
def test_the_pools_hold_no_evaluated_question():
    pools, evals = W.load_data(DATA)
    assert set(evals) == set(W.EVAL_SETS) and L.leaks(pools, evals) == []
    squad = pools["squad_articles"]
    held = set(evalsets.held_out_titles(DATA))
    assert squad["title"].nunique() == 36 and not set(squad["title"]) & held
    assert (squad.groupby("title")["context"].nunique() == 1).all()          # each question beside its article
    assert {len(pools[n]) for n in ("tydi_bn_dev", "tydi_te_dev")} == {113, 669}


def test_plain_is_the_whole_article_grids_plain_runs_not_trained_again(tmp_path, monkeypatch):
    """plain trains exactly as the whole-article grid's plain: its logged runs (kind ablate-article) are this
    grid's plain, and run_grid trains no plain of its own; a missing seed runs as that grid's run."""
    log = tmp_path / "log.jsonl"
    for seed, score in ((0, 0.30), (1, 0.32)):
        explog.append_run(log, fake_row("plain", seed, score, grid=L))
    rows = ablate.ablation_rows(log, W)
    assert [(r["variant"], r["seed"], r["kind"]) for r in rows] == [("plain", 0, L.KIND), ("plain", 1, L.KIND)]
    ran = []
    monkeypatch.setattr(L, "execute", lambda config, *a, **k: ran.append(("long", config["variant"],
                                                                            config["seed"])) or fake_row(
        config["variant"], config["seed"], 0.31, grid=L))
    monkeypatch.setattr(W, "execute", lambda *a, **k: pytest.fail("plain must run as the long grid's run"))
    monkeypatch.setattr(ablate, "this_machine_kind", lambda: ablate.machine_kind({"machine": None}))
    ablate.run_grid(["plain"], log, tmp_path, tmp_path, grid=W, any_machine=True)
    assert ran == [("long", "plain", 2)]
    assert {r["seed"] for r in ablate.ablation_rows(log, W)} == {0, 1, 2}
    assert "| plain | 3 |" in ablate.report(log, None, None, grid=W)
