"""The whole-article ablation grid: its training data, run ids, equal-compute sizing, report and one tiny real run."""
import json
import shlex
import shutil
import subprocess

import pandas as pd
import pytest

from research.experiments import ablate, evalsets
from research.experiments import ablate_long as L
from research.experiments import equal_compute as E
from src.common.paths import REPO_ROOT
from src.data.synthetic import make_synthetic_qa
from src.train import explog
from src.train.recipe import Recipe
from src.train.windows import build_dataset

DATA = evalsets.DATA_DIR
needs_data = pytest.mark.skipif(not (DATA / "xquad" / "xquad.hi.json").exists(), reason="needs ../shared/data")


def articles(n: int, seed: int, language: str, prefix: str, per_article: int = 4) -> pd.DataFrame:
    """`n` synthetic questions, `per_article` to an article, each beside its whole article."""
    df = make_synthetic_qa(n, seed=seed, people=3, languages=(language,))
    df = df.assign(id=[f"{prefix}{i}" for i in range(n)], title=[f"{prefix}-a{i // per_article}" for i in range(n)])
    return evalsets.whole_articles(df)


def tiny_pools() -> dict[str, pd.DataFrame]:
    return {"tydi_en_dev": make_synthetic_qa(8, seed=3).assign(id=[f"en{i}" for i in range(8)]),
            "hindi": articles(24, 1, "hindi", "hi"), "tamil": articles(16, 2, "tamil", "ta")}


@pytest.fixture
def small(monkeypatch):
    """A small grid: few questions, short windows (so a synthetic article has several)."""
    monkeypatch.setattr(L, "SIZES", dict(hindi=8, tamil=6, tydi_en_dev=4))
    monkeypatch.setattr(L, "LENGTH", 64)
    monkeypatch.setattr(L, "STRIDE", 32)


def test_run_ids_are_stable_and_distinct_from_the_paragraph_grids():
    ids = {v: L.run_id_of(L.run_config(v, 0)) for v in L.VARIANTS}
    # a logged run is found again only while its id stays: a change here orphans every logged whole-article run
    assert ids["plain"] == "article-plain-s0-1ca080"
    assert ids == {v: L.run_id_of(L.run_config(v, 0)) for v in L.VARIANTS}
    assert len(set(ids.values())) == len(ids) and all(i.startswith(f"article-{v}-s0-") for v, i in ids.items())
    paragraph = {ablate.run_id_of(ablate.run_config(v, s)) for v in ablate.VARIANTS for s in (0, 1, 2)}
    assert not set(ids.values()) & paragraph
    assert L.run_id_of(L.run_config("plain", 1)) != ids["plain"]
    json.dumps(L.run_config("hardneg", 0))                          # the log row can hold it
    # a row of one grid is never a current run of the other
    row = {"run_id": ids["plain"], "kind": L.KIND, "variant": "plain", "seed": 0}
    assert ablate.of_current_config(row, L) and not ablate.of_current_config(row)


def test_a_size_flag_gives_new_run_ids(monkeypatch):
    default = L.run_id_of(L.run_config("plain", 0))
    monkeypatch.setattr(L, "SIZES", dict(L.SIZES, hindi=300))
    assert L.run_id_of(L.run_config("plain", 0)) != default
    assert L.run_config("plain", 0)["recipe"]["stages"][0]["sources"][1]["limit"] == 300


