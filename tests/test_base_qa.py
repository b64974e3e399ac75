"""The base-qa build with a tiny stand-in: trains through train_fold, resumes after an interruption, is cached; the
article shape gives every SQuAD question its whole article at the paragraph build's window count, and leaks nothing."""
import json

import numpy as np
import pandas as pd
import pytest

from research.experiments import ablate_long as L
from research.experiments import base_qa, evalsets, grid_flags
from src.common.paths import CACHE_DIR
from src.data.synthetic import make_synthetic_qa
from src.train import explog
from src.train.backbones import get_backbone, resolve_model_path

needs_data = pytest.mark.skipif(not (evalsets.DATA_DIR / "squad" / "dev-v1.1.json").exists(),
                                reason="needs ../shared/data")


class Interrupt(Exception):
    pass


def interrupt_after_first_save():
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            raise Interrupt(f"stopped at step {state.global_step}")
    return Stop()


def test_build_resumes_caches_and_logs_one_row(tiny_dirs, tmp_path, experiment_log, capsys):
    trains = {"en_a": make_synthetic_qa(40, seed=0), "en_b": make_synthetic_qa(24, seed=3)}
    evals = {"set_x": make_synthetic_qa(8, seed=1).assign(eval_set="set_x"),
             "set_y": make_synthetic_qa(6, seed=2).assign(eval_set="set_y")}
    cfg = base_qa.BaseQAConfig(model_dir=str(tiny_dirs["tiny-bert"]), backbone="tiny-bert", max_windows=48,
                               max_length=128, doc_stride=48, batch_size=8, learning_rate=1e-3, save_steps=2)
    out = tmp_path / "base-qa"
    with pytest.raises(Interrupt, match="step 2"):
        base_qa.build(cfg, out, trains, evals, callbacks=[interrupt_after_first_save()])
    assert (out / "checkpoints" / "checkpoint-2").is_dir() and not (out / base_qa.RESULT).exists()
    assert explog.read_log(experiment_log) == []                     # an unfinished run logs nothing
    capsys.readouterr()
    res = base_qa.build(cfg, out, trains, evals)
    assert "resuming from checkpoint-2" in capsys.readouterr().out
    assert res["data"]["train_windows"] == 48 and res["data"]["eval"] == {"set_x": 8, "set_y": 6}
    table = base_qa.score_table(res["metrics"], ["set_x", "set_y"])
    assert list(table["set"]) == ["set_x", "set_y"] and (table["lo"] <= table["jaccard"]).all()
    assert (table["jaccard"] <= table["hi"]).all() and {"em", "f1"} <= set(table)
    assert not (out / "checkpoints").exists() and (out / "model" / "config.json").exists()
    rows = explog.read_log(experiment_log)
    assert [r["kind"] for r in rows] == ["base-qa"] and rows[0]["data"]["train"] == {"en_a": 40, "en_b": 24}
    assert json.loads((out / "metrics.json").read_text())["metrics"]["n_train_windows"] == 48
    # cached: the same config is found without training; another config rebuilds
    assert base_qa.build(cfg, out, trains, evals)["metrics"] == res["metrics"]
    assert "found in" in capsys.readouterr().out and len(explog.read_log(experiment_log)) == 1


def test_registry_finds_the_base_in_the_cache_dir(tmp_path, monkeypatch):
    import dataclasses

    from src.train import backbones
    b = get_backbone("e5-small-qa")
    assert b.local_dir == str(base_qa.BASE_DIR / "model") and b.max_length == 256
    built = tmp_path / "base-qa" / "model"
    monkeypatch.setitem(backbones.REGISTRY, "e5-small-qa", dataclasses.replace(b, local_dir=str(built)))
    with pytest.raises(FileNotFoundError, match="e5-small-qa"):
        resolve_model_path("e5-small-qa", tmp_path / "models")
    built.mkdir(parents=True)
    (built / "config.json").write_text("{}")
    assert resolve_model_path("e5-small-qa", tmp_path / "models") == str(built)


def test_the_default_base_keeps_the_hash_the_committed_grid_ran_on():
    # every logged ablation row names its base by this hash: a new BaseQAConfig field must not change it
    assert explog.config_hash(base_qa.BaseQAConfig().to_dict()) == "8aacb1a3f9"
    other = base_qa.BaseQAConfig(group_by_length=True, max_windows=0)
    assert other.to_dict()["group_by_length"] is True
    # the grouped base (the long grid's) too; squad_shape appears only when set, and then names another base
    assert explog.config_hash(other.to_dict()) == "83bf65ea87" and "squad_shape" not in other.to_dict()
    article = base_qa.BaseQAConfig(group_by_length=True, max_windows=0, squad_shape="article")
    assert article.to_dict() == dict(other.to_dict(), squad_shape="article")
    assert base_qa.base_dir(article) != base_qa.base_dir(other)
    assert base_qa.base_dir(base_qa.BaseQAConfig()) == base_qa.BASE_DIR
    assert base_qa.base_dir(other).name == f"base-qa-{explog.config_hash(other.to_dict())}"


