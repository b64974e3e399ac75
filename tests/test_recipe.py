"""A recipe is configuration; its stages are fed in order, in one run, also across processes."""
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.common.paths import REPO_ROOT as ROOT
from src.common.paths import SHARED_DIR
from src.data.synthetic import make_synthetic_qa
from src.train.recipe import Augment, Recipe, Source, Stage, load_recipe
from src.train.windows import build_dataset

WORKER = ROOT / "tests" / "recipe_order_worker.py"


def test_shipped_recipes_load_and_round_trip(tmp_path):
    kaggle = load_recipe("recipe_kaggle")
    assert [s.name for s in kaggle.stages] == ["external", "target"]
    kinds = {src.kind for src in kaggle.stages[0].sources}
    assert {"tydi", "squad", "mlqa", "xquad", "chaii"} <= kinds
    assert "nq" in {src.kind for src in kaggle.stages[1].sources}
    assert kaggle.stage_lengths() == [(256, 85), (384, 128)]
    local = load_recipe(ROOT / "configs" / "recipe_local.yaml")
    assert Recipe.from_dict(local.to_dict()) == local
    p = tmp_path / "r.json"
    p.write_text(json.dumps(local.to_dict()))
    assert load_recipe(p) == local and load_recipe(p).digest() == local.digest()
    with pytest.raises(ValueError, match="unknown recipe field"):
        Recipe.from_dict({**local.to_dict(), "shuffle": True})


def test_local_recipe_sources_exist_on_the_shared_data():
    data = SHARED_DIR / "data"
    if not data.is_dir():
        pytest.skip("shared real data not present on this machine")
    for stage in load_recipe("recipe_local").stages:
        for src in stage.sources:
            assert (data / src.path).exists(), src.path