def test_variants_keep_the_paragraph_grids_definitions():
    plain, recipe = L.variant_recipe("plain"), L.variant_recipe("recipe")
    assert not plain.sequential and len(plain.stages) == 1
    assert [s.name for s in plain.stages[0].sources] == ["tydi_en_dev", "hindi", "tamil"]
    assert recipe.sequential and [s.name for s in recipe.stages] == ["external", "target"]
    assert [(s.name, s.articles) for s in recipe.stages[0].sources] == [
        ("tydi_en_dev", "all"), ("hindi", "train"), ("tamil", "train")]
    assert [(s.name, s.articles) for s in recipe.stages[1].sources] == [("hindi", "test"), ("tamil", "test")]
    base = recipe.augment.__dict__
    for v in ("crop", "resize", "cutout", "soft", "negsamp50", "negsamp30", "negsamp10"):
        diff = {k for k, val in L.variant_recipe(v).augment.__dict__.items() if base[k] != val}
        assert len(diff) == 1, (v, diff)
    assert [L.variant_recipe(v).augment.negative_fraction for v in ("negsamp50", "negsamp30", "negsamp10")] == [
        0.5, 0.3, 0.1]
    for v in ("all", "all-but-soft", "crop", "resize", "cutout", "soft"):   # the paragraph grid's switches
        assert L.variant_recipe(v).augment == ablate.variant_recipe(v).augment, v
    for v in ("negsamp30-eqc", "hardneg"):     # negsamp30's data feeding, plus what the config block says
        assert L.variant_recipe(v).augment == L.variant_recipe("negsamp30").augment
    eqc, hard = L.run_config("negsamp30-eqc", 0), L.run_config("hardneg", 0)
    assert eqc["equal_compute"]["windows_of"] == "plain" and "hard_negatives" not in eqc
    assert hard["hard_negatives"]["base"] == hard["base"] and "equal_compute" not in hard
    assert hard["hard_negatives"]["cache"].startswith("hardneg/base-")
    assert L.run_config("plain", 0)["base_config"] == L.BASE
    with pytest.raises(ValueError, match="unknown variant"):
        L.variant_recipe("mixup")


def test_recipe_feeds_the_same_questions_as_plain_split_by_article():
    pools = tiny_pools()
    plain, recipe = L.variant_recipe("plain"), L.variant_recipe("recipe")
    pf, rf = ablate.frames_for(plain, pools), ablate.frames_for(recipe, pools)
    assert ablate.questions_fed(plain, pf) == ablate.questions_fed(recipe, rf) == {
        "hindi": 24, "tamil": 16, "tydi_en_dev": 8}                  # pools smaller than SIZES: all of them
    for name in ("hindi", "tamil"):
        halves = [rf[s.data_key()] for st in recipe.stages for s in st.sources if s.name == name]
        assert len(halves) == 2 and not set(halves[0]["title"]) & set(halves[1]["title"])
        assert sorted(pd.concat(halves)["id"]) == sorted(pools[name]["id"])


@needs_data
def test_training_frames_hold_whole_articles_and_no_held_out_article():
    pools, evals = L.load_data(DATA)
    held = set(evalsets.held_out_titles(DATA))
    assert set(evals) == set(L.EVAL_SETS)
    assert (len(pools["hindi"]), len(pools["tamil"])) == (925, 658)
    for name in ("hindi", "tamil"):
        df = pools[name]
        assert not set(df["title"]) & held
        assert (df.groupby("title")["context"].nunique() == 1).all()         # one context an article: the article
        assert all(p in c and len(c) > len(p) for p, c in zip(df["paragraph"], df["context"], strict=True))
        assert df["id"].is_unique
    assert not set(pools["tydi_en_dev"]["title"]) & held
    used = ablate.frames_for(L.variant_recipe("plain"), pools)
    assert sorted(len(f) for f in used.values()) == [100, 130, 200]
    assert L.leaks(pools, evals) == []
    # a held-out question planted in a pool is caught, by title and by its text
    planted = evals["xquad_hi_article"].iloc[:1].assign(source_id=lambda d: d["id"], id="deadbeef1")
    problems = L.leaks(dict(pools, hindi=pd.concat([pools["hindi"], planted])), evals)
    assert any("share 1 title" in p for p in problems) and any("share 1 id" in p for p in problems)


