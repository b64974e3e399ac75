"""The recipe's windows are built one stage at a time into an Arrow file, tokenized a chunk of contexts at a time:
the same windows in the same order as the in-memory build they replace; and a source's `limit:` is a seeded sample."""
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from src.data.features import frame_to_batch, prepare_train_features
from src.data.synthetic import make_synthetic_qa
from src.train import augment, windows
from src.train.recipe import Augment, Recipe, Source, Stage
from src.train.windows import build_dataset
from tests.test_features import long_frame


# ---------------------------------------------------------------- the build it replaces, kept as the reference
def reference_windows(df, tokenizer, max_length, doc_stride, aug, rng, hard=None):
    """`source_windows` before streaming (commit 2d0d897): one call over the whole source, Python lists."""
    cuts = np.zeros(len(df), dtype=np.int64)
    if aug.random_crop:
        doc_stride = augment.crop_stride(doc_stride, rng)
        df, cuts = augment.crop_frame(df, rng, max_chars=4 * (max_length - doc_stride))
    cols = ["id", "question", "context", "answer_text", "answer_start"]
    feats = prepare_train_features(frame_to_batch(df[cols]), tokenizer, max_length, doc_stride)
    cut_of = dict(zip(df["id"], cuts, strict=True))
    for k in ("window_start_char", "window_end_char"):
        feats[k] = [c + cut_of[i] for c, i in zip(feats[k], feats["example_id"], strict=True)]
    if aug.negative_fraction < 1.0:
        weights = None if hard is None else np.array([hard.get(i, 1.0) for i in feats["example_id"]])
        keep = augment.sample_negatives(np.array(feats["has_answer"]), aug.negative_fraction, rng, weights)
        feats = {k: [v for v, kp in zip(vals, keep, strict=True) if kp] for k, vals in feats.items()}
    return feats


def reference_build(recipe, frames, tokenizer, seed=0, hard=None, epochs=1):
    """`build_dataset` before streaming: every epoch's windows as lists, then one `Dataset.from_dict`."""
    from datasets import Dataset

    columns, repeat_no = {}, {}
    plan = [(e, k, stage, lengths) for e in range(epochs)
            for k, (stage, lengths) in enumerate(zip(recipe.stages, recipe.stage_lengths(), strict=True))]
    for epoch, k, stage, (stage_len, stage_stride) in plan:
        parts = []
        for src in stage.sources:
            for _ in range(src.repeats):
                r = repeat_no[src.name] = repeat_no.get(src.name, -1) + 1
                rng = np.random.default_rng([seed, r, int(hashlib.md5(src.name.encode()).hexdigest()[:8], 16)])
                feats = reference_windows(frames[src.data_key()], tokenizer, src.max_length or stage_len,
                                          src.doc_stride or stage_stride, recipe.augment, rng, hard)
                n = len(feats["input_ids"])
                feats.update(stage=[k] * n, source=[src.name] * n, repeat=[r] * n, epoch=[epoch] * n)
                parts.append(feats)
        stage_cols = {key: [v for p in parts for v in p[key]] for key in parts[0]}
        order = np.random.default_rng([seed, 1_000_003, k] + ([epoch] if epoch else [])).permutation(
            len(stage_cols["input_ids"]))
        for key, vals in stage_cols.items():
            columns.setdefault(key, []).extend(vals[i] for i in order)
    return Dataset.from_dict(columns)


def recipe_and_frames():
    """Two stages, a repeated source, a source with its own window, crops and sampled negatives."""
    a, b, c = Source("a", "synthetic", "a"), Source("b", "synthetic", "b", repeats=2), \
        Source("long", "synthetic", "long", max_length=96, doc_stride=32)
    frames = {a.data_key(): make_synthetic_qa(50, seed=1),
              b.data_key(): make_synthetic_qa(30, seed=2).assign(id=lambda d: "b-" + d["id"]),
              c.data_key(): long_frame()}
    aug = Augment(random_crop=True, progressive=True, lengths=(64, 96), negative_fraction=0.4)
    hard = dict(zip(long_frame()["id"], np.linspace(0.1, 2, len(long_frame())), strict=True))
    return Recipe("t", [Stage("one", [a, b, c], 64, 24), Stage("two", [b, c], 80, 30)], aug), frames, hard


def rows(ds) -> list[dict]:
    return [{k: (list(v) if isinstance(v, (list, np.ndarray)) else v) for k, v in r.items()} for r in ds]


