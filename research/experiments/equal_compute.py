"""Equal compute: how many windows a recipe feeds, counted without building them, and the question counts that
make a variant feed as many windows as another (`research.experiments.ablate_long`'s `-eqc` variants).

A run's windows are counted from each question's windows at the grid's window size (`question_windows`, cut by the
recipe's own featurizer once per pool), so that the search over question counts is arithmetic rather than one
featurization per candidate size.
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from research.experiments import ablate
from src.train.recipe import Recipe


def question_windows(frames: list[pd.DataFrame], tokenizer, grid: tuple[int, int], chunk: int = 200) -> pd.DataFrame:
    """Per question id: its training windows and those holding the answer (`windows`, `with_answer`), cut by the
    recipe's own featurizer at `grid` (max_length, doc_stride), `chunk` questions at a time."""
    from src.data.features import frame_to_batch, prepare_train_features
    max_length, doc_stride = grid
    cols = ["id", "question", "context", "answer_text", "answer_start"]
    parts = []
    for df in frames:
        for lo in range(0, len(df), chunk):
            f = prepare_train_features(frame_to_batch(df[cols].iloc[lo:lo + chunk]), tokenizer, max_length, doc_stride)
            parts.append(pd.DataFrame({"id": f["example_id"], "has_answer": f["has_answer"]}))
    w = pd.concat(parts, ignore_index=True)
    g = w.groupby("id")["has_answer"]
    return pd.DataFrame({"windows": g.size(), "with_answer": g.sum().astype(int)})


def recipe_windows(recipe: Recipe, frames: dict[tuple, pd.DataFrame], counts: pd.DataFrame,
                   grid: tuple[int, int]) -> int:
    """The windows `build_dataset` feeds for `recipe` over `frames`, from per-question `counts` cut at `grid`
    (max_length, doc_stride): per source and repeat, every window with the answer and round(fraction x the rest)
    (`src.train.augment.sample_negatives`). Exact for a recipe without random crop or resizing (else a ValueError:
    those change the windows)."""
    if recipe.augment.random_crop or any(
            (src.max_length or L, src.doc_stride or S) != grid
            for st, (L, S) in zip(recipe.stages, recipe.stage_lengths(), strict=True) for src in st.sources):
        raise ValueError(f"recipe {recipe.name!r}: windows are counted on one {grid} grid, without random crop or "
                         "resizing")
    total = 0
    for stage in recipe.stages:
        for src in stage.sources:
            c = counts.loc[frames[src.data_key()]["id"]]
            pos = int(c["with_answer"].sum())
            neg = int(c["windows"].sum()) - pos
            total += src.repeats * (pos + int(round(recipe.augment.negative_fraction * neg)))
    return total


def with_sizes(recipe: Recipe, sizes: dict[str, int]) -> Recipe:
    """`recipe` with the sources named in `sizes` limited to those many questions."""
    return dataclasses.replace(recipe, stages=[
        dataclasses.replace(st, sources=[dataclasses.replace(src, limit=sizes.get(src.name, src.limit))
                                         for src in st.sources]) for st in recipe.stages])


def recipe_sizes(recipe: Recipe) -> dict[str, int | None]:
    return {src.name: src.limit for st in recipe.stages for src in st.sources}


def equal_compute_sizes(recipe: Recipe, target: int, pools: dict[str, pd.DataFrame], counts: pd.DataFrame,
                        grows: tuple[str, ...], grid: tuple[int, int]) -> tuple[dict[str, int], int]:
    """(sizes, windows): the smallest count n >= the recipe's own for the first source of `grows` (the others
    round(n x their configured ratio to it), at most their pool) whose `recipe_windows` reach `target`; every
    question of the pools if none does (the windows then fall short, and the caller logs both)."""
    base = recipe_sizes(recipe)
    lead, rest = grows[0], grows[1:]
    first = base[lead] if base[lead] is not None else len(pools[lead])
    sizes, windows = dict(base), 0
    for n in range(first, len(pools[lead]) + 1):
        sizes = dict(base, **{lead: n}, **{k: min(len(pools[k]), round(n * (base[k] or len(pools[k])) / first))
                                           for k in rest})
        r = with_sizes(recipe, sizes)
        windows = recipe_windows(r, ablate.frames_for(r, pools), counts, grid)
        if windows >= target:
            break
    return sizes, windows
