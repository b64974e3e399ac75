"""The ablation where the winner's ideas apply: fine-tuning and scoring with every question beside its whole article.

The paragraph grid (`research.experiments.ablate`) puts each Hindi question beside its own paragraph (~1.5 windows
of 256 tokens a question) and no augmentation helps there. chaii gives each question its whole Wikipedia article, so
most of its windows hold no answer: negative sampling, random crop and progressive resizing were made for that. This
grid runs the same variants in that regime, with the same machinery (`ablate.run_grid`, `ablate.report`, the same
fine-tune settings `ablate.TRAIN`), and logs its rows as kind "ablate-article" with run ids "article-<variant>-...".

    python -m research.experiments.ablate run --shape article --variants plain --seeds 0   # one run
    python -m research.experiments.ablate report --shape article    # the table from the committed log, no training
    make ablate-long                                                 # the grid -> docs/ablation_table_long.md

Training data: the chaii-like TRAIN split (`research.experiments.chaii_like`: XQuAD articles 0-35 in XQuAD-hi's
title order), every question beside its whole article: Hindi (XQuAD-hi, 925 questions) and Tamil (XQuAD-IN ta, 658),
plus an English replay the base never trained on (TyDi-en dev paragraphs), each a seeded sample of questions. Nothing
of the held-out articles 36-47 is in it: `load_data` refuses to return if any evaluated id, title, context or
paragraph is in a training pool (`evalsets.leaks`).

Sizing (a run <= ~20 min of training on 2 CPU cores in bf16): e5-small's tokenizer cuts a whole article into 8.06
windows of 256/96 a Hindi question (1.54 with the answer) and 9.66 a Tamil one (1.59), a TyDi-en dev paragraph into
1.14 (counted 2026-12-04 on the full pools; token counts, the same on any machine). 200 Hindi + 130 Tamil (about the
pools' ratio, 925:658) + 100 TyDi-en dev, each question once, is 2,962 windows (plain and recipe; negsamp30 keeps
1,332): ~16.5 min at ~3.0 windows/s (bf16 on AVX-512 BF16, machine A of docs/experiments.md), ~6.5 min at ~7.6
(machine C, AMX). negsamp30-eqc grows to 469 Hindi + 305 Tamil questions, 2,966 windows (the same count). Scoring
reads 5,112 windows (3,508 of the 435 held-out questions' whole articles, 1,604 of the paragraph sets): ~4 min at
the paragraph grid's scoring rate on machine A (1,907 windows in ~1.5 min). `--size hindi=N` (tamil=,
tydi_en_dev=) gives another grid with its own run ids.

Variants (the paragraph grid's names and switches where they exist):
    plain       one shuffled pool: English replay + Hindi + Tamil, every window once
    recipe      the same questions in two stages fed in order: English replay + one half of the Hindi and Tamil
                articles (`split_by_title` of the sample, 0.5), then the other half alone. The paragraph grid's
                recipe feeds Hindi twice (replay + Hindi, then Hindi again) and its plain pools both passes; here
                every question is fed once, so the analogue that keeps "plain and recipe feed the same windows,
                only the order differs" ends on target-only articles without a second pass.
    crop, resize, cutout, soft, all, all-but-soft   recipe + the paragraph grid's switch(es)
    negsamp50, negsamp30, negsamp10   recipe keeping 50 / 30 / 10% of the no-answer windows (negsamp30 is the
                paragraph grid's negsamp, and the one in all)
    negsamp30-eqc   negsamp30 at equal compute: more Hindi and Tamil questions (Tamil in the configured ratio), the
                smallest Hindi count whose windows after sampling reach plain's at the configured sizes, counted
                from the data with the base's tokenizer at run time (`equal_compute.equal_compute_sizes`; 469 + 305
                at the default sizes); the row logs the sizes and both window counts
    presplit    plain with a space put between each word and a punctuation mark touching it before tokenizing,
                offsets mapped back to the original text (`src.data.presplit`; TrainConfig.presplit_punctuation):
                the same questions, the same single pool, a few more tokens where marks were glued to words
    hardneg     negsamp30 with negatives drawn in proportion to 1 - the base's zero-shot Jaccard on their question
                + 0.05 (`src.train.augment.hard_negative_weights`). The base never trained on these Hindi/Tamil
                questions, but it did train on SQuAD dev articles 0-35, their English originals: its errors are
                out of sample for the language, not for the content. Scored once per base, cached under the run
                root (hardneg/base-<hash>.csv, extended when a run has new questions); the run config names it.

Evaluation: the chaii-like TEST split as whole articles (`xquad_hi_article`, `xquad_in_ta_article`: the stand-in for
the private leaderboard) and the paragraph sets (`xquad_hi`, `xquad_in_ta`, `tydi_te`, `tydi_bn`), Jaccard with 95%
bootstrap intervals; each row's metrics carry both shapes. Seeds and verdicts follow the paragraph grid: plain runs
3 seeds, any variant whose first seed differs from plain by more than plain's seed sd gets 2 more; beyond the noise
= more than twice the combined seed sd.

Base: the grouped base (`BASE`: group_by_length, every window; `make ablate-target`'s), the one the paragraph grid's
plain reaches 0.45 from. The fine-tune never groups by length: the recipe variants feed their stages in order.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pandas as pd

from research.experiments import ablate
from research.experiments.equal_compute import (
    equal_compute_sizes,
    question_windows,
    recipe_sizes,
    recipe_windows,
    with_sizes,
)
from src.common.paths import CACHE_DIR
from src.train import explog
from src.train.recipe import Recipe, Source, Stage

KIND = "ablate-article"
OUT_ROOT = CACHE_DIR / "ablation-article"          # a run's folder: OUT_ROOT / run_id; hardneg/ holds base scores
TABLE_SETS = ("xquad_hi", "xquad_in_ta", "tydi_te", "tydi_bn")
EVAL_SETS = ("xquad_hi_article", "xquad_in_ta_article", "xquad_hi", "xquad_in_ta", "tydi_te", "tydi_bn")
HELD_OUT = ("xquad_hi_article", "xquad_hi")        # window logits kept for blending seeds
CAPTION = ("Whole-article grid (`research.experiments.ablate_long`): fine-tuned on whole chaii-like training "
           "articles (Hindi + Tamil) + an English paragraph replay; \"(article)\" columns score the held-out articles "
           "whole, \"(paragraph)\" ones each question beside its paragraph. Train windows and minutes per run: "
           "negative sampling changes compute (negsamp30-eqc matches plain's windows); minutes are the mean over a "
           "variant's runs on its first run's CPU and malloc settings.")
SIZES = dict(hindi=200, tamil=130, tydi_en_dev=100)  # questions, a seeded sample of each pool (see the docstring)
BASE = dict(group_by_length=True, max_windows=0)   # the grouped base (`--base KEY=VALUE` changes it: new run ids)
LENGTH, STRIDE = ablate.LENGTH, ablate.STRIDE
CONTEXTS = ("hindi, tamil: whole articles of the chaii-like train split (XQuAD articles 0-35, "
            "research.experiments.chaii_like); tydi_en_dev: paragraphs")

NEGATIVE_FRACTIONS = {"negsamp50": 0.5, "negsamp30": 0.3, "negsamp10": 0.1}
SWITCHES = {k: ablate.SWITCHES[k] for k in ("recipe", "crop", "resize", "cutout")}
SWITCHES.update({name: dict(negative_fraction=f) for name, f in NEGATIVE_FRACTIONS.items()})
EQUAL_COMPUTE = {"negsamp30-eqc": "plain"}         # variant -> whose windows it matches
HARD_NEGATIVES = ("hardneg",)
# plain with the punctuation split before tokenizing (src/data/presplit.py): a TrainConfig setting, not a recipe's
PRESPLIT = ("presplit",)
PENDING: tuple[str, ...] = ()   # variants defined whose 3 seeds are not all in the committed log yet
SWITCHES.update({"negsamp30-eqc": SWITCHES["negsamp30"], "hardneg": SWITCHES["negsamp30"]})
SWITCHES.update({k: ablate.SWITCHES[k] for k in ("soft", "all", "all-but-soft")})
VARIANTS = ["plain", *SWITCHES, *PRESPLIT]
SEEDS = {"plain": (0, 1, 2)}
FOLLOW_UP_SEEDS = ablate.FOLLOW_UP_SEEDS
GROWN = ("hindi", "tamil")                          # what equal compute adds questions to, the first one leading
SPLIT = dict(test_fraction=0.5, split_seed=0)      # recipe's two halves of the sampled articles


def train_sources(sizes: dict | None = None) -> dict[str, Source]:
    """The three pools as recipe sources (`load_data` gives their frames, by these names), each `sizes[name]`
    questions (default `SIZES`)."""
    n = SIZES if sizes is None else sizes
    return {"tydi_en_dev": Source("tydi_en_dev", "tydi", "tydiqa_goldp/english_tydiqa_dev.json",
                                  limit=n["tydi_en_dev"]),
            "hindi": Source("hindi", "xquad", "xquad/xquad.hi.json", language="hindi", limit=n["hindi"]),
            "tamil": Source("tamil", "xquad", "xquad_in/xquad_in.ta.json", language="tamil", limit=n["tamil"])}


def variant_recipe(name: str, sizes: dict | None = None) -> Recipe:
    """plain: one shuffled pool, every question once. Every other variant: two stages fed in order (replay + one
    half of the target articles, then the other half), with its switches on (see the module docstring)."""
    s = train_sources(sizes)
    if name == "plain" or name in PRESPLIT:
        return Recipe("plain", [Stage("all", list(s.values()), LENGTH, STRIDE)], ablate.OFF, sequential=False)
    if name not in SWITCHES:
        raise ValueError(f"unknown variant {name!r}; known: {VARIANTS}")

    def half(src: Source, side: str) -> Source:
        return dataclasses.replace(src, articles=side, **SPLIT)

    stages = [Stage("external", [s["tydi_en_dev"], half(s["hindi"], "train"), half(s["tamil"], "train")],
                    LENGTH, STRIDE),
              Stage("target", [half(s["hindi"], "test"), half(s["tamil"], "test")], LENGTH, STRIDE)]
    return Recipe(name, stages, dataclasses.replace(ablate.OFF, **SWITCHES[name]), sequential=True)


def hard_negative_source(base: str) -> dict:
    """What hardneg's weights come from, as the run config records it."""
    return {"scores": "zero-shot Jaccard of the base on each training question of the run (contexts as trained, "
                      "the fine-tune's windows); the base trained on these questions' English originals (SQuAD dev "
                      "articles 0-35), never on them",
            "base": base, "weights": "1 - jaccard + 0.05 (src.train.augment.hard_negative_weights)",
            "cache": f"hardneg/base-{base}.csv under the run root"}