def test_streamed_windows_are_the_in_memory_builds_in_the_same_order(tokenizer, monkeypatch, tmp_path):
    recipe, frames, hard = recipe_and_frames()
    expected = reference_build(recipe, frames, tokenizer, seed=3, hard=hard, epochs=2)
    calls = []
    real = windows.prepare_train_features
    monkeypatch.setattr(windows, "prepare_train_features", lambda ex, *a, **kw: calls.append(len(ex["id"])) or
                        real(ex, *a, **kw))
    monkeypatch.setattr(windows, "WINDOW_CHUNK_CHARS", 1500)      # a few contexts a chunk
    got = build_dataset(recipe, frames, tokenizer, seed=3, hard=hard, epochs=2, cache_dir=tmp_path)
    assert got.features == expected.features and got.column_names == expected.column_names
    assert len(got) == len(expected) > 500 and rows(got) == rows(expected)
    assert max(calls) < 30 and len(calls) > 20                 # tokenized in chunks, never a whole source at once
    assert {f["filename"] for f in got.cache_files} and all(f["filename"].startswith(str(tmp_path))
                                                            for f in got.cache_files)   # memory-mapped from disk


def test_a_second_build_in_the_same_folder_leaves_the_first_readable(tokenizer, tmp_path):
    recipe, frames, hard = recipe_and_frames()
    first = build_dataset(recipe, frames, tokenizer, seed=0, cache_dir=tmp_path)
    before = rows(first.select(range(20)))
    second = build_dataset(recipe, frames, tokenizer, seed=1, cache_dir=tmp_path)
    assert rows(first.select(range(20))) == before and rows(second.select(range(20))) != before
    assert len(list(tmp_path.glob("*.arrow"))) == 2


def test_limit_reads_a_seeded_sample_of_the_source(tmp_path):
    from src.train.recipe import source_frame

    df = make_synthetic_qa(40, seed=9)
    qa = [{"id": r.id, "question": r.question,
           "answers": [{"text": r.answer_text, "answer_start": int(r.answer_start)}]} for r in df.itertuples()]
    data = {"data": [{"title": f"t{i}", "paragraphs": [{"context": c, "qas": [q]}]}
                     for i, (c, q) in enumerate(zip(df["context"], qa, strict=True))]}
    (tmp_path / "sq").mkdir()
    (tmp_path / "sq" / "s.json").write_text(json.dumps(data, ensure_ascii=False))
    full = source_frame(Source("s", "squad", "sq/s.json"), tmp_path)
    one = source_frame(Source("s", "squad", "sq/s.json", limit=15), tmp_path)
    again = source_frame(Source("s", "squad", "sq/s.json", limit=15), tmp_path)
    assert len(full) == 40 and len(one) == 15 and one.equals(again)              # the same sample every run
    assert set(one["id"]) < set(full["id"]) and list(one["id"]) != list(full["id"][:15])
    order = [list(full["id"]).index(i) for i in one["id"]]
    assert order == sorted(order)                                                 # kept in file order
    assert source_frame(Source("s", "squad", "sq/s.json", limit=100), tmp_path).equals(full)
    assert Source("s", "squad", "p", limit=15).data_key() != Source("s", "squad", "p").data_key()


@pytest.mark.parametrize("chars", [1, 10**9])
def test_chunk_size_does_not_change_a_sources_windows(tokenizer, chars):
    df = pd.concat([long_frame(), make_synthetic_qa(20, seed=4)], ignore_index=True)
    aug = Augment(random_crop=True, negative_fraction=0.5)
    whole = windows.source_windows(df, tokenizer, 96, 32, aug, np.random.default_rng(5), chunk_chars=10**12)
    part = windows.source_windows(df, tokenizer, 96, 32, aug, np.random.default_rng(5), chunk_chars=chars)
    assert part.equals(whole)


def child_build(tiny_dir, out):
    from transformers import AutoTokenizer

    recipe, frames, _ = recipe_and_frames()
    ds = build_dataset(recipe, frames, AutoTokenizer.from_pretrained(tiny_dir))
    out.put(ds.cache_files[0]["filename"])


def test_the_temporary_windows_go_with_the_process_that_built_them(tiny_dirs):
    """A forked training process (the two-GPU launcher) removes its own windows when it exits, not its parent's."""
    import multiprocessing
    from pathlib import Path

    from transformers import AutoTokenizer

    recipe, frames, _ = recipe_and_frames()
    mine = build_dataset(recipe, frames, AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"]))
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=child_build, args=(tiny_dirs["tiny-bert"], out))
    child.start()
    theirs = Path(out.get(timeout=120))
    child.join(120)
    assert child.exitcode == 0 and not theirs.parent.exists()
    assert Path(mine.cache_files[0]["filename"]).exists() and len(mine.select(range(5))) == 5