def test_max_windows_zero_keeps_every_window(tiny_dirs):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"])
    frames = {"a": make_synthetic_qa(30, seed=0), "b": make_synthetic_qa(20, seed=1)}
    cfg = dict(max_length=128, doc_stride=48)
    every = base_qa.train_windows(frames, tok, base_qa.BaseQAConfig(max_windows=0, **cfg))
    assert len(base_qa.train_windows(frames, tok, base_qa.BaseQAConfig(max_windows=10, **cfg))) == 10
    assert len(every) >= 50


# ---------------------------------------------------------------- squad_shape="article"
def squad_like(n: int = 24, per_article: int = 4) -> pd.DataFrame:
    """`n` synthetic questions, each beside its own paragraph, `per_article` paragraphs to a title."""
    df = make_synthetic_qa(n, seed=1, people=3, languages=("hindi",))
    return df.assign(id=[f"sq{i}" for i in range(n)], title=[f"art{i // per_article}" for i in range(n)])


def test_the_article_shape_gives_every_squad_question_its_whole_article():
    squad, tydi = squad_like(), make_synthetic_qa(6, seed=2).assign(title="t")
    frames = {"tydi_en": tydi, base_qa.SQUAD: squad}
    assert base_qa.shaped(frames, "paragraph") is frames
    out = base_qa.shaped(frames, "article")
    assert out["tydi_en"] is tydi                                   # TyDi-en stays paragraphs
    art = out[base_qa.SQUAD]
    assert art["id"].tolist() == squad["id"].tolist() and (art["paragraph"] == squad["context"]).all()
    for title, group in squad.groupby("title"):
        whole = "\n".join(group["context"])                        # every paragraph of the title, in file order
        assert set(art.loc[art["title"] == title, "context"]) == {whole}
    for a, p in zip(art.itertuples(), squad.itertuples(), strict=True):
        moved = a.context.index(p.context) + p.answer_start      # the answer at its paragraph's place
        assert a.answer_start == moved and a.context[moved:moved + len(p.answer_text)] == p.answer_text
        if p.title == "art1" and p.context != squad.loc[squad["title"] == "art1", "context"].iloc[0]:
            assert moved > p.answer_start                         # a later paragraph's answer moved right


def test_keep_windows_keeps_every_answer_window_when_they_fit_else_one_a_question():
    rng = np.random.default_rng(0)
    ids = np.array(["a"] * 5 + ["b"] * 5 + ["c"] * 5)
    has = np.zeros(15, dtype=bool)
    has[[1, 2, 7, 12, 13]] = True                                    # a: 2 answer windows, b: 1, c: 2
    keep = base_qa.keep_windows(has, ids, 8, rng)
    assert keep.sum() == 8 and keep[has].all()                       # all 5 + 3 of the 10 without
    keep = base_qa.keep_windows(has, ids, 4, np.random.default_rng(0))
    assert keep.sum() == 4 and (keep & has).sum() == 3               # one answer window a question + 1 without
    assert sorted(set(ids[keep & has])) == ["a", "b", "c"]
    assert (keep == base_qa.keep_windows(has, ids, 4, np.random.default_rng(0))).all()   # seeded
    assert base_qa.keep_windows(has, ids, 100, rng).all()            # a budget over the windows keeps them all
    with pytest.raises(ValueError, match="3 questions have an answer window, more than the budget of 2"):
        base_qa.keep_windows(has, ids, 2, rng)