def test_stages_are_concatenated_in_order_and_shuffled_inside(tokenizer):
    a, b = Source("a", "synthetic"), Source("b", "synthetic")
    frames = {a.data_key(): make_synthetic_qa(40, seed=1), b.data_key(): make_synthetic_qa(40, seed=2)}
    frames[b.data_key()] = frames[b.data_key()].assign(id=lambda d: "b-" + d["id"])
    off = Augment(random_crop=False, progressive=False)
    r = Recipe("t", [Stage("one", [a, b], 64, 24), Stage("two", [b], 64, 24)], off)
    ds = build_dataset(r, frames, tokenizer, seed=0).to_pandas()
    stage = ds["stage"].to_numpy()
    assert (np.diff(stage) >= 0).all() and set(stage) == {0, 1}           # no stage-2 window before a stage-1 one
    first = ds[ds["stage"] == 0]["source"].tolist()
    assert first[: len(first) // 2].count("a") not in (0, len(first) // 2)   # sources mixed, not one after the other
    assert set(ds[ds["stage"] == 1]["source"]) == {"b"}
    again = build_dataset(r, frames, tokenizer, seed=0).to_pandas()
    assert again["example_id"].tolist() == ds["example_id"].tolist()     # seeded
    other = build_dataset(r, frames, tokenizer, seed=1).to_pandas()
    assert other["example_id"].tolist() != ds["example_id"].tolist()


def run_worker(out: Path, nproc: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    if nproc == 1:
        cmd = [sys.executable, str(WORKER), str(out)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(WORKER), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_learning_rate_is_continuous_across_the_stage_boundary(tmp_path):
    run_worker(tmp_path, 1)
    batches = json.loads((tmp_path / "rank0.json").read_text())
    lr = json.loads((tmp_path / "lr.json").read_text())
    order = [o for b in batches for o in b["order"]]
    assert order == sorted(order) == list(range(len(order)))                # the sequential sampler kept the order
    boundary = next(k for k, b in enumerate(batches) if 1 in b["stage"])
    assert 2 < boundary < len(batches) - 2
    assert len({r["optimizer"] for r in lr}) == 1                           # one optimizer for both stages
    rates = np.array([r["lr"] for r in lr])
    warm = int(np.argmax(rates))
    steps = np.diff(rates[warm:])
    # linear decay: every step lowers the rate by the same amount, at the boundary too (no restart, no jump)
    assert boundary > warm and np.allclose(steps, steps[0], rtol=1e-6, atol=1e-12) and steps[0] < 0


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun gloo test runs on Linux CI")
def test_torchrun_two_ranks_see_the_recipe_order_step_by_step(tmp_path):
    run_worker(tmp_path, 2)
    order = json.loads((tmp_path / "order.json").read_text())
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    n_steps = min(len(r) for r in ranks)
    assert n_steps >= 5
    seen = []
    for step in range(n_steps):
        union = sorted(o for r in ranks for o in r[step]["order"])
        size = len(union)
        # step k trains on the next consecutive slice of the recipe, split between the ranks
        assert union == list(range(len(seen), len(seen) + size)), step
        ids = [i for r in ranks for i in r[step]["example_id"]]
        assert sorted(ids) == sorted(order["example_id"][len(seen):len(seen) + size])
        seen.extend(union)
    assert len(seen) >= len(order["example_id"]) - 8                       # all but a last partial batch pair
    stages = [order["stage"][i] for i in seen]
    assert stages == sorted(stages) and set(stages) == {0, 1}


def test_fold_dataset_never_trains_on_the_held_out_fold(tokenizer, tmp_path):
    from src.train.fold import TrainConfig
    from src.train.recipe import fold_dataset

    df = make_synthetic_qa(60, seed=5)
    chaii = Source("chaii", "chaii", repeats=2)
    r = Recipe("t", [Stage("one", [chaii], 64, 24), Stage("two", [chaii], 64, 24)],
               Augment(random_crop=True, progressive=False))
    cfg = TrainConfig(backbone="tiny-bert", output_dir=str(tmp_path), n_folds=3, fold=1)
    ds, train, valid = fold_dataset(df, cfg, r, tmp_path, tokenizer)
    seen = set(ds["example_id"])
    assert seen == set(train["id"]) and not seen & set(valid["id"]) and len(valid) > 10


def test_an_nq_source_reads_the_subset_file_src_nq_writes(tmp_path):
    from src.data.nq import load_nq_jsonl, write_subset
    from src.train.recipe import source_frame
    from tests.test_nq import DOC, record, write_jsonl

    agra = DOC.index("Agra")
    rows, _ = load_nq_jsonl(write_jsonl(tmp_path, [record(1, "where is the taj mahal", DOC, (4, 17),
                                                          [(agra - 1, agra + 2)])]))
    path = write_subset(rows, tmp_path / "nq-subset")
    df = source_frame(Source("nq_subset", "nq", "nq-subset/nq_subset.json"), tmp_path)
    assert path.name == "nq_subset.json" and list(df["answer_text"]) == ["Agra"] and list(df["source"]) == ["nq"]


def test_hard_negatives_path_is_read_from_the_data_dir_whatever_the_cwd(tokenizer, tmp_path, monkeypatch):
    """papermill runs notebook 03 from notebooks/: a relative oof.csv must not depend on the current directory."""
    from src.train.fold import TrainConfig
    from src.train.recipe import fold_dataset

    df = make_synthetic_qa(30, seed=5)
    data = tmp_path / "data"
    (data / "prev").mkdir(parents=True)
    df[["id"]].assign(jaccard=1.0).to_csv(data / "prev" / "oof.csv", index=False)
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    chaii = Source("chaii", "chaii")
    cfg = TrainConfig(backbone="tiny-bert", output_dir=str(tmp_path / "out"), n_folds=3, fold=0)
    aug = Augment(random_crop=False, progressive=False, negative_fraction=0.5, hard_negatives="prev/oof.csv")
    ds, train, _ = fold_dataset(df, cfg, Recipe("t", [Stage("one", [chaii], 64, 24)], aug), data, tokenizer)
    assert set(ds["example_id"]) <= set(train["id"]) and len(ds) > 0
    missing = Recipe("t", [Stage("one", [chaii], 64, 24)], dataclasses.replace(aug, hard_negatives="nope/oof.csv"))
    with pytest.raises(FileNotFoundError, match=re.escape(str(data / "nope" / "oof.csv"))):
        fold_dataset(df, cfg, missing, data, tokenizer)


def test_recipe_epochs_redraw_crops_and_negatives_and_keep_the_stage_order(tokenizer):
    """epochs=2 with a recipe: stage 1, 2, then stage 1, 2 again, each repeat with new crops and negatives."""
    from tests.test_features import long_frame

    src = Source("long", "synthetic")
    r = Recipe("t", [Stage("one", [src], 96, 32), Stage("two", [src], 96, 32)],
               Augment(random_crop=True, progressive=False, negative_fraction=0.5))
    frames = {src.data_key(): long_frame()}
    one = build_dataset(r, frames, tokenizer, seed=0).to_pandas()
    ds = build_dataset(r, frames, tokenizer, seed=0, epochs=2).to_pandas()
    key = list(zip(ds["epoch"], ds["stage"], strict=True))
    assert key == sorted(key) and sorted(set(key)) == [(0, 0), (0, 1), (1, 0), (1, 1)]   # 1, 2, 1, 2
    first = ds[ds["epoch"] == 0].drop(columns="epoch").reset_index(drop=True)
    assert first.equals(one.drop(columns="epoch"))                  # epoch 1 is the one-epoch recipe, unchanged
    windows = {(e, k): set(zip(g["example_id"], g["window_start_char"], g["has_answer"], strict=True))
               for (e, k), g in ds.groupby(["epoch", "stage"])}
    for k in (0, 1):
        a, b = windows[0, k], windows[1, k]
        assert len(a ^ b) > 0.5 * len(a), k                         # re-drawn crops and negatives, not a replay
        pos = {w[0] for w in b if w[2]}
        assert pos == set(long_frame()["id"])                       # every answer still there in epoch 2
    assert ds.groupby("epoch")["repeat"].apply(set).tolist() == [{0, 1}, {2, 3}]


def test_train_recipe_fold_runs_its_epochs_as_one_schedule(tiny_dirs, tmp_path):
    from src.train.fold import TrainConfig
    from src.train.recipe import train_recipe_fold

    df = make_synthetic_qa(36, seed=4)
    chaii = Source("chaii", "chaii")
    r = Recipe("t", [Stage("one", [chaii], 64, 24), Stage("two", [chaii], 64, 24)],
               Augment(random_crop=True, progressive=False))
    cfg = TrainConfig(backbone="tiny-bert", model_path=str(tiny_dirs["tiny-bert"]), output_dir=str(tmp_path / "r"),
                      n_folds=3, epochs=2, batch_size=8, grad_accum=1, max_length=64, doc_stride=24,
                      warmup_ratio=0.1, save_steps=10_000, logging_steps=1)
    result = train_recipe_fold(df, cfg, r, tmp_path)
    n_windows = result.metrics["n_train_windows"]
    rates = np.array([h["learning_rate"] for h in result.log_history if "learning_rate" in h])
    assert len(rates) == -(-n_windows // 8)                          # one pass over both epochs' windows
    warm = int(np.argmax(rates))
    steps = np.diff(rates[warm:])
    # one linear decay to zero over both epochs: equal steps, no restart at the epoch boundary
    assert steps[0] < 0 and np.allclose(steps, steps[0], rtol=1e-6, atol=1e-12)
    assert np.isclose(rates[-1], -steps[0])
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["config"]["epochs"] == 2 and saved["metrics"]["recipe_epochs"] == 2
    with pytest.raises(ValueError, match="whole number of epochs"):
        train_recipe_fold(df, dataclasses.replace(cfg, epochs=1.5), r, tmp_path)


def test_a_chaii_source_split_by_article_feeds_each_half_to_its_stage(tokenizer, tmp_path):
    """`articles: train/test` on a chaii source halves the fold's training articles (chaii has no title: the
    context is the article); both halves used to get every training row."""
    from src.train.fold import TrainConfig
    from src.train.recipe import fold_dataset

    df = make_synthetic_qa(80, seed=7)
    assert "title" not in df.columns and df["context"].nunique() > 8
    half = dict(kind="chaii", test_fraction=0.5, split_seed=0)
    r = Recipe("t", [Stage("one", [Source("a", articles="train", **half)], 64, 24),
                     Stage("two", [Source("b", articles="test", **half)], 64, 24)],
               Augment(random_crop=False, progressive=False))
    cfg = TrainConfig(backbone="tiny-bert", output_dir=str(tmp_path), n_folds=3, fold=0)
    ds, train, valid = fold_dataset(df, cfg, r, tmp_path, tokenizer)
    w = ds.to_pandas()
    contexts = dict(zip(df["id"], df["context"], strict=True))
    one, two = ({contexts[i] for i in w.loc[w["stage"] == s, "example_id"]} for s in (0, 1))
    assert one and two and not one & two                                  # whole articles on one side
    assert set(w["example_id"]) == set(train["id"]) and not set(w["example_id"]) & set(valid["id"])
    limited = Recipe("t", [Stage("one", [Source("a", "chaii", limit=5)], 64, 24)], r.augment)
    assert set(fold_dataset(df, cfg, limited, tmp_path, tokenizer)[0]["example_id"]) <= set(train["id"])
    assert len(set(fold_dataset(df, cfg, limited, tmp_path, tokenizer)[0]["example_id"])) == 5


# ---------------------------------------------------------------- the winner's recipe (kldarek/chaii notebooks)
def negatives_of(ds, stage: int, source: str) -> set:
    g = ds[(ds["stage"] == stage) & (ds["source"] == source) & ~ds["has_answer"]]
    return set(zip(g["example_id"], g["window_start_char"], strict=True))


def test_negative_keep_is_per_source_and_drawn_anew_in_every_pass_and_the_tail_keeps_every_negative(tokenizer):
    """His 68 (XLMR_pretraining68 cells 12, 14): pass 1 = TyDi at 0.1 + SQuAD whole + chaii at 0.1; pass 2 = TyDi at
    0.1 (a second draw) + chaii at 0.2; then chaii alone with every negative."""
    from tests.test_features import long_frame

    tydi, squad, chaii = Source("tydi", "synthetic"), Source("squad", "synthetic"), Source("chaii", "synthetic")
    frames = {s.data_key(): long_frame().assign(id=lambda d, n=s.name: n + "-" + d["id"]) for s in (tydi, squad)}
    frames[chaii.data_key()] = long_frame()
    keep = dataclasses.replace
    r = Recipe("his-68", [
        Stage("pass1", [keep(tydi, negative_keep=0.1), squad, keep(chaii, negative_keep=0.1)], 96, 32),
        Stage("pass2", [keep(tydi, negative_keep=0.1), keep(chaii, negative_keep=0.2)], 96, 32),
        Stage("tail", [chaii], 96, 32, shuffle=False)], Augment())
    ds = build_dataset(r, frames, tokenizer, seed=0).to_pandas()
    full = build_dataset(Recipe("all", [Stage("s", [chaii], 96, 32)], Augment()), frames, tokenizer).to_pandas()
    n_neg, n_pos = int((~full["has_answer"]).sum()), int(full["has_answer"].sum())
    assert n_neg > 300                                                  # enough draws for the rates below
    for stage, source, p in ((0, "tydi", 0.1), (0, "squad", 1.0), (0, "chaii", 0.1), (1, "tydi", 0.1),
                             (1, "chaii", 0.2), (2, "chaii", 1.0)):
        part = ds[(ds["stage"] == stage) & (ds["source"] == source)]
        assert int(part["has_answer"].sum()) == n_pos, (stage, source)  # every window with the answer, every pass
        kept = int((~part["has_answer"]).sum())
        assert abs(kept - p * n_neg) <= 4 * (n_neg * p * (1 - p)) ** 0.5 + 1e-9, (stage, source, kept)
    # the same source in two passes: two independent draws, not the same windows twice
    one, two = negatives_of(ds, 0, "tydi"), negatives_of(ds, 1, "tydi")
    assert one != two and len(one & two) < 0.5 * min(len(one), len(two))
    # the tail: the source alone, every negative, in its rows' order (unshuffled, as his 68's)
    tail = ds[ds["stage"] == 2]
    assert set(tail["source"]) == {"chaii"} and len(tail) == len(full)
    order = tail["example_id"].map({i: k for k, i in enumerate(long_frame()["id"])}).tolist()
    assert order == sorted(order) and order != full["example_id"].map(
        {i: k for k, i in enumerate(long_frame()["id"])}).tolist()    # the shuffled build is not in row order
    shuffled = ds[ds["stage"] == 0]["source"].tolist()
    assert shuffled[: len(shuffled) // 3].count("squad") not in (0, len(shuffled) // 3)   # pass 1 still mixed


def test_a_negative_keep_overrides_the_recipes_fraction_for_its_source_only(tokenizer):
    from tests.test_features import long_frame

    a, b = Source("a", "synthetic", negative_keep=1.0), Source("b", "synthetic")
    frames = {a.data_key(): long_frame(), b.data_key(): long_frame().assign(id=lambda d: "b-" + d["id"])}
    r = Recipe("t", [Stage("s", [a, b], 96, 32)], Augment(negative_fraction=0.25))
    ds = build_dataset(r, frames, tokenizer).to_pandas()
    full = build_dataset(Recipe("t", [Stage("s", [a], 96, 32)], Augment()), frames, tokenizer).to_pandas()
    n_neg = int((~full["has_answer"]).sum())
    assert int((~ds[ds["source"] == "a"]["has_answer"]).sum()) == n_neg             # its own 1.0: all kept
    assert int((~ds[ds["source"] == "b"]["has_answer"]).sum()) == round(0.25 * n_neg)  # the recipe's fraction
    with pytest.raises(ValueError, match="negative_keep"):
        Source("x", negative_keep=1.2)


def test_fields_added_for_the_winners_recipes_leave_earlier_digests_alone():
    """A recipe written before `negative_keep`, `folds`, `part`, `shuffle` and `token_cutout` existed keeps its dict
    and digest (the ablation's run ids hash them); set, they are written and read back."""
    local = load_recipe("recipe_local")
    d = local.to_dict()
    assert "token_cutout" not in d["augment"] and all("shuffle" not in st for st in d["stages"])
    assert all({"negative_keep", "folds", "part"}.isdisjoint(src) for st in d["stages"] for src in st["sources"])
    assert local.digest() == Recipe.from_dict(d).digest()
    his = dataclasses.replace(local, augment=dataclasses.replace(local.augment, token_cutout=0.1), stages=[
        dataclasses.replace(local.stages[0], shuffle=False,
                            sources=[dataclasses.replace(local.stages[0].sources[0], negative_keep=0.1)])])
    back = Recipe.from_dict(json.loads(json.dumps(his.to_dict())))
    assert back == his and back.digest() != local.digest()
    assert back.stages[0].sources[0].negative_keep == 0.1 and not back.stages[0].shuffle


def test_folds_all_trains_a_chaii_source_on_every_fold(tokenizer, tmp_path):
    """His 126 (REM_pretraining126 cell 19: `chaii_train = chaii`) trains on all of chaii, the held-out fold too."""
    from src.train.fold import TrainConfig
    from src.train.recipe import fold_dataset

    df = make_synthetic_qa(45, seed=6)
    cfg = TrainConfig(backbone="tiny-bert", output_dir=str(tmp_path), n_folds=3, fold=1)
    r = Recipe("t", [Stage("one", [Source("chaii", "chaii", folds="all")], 64, 24)], Augment())
    ds, train, valid = fold_dataset(df, cfg, r, tmp_path, tokenizer)
    assert set(ds["example_id"]) == set(df["id"]) and set(valid["id"]) <= set(ds["example_id"])
    with pytest.raises(ValueError, match="folds='all' is for chaii"):
        Source("squad", "squad", folds="all")


# per recipe, per stage: {source: (max_length, doc_stride, negative_keep)}, shuffled; read off his notebooks'
# `prepare_datasets` / cells 11-14 (kldarek/chaii; configs/winner_*.yaml cite each cell)
HIS = {
    "winner_68": [({"tydi": (384, 192, 0.1), "squad": (384, 192, None), "hindi": (384, 192, None),
                    "chaii": (384, 192, 0.1)}, True),
                  ({"tydi": (384, 192, 0.1), "nq": (384, 192, 0.06), "hindi": (384, 192, None),
                    "chaii": (384, 192, 0.2)}, True),
                  ({"chaii": (384, 192, None)}, False)],
    "winner_116": [({"tydi": (256, 128, 0.1), "squad": (256, 128, None), "hindi": (256, 128, None),
                     "chaii": (256, 128, 0.1)}, True),
                   ({"tydi": (384, 192, 0.1), "nq": (256, 128, 0.06), "hindi": (384, 128, None),
                     "chaii": (384, 192, 0.2)}, True),
                   ({"chaii": (448, 192, None)}, False)],
    "winner_119": [({"tydi": (256, 128, 0.1), "squad": (256, 128, None), "hindi": (256, 112, None),
                     "chaii": (256, 112, 0.1)}, True),
                   ({"tydi": (384, 192, 0.1), "nq": (384, 192, 0.06), "hindi": (384, 128, None),
                     "chaii": (384, 192, 0.2)}, True),
                   ({"chaii": (384, 128, 0.3)}, False)],
    "winner_122": [({"tydi": (384, 192, 0.1), "squad": (384, 192, None), "hindi": (384, 192, None),
                     "chaii": (384, 192, 0.1)}, True),
                   ({"tydi": (448, 224, 0.1), "nq": (448, 224, 0.06), "hindi": (448, 224, None),
                     "chaii": (448, 192, 0.2)}, True)],
    "winner_126": [({"tydi": (384, 192, 0.1), "squad": (384, 192, None), "nq": (384, 192, 0.06),
                     "hindi": (384, 192, None), "chaii": (384, 128, 0.3)}, True)],
    "winner_52": [({"tydi": (384, 192, 0.1), "squad": (384, 192, None)}, True)],
}


@pytest.mark.parametrize("name", sorted(HIS) + ["winner_77"])
def test_the_winners_recipes_are_his_passes(name):
    from src.data.external import LOADERS

    r = load_recipe(name)
    his = HIS.get(name, HIS["winner_68"])
    got = [({s.name: (s.max_length or st.max_length, s.doc_stride or st.doc_stride, s.negative_keep)
             for s in st.sources}, st.shuffle) for st in r.stages]
    if name == "winner_77":                      # 68's passes, the tail shuffled (REMBERT_pretraining77 cell 13)
        his = his[:2] + [(his[2][0], True)]
    assert got == his
    a = r.augment
    assert not a.random_crop and not a.progressive and a.cutout == 0 and a.negative_fraction == 1.0
    assert a.token_cutout == {"winner_119": 0.1, "winner_122": 0.03}.get(name, 0.0)
    assert r.sequential == (name != "winner_52")
    kinds = {s.name: s.kind for st in r.stages for s in st.sources}
    assert {k: v for k, v in kinds.items() if k in ("tydi", "squad", "nq", "hindi", "chaii")} == {
        "tydi": "tydi_primary", "squad": "squad", "nq": "nq_documents", "hindi": "chaii_mlqa_xquad",
        "chaii": "chaii"} if name != "winner_52" else {"tydi": "tydi_primary", "squad": "squad"}
    assert set(kinds.values()) <= set(LOADERS)
    assert all(s.part == "external" for st in r.stages for s in st.sources if s.name == "hindi")
    assert [s.folds for st in r.stages for s in st.sources if s.kind == "chaii"] == (
        ["all"] if name == "winner_126" else ["train"] * sum(s.kind == "chaii" for st in r.stages for s in st.sources))
    assert Recipe.from_dict(r.to_dict()) == r


def test_a_sources_part_reaches_its_loader(tmp_path):
    """His `hindi` = the merged file's rows whose src is not chaii (XLMR_pretraining68 cell 11)."""
    import pandas as pd

    from src.train.recipe import source_frame

    rows = [("चेन्नई तमिलनाडु की राजधानी है।", "राजधानी क्या है?", "चेन्नई", 0, "hindi", src, 0)
            for src in ("chaii", "mlqa", "xquad")]
    folder = tmp_path / "chaiimlqaxquad"
    folder.mkdir()
    pd.DataFrame(rows, columns=["context", "question", "answer_text", "answer_start", "language", "src", "fold"]) \
        .to_csv(folder / "chaii-mlqa-xquad-5folds.csv", index=False)
    src = Source("hindi", "chaii_mlqa_xquad", "chaiimlqaxquad/chaii-mlqa-xquad-5folds.csv", part="external")
    assert sorted(source_frame(src, tmp_path)["src"]) == ["mlqa", "xquad"]
    everything = dataclasses.replace(src, part="")
    assert len(source_frame(everything, tmp_path)) == 3 and everything.data_key() != src.data_key()
