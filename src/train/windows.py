"""A recipe's training windows, streamed to disk: every stage's sources cut into windows, then stages in order.

`build_dataset` turns a recipe (`src/train/recipe.py`) and its sources' frames into the windows a run is fed, in
feeding order: each repeat of a source is cut into windows (`source_windows`, with the random crop of the recipe's
`Augment` and the negatives kept by the source's `negative_keep` or the recipe's `negative_fraction`), a stage's
windows are shuffled among themselves (unless the stage says `shuffle: false`), stages and epochs follow each other.
Why streamed: held as Python lists, windows cost ~118 bytes a token (2.4 GB for 72k windows; docs/kaggle.md, "Host
memory of the windows"), and the project's two-stage Kaggle recipe over two epochs is ~480k windows. So contexts are
tokenized a chunk at a time straight into Arrow, and each stage is written to an Arrow file that the dataset
memory-maps: host memory holds one stage's windows in Arrow and one chunk's lists at most.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from src.data.features import frame_to_batch, prepare_train_features
from src.train import augment

if TYPE_CHECKING:  # annotations only: recipe.py imports this module (its fold_dataset builds with it)
    from src.train.recipe import Augment, Recipe


# Context characters tokenized at a time (~300k tokens, ~1,200 windows of 256): the Python lists and the tokenizer's
# encodings of a source never hold more than that (a chaii-long context is ~11,000 characters, a SQuAD one ~750)
WINDOW_CHUNK_CHARS = 1_000_000
WRITE_BATCH = 4096       # windows taken from a permuted stage and written to disk at a time


def source_windows(df: pd.DataFrame, tokenizer, max_length: int, doc_stride: int, aug: Augment,
                   rng: np.random.Generator, hard: dict[str, float] | None = None, chunk_chars: int | None = None,
                   negative_keep: float | None = None):
    """One repeat of one source as an Arrow table: windows (cropped and strided at random with `random_crop`),
    negatives sampled: each kept with probability `negative_keep` when it is given (the winner's per-source draw,
    `augment.keep_negatives`; `hard` weights do not apply to it), else `aug.negative_fraction` of them
    (`augment.sample_negatives`). Tokenized ~`chunk_chars` context characters at a time, each chunk turned into
    Arrow at once (int32 token ids, int8 masks: `datasets`' column types), so no Python list holds a whole source;
    the same windows as one call over the whole source."""
    import pyarrow as pa
    from datasets import Dataset

    cuts = np.zeros(len(df), dtype=np.int64)
    if aug.random_crop:
        doc_stride = augment.crop_stride(doc_stride, rng)
        # at most about one window step of text (~4 characters a token): shifts the window grid, keeps the answer
        df, cuts = augment.crop_frame(df, rng, max_chars=4 * (max_length - doc_stride))
    cols = ["id", "question", "context", "answer_text", "answer_start"]
    cut_of = dict(zip(df["id"], cuts, strict=True))
    # rows whose running total of context characters crosses a multiple of chunk_chars start a chunk
    total = np.cumsum(df["context"].str.len().to_numpy()) // (chunk_chars or WINDOW_CHUNK_CHARS)
    starts = [int(i) for i in np.flatnonzero(np.diff(total, prepend=-1))] or [0]
    tables = []
    for lo, hi in zip(starts, starts[1:] + [len(df)], strict=True):
        feats = prepare_train_features(frame_to_batch(df[cols].iloc[lo:hi]), tokenizer, max_length, doc_stride)
        for k in ("window_start_char", "window_end_char"):  # back to positions in the original context
            feats[k] = [c + cut_of[i] for c, i in zip(feats[k], feats["example_id"], strict=True)]
        tables.append(Dataset.from_dict(feats).data.table)
    table = pa.concat_tables(t.cast(tables[0].schema) for t in tables)
    if negative_keep is not None:
        if negative_keep < 1.0:
            has_answer = table.column("has_answer").to_numpy(zero_copy_only=False)
            table = table.filter(pa.array(augment.keep_negatives(has_answer, negative_keep, rng), type=pa.bool_()))
    elif aug.negative_fraction < 1.0:
        # drawn over the whole source at once, as before chunking: the same rng calls, the same negatives
        ids = table.column("example_id").to_pylist() if hard is not None else []
        weights = None if hard is None else np.array([hard.get(i, 1.0) for i in ids])
        has_answer = table.column("has_answer").to_numpy(zero_copy_only=False)
        keep = augment.sample_negatives(has_answer, aug.negative_fraction, rng, weights)
        table = table.filter(pa.array(keep, type=pa.bool_()))
    return table


def windows_cache_dir() -> Path:
    """A fresh temporary folder for a dataset's Arrow file, removed when the process that made it exits (the file is
    mapped until then; on Kaggle /tmp, outside /kaggle/working, so it is not saved as the kernel's output)."""
    import multiprocessing.util
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="chaii-windows-"))
    # not atexit: a training process forked by the launcher leaves through os._exit, which runs multiprocessing's
    # finalizers only; and a Finalize runs in the process that made it, never in a fork that inherited it
    multiprocessing.util.Finalize(None, shutil.rmtree, args=(str(path), True), exitpriority=0)
    return path


