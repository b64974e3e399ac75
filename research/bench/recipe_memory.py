"""Peak host memory of building a recipe's training windows (`src.train.windows.build_dataset`), in a fresh process.

A synthetic two-stage recipe over `n` examples whose contexts are long (chaii-like: ~60 synthetic paragraphs of
Hindi/Tamil facts each), two epochs, random crop and progressive resizing on, tokenized with XLM-R's SentencePiece
(e5-small's tokenizer, so token ids are large numbers as on Kaggle). Prints JSON: peak RSS before and after the build
(`resource.getrusage`), windows and tokens built, seconds:

    python -m research.bench.recipe_memory N OUT.json
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from research.bench.workers import peak_rss_mb
from src.common.paths import CACHE_DIR


def synthetic_frames(recipe, n: int):
    """`n` rows per source, each context ~60 synthetic paragraphs (~2,500 XLM-R tokens) with its answer inside."""
    import pandas as pd

    from src.data.synthetic import make_synthetic_qa

    frames = {}
    for j, src in enumerate(s for stage in recipe.stages for s in stage.sources):
        if src.data_key() in frames:
            continue
        df = make_synthetic_qa(n, seed=j)
        filler = make_synthetic_qa(60, seed=100 + j)["context"]
        head = " ".join(filler[:30])
        df["context"] = [f"{head} {c} " + " ".join(filler[30:]) for c in df["context"]]
        df["answer_start"] = df["answer_start"] + len(head) + 1
        frames[src.data_key()] = pd.DataFrame(df).assign(id=lambda d, j=j: f"s{j}-" + d["id"])
    return frames


def measure(n: int) -> dict:
    from transformers import AutoTokenizer

    from src.train.recipe import Augment, Recipe, Source, Stage
    from src.train.windows import build_dataset

    a, b = Source("a", "synthetic", "a"), Source("b", "synthetic", "b", repeats=2)
    recipe = Recipe("memory", [Stage("one", [a, b], 384, 128), Stage("two", [b], 384, 128)],
                    Augment(random_crop=True, progressive=True))
    tokenizer = AutoTokenizer.from_pretrained(CACHE_DIR / "e5-small")
    frames = synthetic_frames(recipe, n)
    before = peak_rss_mb()
    t0 = time.perf_counter()
    ds = build_dataset(recipe, frames, tokenizer, seed=0, epochs=2)
    seconds = time.perf_counter() - t0
    after = peak_rss_mb()
    tokens = sum(len(x) for x in ds.with_format("arrow")["input_ids"].to_pylist())
    return dict(examples_per_source=n, windows=len(ds), tokens=tokens, peak_rss_before_mb=round(before),
                peak_rss_after_mb=round(after), build_mb=round(after - before), seconds=round(seconds, 1),
                on_disk=bool(ds.cache_files))


def main() -> None:
    n, out = int(sys.argv[1]), Path(sys.argv[2])
    res = measure(n)
    out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