def test_equal_compute_size_is_the_smallest_that_reaches_plains_windows(small, tiny_dirs):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"])
    pools, grid = tiny_pools(), (L.LENGTH, L.STRIDE)
    counts = E.question_windows(list(pools.values()), tok, grid)
    assert counts["windows"].groupby(lambda i: i[:2]).mean()["hi"] > 2       # whole articles: several windows
    plain = L.variant_recipe("plain")
    frames = ablate.frames_for(plain, pools)
    target = E.recipe_windows(plain, frames, counts, grid)
    assert target == len(build_dataset(plain, frames, tok))                   # counted as the builder feeds them
    eqc = L.variant_recipe("negsamp30-eqc")
    assert E.recipe_windows(eqc, ablate.frames_for(eqc, pools), counts, grid) < target   # sampling alone costs less
    sizes, windows = E.equal_compute_sizes(eqc, target, pools, counts, L.GROWN, grid)
    assert windows >= target and sizes["hindi"] > 8 and sizes["tamil"] == round(sizes["hindi"] * 6 / 8)
    assert sizes["tydi_en_dev"] == 4
    smaller = E.with_sizes(eqc, dict(sizes, hindi=sizes["hindi"] - 1, tamil=round((sizes["hindi"] - 1) * 6 / 8)))
    assert E.recipe_windows(smaller, ablate.frames_for(smaller, pools), counts, grid) < target   # the smallest such
    grown = E.with_sizes(eqc, sizes)
    assert len(build_dataset(grown, ablate.frames_for(grown, pools), tok)) == windows
    with pytest.raises(ValueError, match="without random crop or resizing"):
        E.recipe_windows(L.variant_recipe("crop"), frames, counts, grid)
    # what a run does with it: the configured recipe grown, and the counts the row logs
    config = L.run_config("negsamp30-eqc", 0)
    run_recipe, info = L.equal_compute_recipe(config, Recipe.from_dict(config["recipe"]), pools, tok)
    assert info == {"windows_of": "plain", "target_windows": target, "windows": windows, "sizes": sizes}
    assert E.recipe_sizes(run_recipe) == sizes and run_recipe.augment == eqc.augment


def test_hard_negatives_are_weighted_by_the_bases_zero_shot_scores_cached_once(small, tiny_dirs, tmp_path,
                                                                               monkeypatch):
    from transformers import AutoTokenizer

    from src.train.augment import hard_negative_weights
    monkeypatch.setattr(ablate, "TRAIN", dict(ablate.TRAIN, bf16=False, max_length=64, doc_stride=32))
    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"])
    pools, config = tiny_pools(), L.run_config("hardneg", 0)
    recipe = L.variant_recipe("hardneg")
    frames = ablate.frames_for(recipe, pools)
    scores, info = L.base_scores(config, frames, tiny_dirs["tiny-bert"], tok, tmp_path)
    cache = tmp_path / "hardneg" / f"base-{config['base']}.csv"
    n = sum(len(f) for f in frames.values())
    assert info["file"] == str(cache) and info["questions"] == info["scored_now"] == len(scores) == n == 18
    assert scores["jaccard"].between(0, 1).all() and cache.exists()
    again, info2 = L.base_scores(config, frames, tiny_dirs["tiny-bert"], tok, tmp_path)    # read back, not rescored
    assert info2["scored_now"] == 0 and again.set_index("id")["jaccard"].round(6).to_dict() == scores.set_index(
        "id")["jaccard"].round(6).to_dict()
    bigger = E.with_sizes(recipe, dict(L.SIZES, hindi=10))
    _, info3 = L.base_scores(config, ablate.frames_for(bigger, pools), tiny_dirs["tiny-bert"], tok, tmp_path)
    assert info3["scored_now"] == 2 and info3["questions"] == 20                    # only the new questions
    hard = hard_negative_weights(again)
    assert all(abs(hard[i] - (1.05 - j)) < 1e-9 for i, j in zip(again["id"], again["jaccard"], strict=True))
    # the weights choose which negatives are kept, not how many
    assert len(build_dataset(recipe, frames, tok, hard=hard)) == len(build_dataset(recipe, frames, tok))


def fake_row(variant, seed, score, windows=100, grid=L):
    config = grid.run_config(variant, seed)
    metrics = {}
    for k, n in enumerate(grid.EVAL_SETS):
        metrics.update({n: score / (k + 1), f"{n}_lo": score / (k + 1) - 0.05, f"{n}_hi": score / (k + 1) + 0.05})
    return {"run_id": grid.run_id_of(config), "kind": grid.KIND, "variant": variant, "seed": seed,
            "metrics": metrics, "train_seconds": 600.0, "n_train_windows": windows, "config": config}