@pytest.mark.parametrize("length, stride, all_answers", [(64, 32, True), (96, 32, False)])
def test_article_windows_reach_the_paragraph_count_and_keep_every_question(tiny_dirs, length, stride, all_answers):
    # tiny-bert on these articles: at 64/32 the answer windows fit in the paragraph count (all kept), at 96/32 they
    # do not (one a question), as on SQuAD with e5-small at 256/96 (13,316 answer windows, 9,928 as paragraphs)
    from transformers import AutoTokenizer

    from src.train.fold import features_dataset
    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"])
    squad, tydi = squad_like(), make_synthetic_qa(6, seed=2)
    cfg = base_qa.BaseQAConfig(max_windows=0, max_length=length, doc_stride=stride, squad_shape="article")
    paragraphs = features_dataset(squad, tok, length, stride)
    every = features_dataset(evalsets.whole_articles(squad), tok, length, stride)
    assert (sum(every["has_answer"]) <= len(paragraphs)) == all_answers
    ds = base_qa.article_windows(squad, tok, cfg)
    assert len(ds) == len(paragraphs) < len(every)
    answered = [i for i, h in zip(ds["example_id"], ds["has_answer"], strict=True) if h]
    assert set(answered) == set(squad["id"])                         # every question keeps its answer
    assert len(answered) == (sum(every["has_answer"]) if all_answers else len(squad))
    assert ds["input_ids"] == base_qa.article_windows(squad, tok, cfg)["input_ids"]   # seeded
    # in the whole build: TyDi's windows as before, the SQuAD part at the paragraph count
    both = base_qa.train_windows({"tydi_en": tydi, base_qa.SQUAD: squad}, tok, cfg)
    assert len(both) == len(features_dataset(tydi, tok, length, stride)) + len(paragraphs)
    with pytest.raises(ValueError, match="reshapes the 'squad_dev' source"):
        base_qa.train_windows({"tydi_en": tydi}, tok, cfg)


@needs_data
def test_article_windows_on_a_real_squad_article_with_e5_small():
    from transformers import AutoTokenizer

    from src.train.fold import features_dataset
    path = CACHE_DIR / "e5-small"
    if not (path / "tokenizer.json").exists():
        pytest.skip(f"e5-small's tokenizer is not built in {path} (`make e5-small`)")
    tok = AutoTokenizer.from_pretrained(path)
    squad = evalsets.train_sources()[base_qa.SQUAD]
    shortest = squad.drop_duplicates("context").groupby("title")["context"].apply(lambda c: c.str.len().sum()).idxmin()
    one = squad[squad["title"] == shortest].reset_index(drop=True)
    cfg = base_qa.BaseQAConfig(max_windows=0, squad_shape="article")
    ds = base_qa.article_windows(one, tok, cfg)
    assert len(ds) == len(features_dataset(one, tok, cfg.max_length, cfg.doc_stride))
    answered = {i for i, h in zip(ds["example_id"], ds["has_answer"], strict=True) if h}
    assert answered == set(one["id"]) and not all(ds["has_answer"])   # every question answered, and negatives


@needs_data
def test_the_article_shaped_training_frames_leak_nothing_and_a_planted_paragraph_is_refused(monkeypatch):
    trains = base_qa.training_frames("article")
    assert set(trains) == {"tydi_en", base_qa.SQUAD} and len(trains[base_qa.SQUAD]) == 8123
    held = set(evalsets.held_out_titles())
    assert not held & set(base_qa.shaped(trains, "article")[base_qa.SQUAD]["title"])
    # a held-out paragraph put into a training article is found inside the joined article
    paragraph = evalsets.eval_sets()["xquad_in_ta"]["context"].iloc[0]
    sources = evalsets.train_sources()
    squad = sources[base_qa.SQUAD]
    planted = squad.iloc[:1].assign(id="planted", context=paragraph, answer_text=paragraph[:5], answer_start=0)
    monkeypatch.setattr(evalsets, "train_sources", lambda d=None: dict(sources, squad_dev=pd.concat([squad, planted])))
    with pytest.raises(ValueError, match="squad_dev holds 1 context"):
        base_qa.training_frames("article")


def test_a_bad_squad_shape_is_a_clear_error_and_article_reaches_the_base_through_every_door(monkeypatch):
    with pytest.raises(ValueError, match=r"squad_shape must be one of \('paragraph', 'article'\), got 'page'"):
        base_qa.BaseQAConfig(squad_shape="page")
    with pytest.raises(SystemExit, match="--base: .*squad_shape must be one of"):
        grid_flags.parse_base_overrides(["squad_shape=page"])
    with pytest.raises(ValueError, match="squad_shape must be one of"):
        base_qa.shaped({}, "pages")
    with pytest.raises(SystemExit):
        base_qa.main(["--squad-shape", "page"])
    over = grid_flags.parse_base_overrides(["group_by_length=true", "max_windows=0", "squad_shape=article"])
    assert over == {"group_by_length": True, "max_windows": 0, "squad_shape": "article"}
    # the long grid on that base: its own run ids, the base's config in the row
    monkeypatch.setattr(L, "BASE", dict(L.BASE, **over))
    config = L.run_config("plain", 0)
    assert config["base_config"]["squad_shape"] == "article" and L.run_id_of(config) != "article-plain-s0-1ca080"
    seen = []
    monkeypatch.setattr(base_qa, "build", lambda cfg, out: seen.append(cfg) or {"data": {"eval": {}}, "metrics": {},
                                                                                "model_dir": "m"})
    base_qa.main(["--group-by-length", "--max-windows", "0", "--squad-shape", "article"])
    assert seen == [base_qa.BaseQAConfig(**over)]