def run_config(variant: str, seed: int) -> dict:
    """Everything a run depends on, JSON-able: what the log stores and `reproduce` reads back."""
    recipe = variant_recipe(variant)
    config = {"grid": "article", "variant": variant, "seed": seed, "recipe": recipe.to_dict(),
              "train": ablate.train_settings(variant, recipe, seed), "eval": list(EVAL_SETS),
              "base": explog.config_hash(ablate.base_config(BASE)), "base_config": dict(BASE),
              "data_dir": "../shared/data", "contexts": CONTEXTS}
    if variant in EQUAL_COMPUTE:
        config["equal_compute"] = {"windows_of": EQUAL_COMPUTE[variant], "grows": list(GROWN),
                                   "rule": "the smallest count of the first grown source (the others in their "
                                           "configured ratio to it) whose windows after sampling reach the matched "
                                           "variant's at the configured sizes"}
    if variant in HARD_NEGATIVES:
        config["hard_negatives"] = hard_negative_source(config["base"])
    if variant in PRESPLIT:
        config["train"]["presplit_punctuation"] = True
    return config


def run_id_of(config: dict) -> str:
    return f"article-{config['variant']}-s{config['seed']}-{explog.config_hash(config)[:6]}"


# ---------------------------------------------------------------- data
def load_data(data_dir: str | os.PathLike) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(training pools by source name, evaluation frames by set name). Hindi and Tamil pools: the chaii-like train
    split's questions (chaii ids, whole articles, `source_id` = the XQuAD id); TyDi-en dev as paragraphs. Raises a
    ValueError listing every leak if an evaluated question, title, context or paragraph is in a pool."""
    from research.experiments import chaii_like, evalsets
    d = Path(data_dir)
    train = chaii_like.split(*chaii_like.load(d))["train"]
    pools = {"tydi_en_dev": evalsets.train_sources(d)["tydi_en_dev"],
             "hindi": train[train["language"] == "hindi"].reset_index(drop=True),
             "tamil": train[train["language"] == "tamil"].reset_index(drop=True)}
    every = {**evalsets.eval_sets(d), **evalsets.eval_sets(d, shape="article")}
    evals = {n: every[n] for n in EVAL_SETS}
    problems = leaks(pools, evals)
    if problems:
        raise ValueError(f"{d}: the training pools hold evaluated questions:\n" + "\n".join(problems))
    return pools, evals


def leaks(pools: dict[str, pd.DataFrame], evals: dict[str, pd.DataFrame]) -> list[str]:
    """`evalsets.leaks` of the evaluation sets against the pools, chaii ids compared as the XQuAD ids they stand
    for (evaluation frames keep XQuAD's)."""
    from research.experiments import evalsets
    as_xquad = {k: v.assign(id=v["source_id"]) if "source_id" in v else v for k, v in pools.items()}
    return evalsets.leaks(evals, as_xquad)


# ---------------------------------------------------------------- equal compute
def equal_compute_recipe(config: dict, recipe: Recipe, pools: dict[str, pd.DataFrame], tokenizer
                         ) -> tuple[Recipe, dict]:
    """The run's recipe grown to equal compute (`config["equal_compute"]`), and what the row logs about it."""
    rule = config["equal_compute"]
    match = with_sizes(variant_recipe(rule["windows_of"]), recipe_sizes(recipe))
    grid = (LENGTH, STRIDE)
    counts = question_windows(list(pools.values()), tokenizer, grid)
    target = recipe_windows(match, ablate.frames_for(match, pools), counts, grid)
    sizes, windows = equal_compute_sizes(recipe, target, pools, counts, tuple(rule["grows"]), grid)
    return with_sizes(recipe, sizes), {"windows_of": rule["windows_of"], "target_windows": target,
                                       "windows": windows, "sizes": sizes}


# ---------------------------------------------------------------- hard negatives
def base_scores(config: dict, frames: dict[tuple, pd.DataFrame], model_dir: Path, tokenizer, run_root: Path
                ) -> tuple[pd.DataFrame, dict]:
    """(id, jaccard) of the base, zero-shot, on every training question of `frames`, and what the row logs: read
    from the cache under `run_root` (`config["hard_negatives"]`), the questions it lacks scored and added."""
    from src.common.io import write_csv
    path = Path(run_root) / "hardneg" / f"base-{config['hard_negatives']['base']}.csv"
    questions = pd.concat(frames.values(), ignore_index=True).drop_duplicates("id").reset_index(drop=True)
    have = (pd.read_csv(path, dtype={"id": str}, keep_default_na=False) if path.exists()
            else pd.DataFrame({"id": pd.Series(dtype=str), "jaccard": pd.Series(dtype=float)}))
    todo = questions[~questions["id"].isin(set(have["id"]))].reset_index(drop=True)
    if len(todo):
        from transformers import AutoModelForQuestionAnswering

        from src.infer.precision import use_bf16
        from src.train.fold import TrainConfig, score_model
        print(f"hardneg: scoring the base zero-shot on {len(todo)} training questions -> {path}", flush=True)
        cfg = TrainConfig(**config["train"], model_path=str(model_dir), output_dir=str(path.parent),
                          experiment_log="")
        model = AutoModelForQuestionAnswering.from_pretrained(model_dir)
        _, oof, _ = score_model(model, tokenizer, todo, cfg, bf16=use_bf16(cfg))
        have = pd.concat([have, oof[["id", "jaccard"]]], ignore_index=True)
        write_csv(have, path)
    scores = have[have["id"].isin(set(questions["id"]))]
    return scores, {"file": str(path), "questions": len(scores), "scored_now": len(todo),
                    "mean_jaccard": round(float(scores["jaccard"].mean()), 4)}


# ---------------------------------------------------------------- one run
def execute(config: dict, out_dir: Path, data_dir: Path, commit: str | None = None) -> dict:
    """Train and evaluate one configuration; returns its log row (without writing it)."""
    from transformers import AutoTokenizer

    from src.train.augment import hard_negative_weights

    pools, evals = load_data(data_dir)
    model_dir = ablate.base_model(config.get("base_config"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    t0 = time.time()
    recipe = Recipe.from_dict(config["recipe"])
    data: dict = {}
    if "equal_compute" in config:
        recipe, data["equal_compute"] = equal_compute_recipe(config, recipe, pools, tokenizer)
    frames = ablate.frames_for(recipe, pools)
    hard = None
    if "hard_negatives" in config:
        scores, data["hard_negatives"] = base_scores(config, frames, model_dir, tokenizer, Path(out_dir).parent)
        hard = hard_negative_weights(scores)
    m = ablate.fine_tune(config, recipe, frames, evals, model_dir, tokenizer, Path(out_dir), hard=hard,
                         held_out=HELD_OUT)
    data.update(train=ablate.questions_fed(recipe, frames), train_windows=m["n_train_windows"],
                eval={n: len(evals[n]) for n in config["eval"]})
    return ablate.log_row(config, m, data, run_id_of(config), KIND, t0, Path(out_dir), commit)