def test_report_prints_both_shapes_from_a_fake_log_and_says_when_nothing_is_logged(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    text = ablate.report(log, tmp_path / "t.md", None, grid=L)
    assert text.startswith("nothing logged yet") and not (tmp_path / "t.md").exists()
    ablate.main(["report", "--shape", "article", "--log", str(log)])            # a fresh clone: no crash, exit 0
    assert "nothing logged yet" in capsys.readouterr().out
    for seed, score in ((0, 0.3), (1, 0.4), (2, 0.5)):
        explog.append_run(log, fake_row("plain", seed, score, windows=2980))
    explog.append_run(log, fake_row("negsamp30", 0, 0.4, windows=1330))
    explog.append_run(log, fake_row("negsamp30-eqc", 0, 0.9, windows=2985))
    explog.append_run(log, fake_row("plain", 0, 0.2, grid=ablate))             # the paragraph grid's: not here
    ablate.main(["report", "--shape", "article", "--log", str(log), "--table", str(tmp_path / "t.md")])
    text = (tmp_path / "t.md").read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    assert text.startswith(L.CAPTION)
    header = next(line for line in text.splitlines() if line.startswith("| variant"))
    assert header == ("| variant | seeds | xquad_hi (paragraph) | xquad_in_ta (paragraph) | tydi_te (paragraph) | "
                      "tydi_bn (paragraph) | xquad_hi (article) | xquad_in_ta (article) | train windows | "
                      "train time (min) |")
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    # xquad_hi (paragraph) is the third logged key: score / 3
    assert rows["plain"].startswith("| plain | 3 | 0.133 ± 0.033") and rows["plain"].endswith("| 2980 | 10.0 |")
    assert rows["negsamp30"].endswith("| 1330 | 10.0 |") and rows["negsamp30-eqc"].endswith("| 2985 | 10.0 |")
    assert "- negsamp30-eqc (1 seed): beyond the noise on xquad_hi_article +0.500" in text
    assert "- negsamp30 (1 seed): within the noise everywhere" in text
    assert ablate.needs_more_seeds(ablate.ablation_rows(log, L), L) == ["negsamp30-eqc"]
    paragraph = ablate.report(log, None, None)                                  # and the other grid's report
    assert "| plain | 1 |" in paragraph and "negsamp30" not in paragraph


def test_the_grid_resumes_from_the_log_and_follows_up_seeds(tmp_path, monkeypatch):
    calls = []
    shift = {"hardneg": 0.5, "crop": 0.05}           # crop: half a plain sd above plain's mean
    monkeypatch.setattr(L, "execute", lambda config, out, data, commit=None: calls.append(config) or fake_row(
        config["variant"], config["seed"], 0.3 + 0.1 * config["seed"] + shift.get(config["variant"], 0)))
    log = tmp_path / "log.jsonl"
    explog.append_run(log, fake_row("plain", 1, 0.4))
    ablate.run_grid(["plain", "hardneg", "crop"], log, tmp_path, tmp_path, grid=L)
    assert [(c["variant"], c["seed"]) for c in calls] == [("plain", 0), ("plain", 2), ("hardneg", 0), ("crop", 0),
                                                          ("hardneg", 1), ("hardneg", 2)]
    calls.clear()
    ablate.run_grid(["plain", "hardneg", "crop"], log, tmp_path, tmp_path, grid=L)
    assert calls == []


def test_a_tiny_real_run_of_plain_logs_both_shapes(small, tiny_dirs, tmp_path, monkeypatch):
    pools = tiny_pools()
    # evaluation ids repeat across sets, as XQuAD's do: each set is scored on its own contexts
    evals = {}
    for k, n in enumerate(L.TABLE_SETS):
        para = make_synthetic_qa(4, seed=20 + k, people=3).assign(id=[f"q{i}" for i in range(4)],
                                                                  title=["t0", "t0", "t1", "t1"])
        evals[n] = para.assign(eval_set=n)
        evals[n + "_article"] = evalsets.whole_articles(para).assign(eval_set=n + "_article")
    monkeypatch.setattr(L, "load_data", lambda data_dir: (pools, {n: evals[n] for n in L.EVAL_SETS}))
    monkeypatch.setattr(L, "SIZES", dict(hindi=3, tamil=2, tydi_en_dev=2))     # a few steps: a minute at most
    monkeypatch.setattr(ablate, "base_model", lambda overrides=None: tiny_dirs["tiny-bert"])
    monkeypatch.setattr(ablate, "TRAIN", dict(ablate.TRAIN, backbone="tiny-bert", learning_rate=1e-3, bf16=False,
                                              batch_size=16, max_length=64, doc_stride=32))
    log = tmp_path / "log.jsonl"
    ablate.run_grid(["plain"], log, tmp_path / "runs", tmp_path, seeds=(0,), grid=L)
    rows = explog.read_log(log)
    assert len(rows) == 1 and rows[0]["kind"] == L.KIND and rows[0]["run_id"].startswith("article-plain-s0-")
    assert rows[0]["data"]["train"] == {"hindi": 3, "tamil": 2, "tydi_en_dev": 2}
    from transformers import AutoTokenizer
    plain = L.variant_recipe("plain")
    expected = len(build_dataset(plain, ablate.frames_for(plain, pools),
                                 AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"])))
    assert rows[0]["n_train_windows"] == rows[0]["data"]["train_windows"] == expected > 14   # several per article
    m = rows[0]["metrics"]
    for n in L.EVAL_SETS:                                           # both shapes' scores, each with its interval
        assert m[f"{n}_lo"] <= m[n] <= m[f"{n}_hi"] and 0 <= m[f"{n}_f1"] <= 1
    run = tmp_path / "runs" / rows[0]["run_id"]
    assert (run / "xquad_hi_article_logits.npz").exists() and (run / "xquad_hi_logits.npz").exists()
    assert not (run / "checkpoints").exists()
    monkeypatch.setattr(L, "execute", lambda *a, **k: pytest.fail("a logged run was re-run"))
    ablate.run_grid(["plain"], log, tmp_path / "runs", tmp_path, seeds=(0,), grid=L)
    assert "| plain | 1 |" in ablate.report(log, None, None, grid=L)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_ablate_long_runs_every_variant_of_the_grid_and_writes_its_own_table():
    done = subprocess.run(["make", "-n", "--no-print-directory", "ablate-long"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "research.experiments.ablate" in x)
    args = shlex.split(line)
    assert args[args.index("--shape") + 1] == "article" and args[-2:] == ["--table", "docs/ablation_table_long.md"]
    variants = args[args.index("--variants") + 1].split(",")
    assert variants[0] == "plain" and sorted(variants) == sorted(L.VARIANTS)


def test_the_committed_grid_is_complete_and_prints_its_table_without_training(monkeypatch, tmp_path):
    # every variant and seed the grid's rule asks for is in the committed log: no run, no machine probe, on any
    # machine; the committed table is what the log prints
    monkeypatch.setattr(L, "execute", lambda *a, **k: pytest.fail("a run is missing from the committed log"))
    monkeypatch.setattr(ablate, "this_machine_kind", lambda: pytest.fail("probed: a run is missing from the log"))
    done = [v for v in L.VARIANTS if v not in L.PENDING]
    ablate.run_grid(done, explog.REPO_LOG, tmp_path, tmp_path, grid=L)
    rows = ablate.ablation_rows(explog.REPO_LOG, L)
    assert {v: sum(r["variant"] == v for r in rows) for v in done} == {v: 3 for v in done}
    assert all(sum(r["variant"] == v for r in rows) < 3 for v in L.PENDING), "take a variant with 3 seeds off PENDING"
    assert ablate.report(explog.REPO_LOG, None, None, grid=L) == (REPO_ROOT / "docs/ablation_table_long.md").read_text()