def build_dataset(recipe: Recipe, frames: dict[tuple, pd.DataFrame], tokenizer, seed: int = 0,
                  hard: dict[str, float] | None = None, epochs: int = 1, cache_dir: str | os.PathLike | None = None):
    """The training windows in feeding order, as a `datasets.Dataset` (+ `stage`, `source`, `repeat`, `epoch`).

    Each stage's windows are shuffled (seeded) among themselves, or kept in source and row order where the stage
    says `shuffle: false`; stages follow each other in order. A source's repeats are numbered across the whole
    recipe and all its epochs, so the same source in two stages, or in two epochs, gets other crops and negatives
    (the winner's TyDi, drawn once for each of his two passes). `epochs` > 1 runs the whole stage sequence again
    (1, 2, 1, 2, ...), re-drawn: the Trainer then makes ONE pass over it, so one learning-rate schedule spans every
    epoch.

    Built one stage at a time into an Arrow file in `cache_dir` (default: a temporary folder removed at exit) and
    memory-mapped from there: host memory holds one stage's windows in Arrow at most, not every epoch's as lists.
    """
    import uuid

    import pyarrow as pa
    from datasets import Dataset

    if epochs < 1 or int(epochs) != epochs:
        raise ValueError(f"a recipe runs a whole number of epochs >= 1, got {epochs}")
    # a new name every call: an earlier dataset may still map its file
    path = Path(cache_dir or windows_cache_dir()) / f"windows-{uuid.uuid4().hex}.arrow"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer, schema = None, None
    repeat_no: dict[str, int] = {}
    plan = [(e, k, stage, lengths) for e in range(int(epochs))
            for k, (stage, lengths) in enumerate(zip(recipe.stages, recipe.stage_lengths(), strict=True))]
    try:
        for epoch, k, stage, (stage_len, stage_stride) in plan:
            parts = []
            for src in stage.sources:
                max_length = src.max_length or stage_len
                doc_stride = src.doc_stride or stage_stride
                for _ in range(src.repeats):
                    r = repeat_no[src.name] = repeat_no.get(src.name, -1) + 1
                    # a repeat's seed depends on the source's name, not its place: adding a source changes no other
                    rng = np.random.default_rng([seed, r, int(hashlib.md5(src.name.encode()).hexdigest()[:8], 16)])
                    table = source_windows(frames[src.data_key()], tokenizer, max_length, doc_stride,
                                           recipe.augment, rng, hard, negative_keep=src.negative_keep)
                    n = table.num_rows
                    for name, value, kind in (("stage", k, pa.int64()), ("source", src.name, pa.string()),
                                              ("repeat", r, pa.int64()), ("epoch", epoch, pa.int64())):
                        table = table.append_column(name, pa.array([value] * n, type=kind))
                    schema = schema or table.schema
                    parts.append(table.cast(schema))
            stage_table = pa.concat_tables(parts)
            # epoch 0 keeps the one-epoch seeds: a recipe run with epochs=1 is the same as before epochs existed
            order_seed = [seed, 1_000_003, k] + ([epoch] if epoch else [])
            order = (np.random.default_rng(order_seed).permutation(stage_table.num_rows) if stage.shuffle
                     else np.arange(stage_table.num_rows))
            writer = writer or pa.ipc.new_stream(str(path), schema)
            for lo in range(0, len(order), WRITE_BATCH):
                writer.write_table(stage_table.take(pa.array(order[lo:lo + WRITE_BATCH])))
            del parts, stage_table
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no stage at all
        return Dataset.from_dict({})
    return Dataset.from_file(str(path))
