"""The winner's own recipe, as his notebooks wrote it, against plain at the stand-in's scale (`make ablate-winner`).

His 68-type recipe (kldarek/chaii XLMR_pretraining68 cells 12 and 14; `configs/winner_68.yaml`) fine-tuned from the
QA base on the whole-article grid's data (`research.experiments.ablate_long`: e5-small-qa, chaii-like Hindi + Tamil
questions each beside its whole article, scored on the held-out articles whole and as paragraphs), with the sources
there are here in place of his:

    pass 1  the long external source: SQuAD v1.1 dev articles 0-35 (XQuAD's title order, the English originals of
            the chaii-like training articles), each question beside its whole article (~40 paragraphs), keeping
            each no-answer window with probability 0.1 (his TyDi and NQ are whole documents thinned so); TyDi
            GoldP en/bn/te dev paragraphs at 0.1 (his TyDi rule); the chaii-like questions at 0.1
    pass 2  TyDi GoldP en/bn/te again (a new draw at 0.1), the chaii-like questions at 0.2
    tail    the chaii-like questions alone, every window
    one run, one optimizer, one linear schedule (the grid's fine-tune settings `ablate.TRAIN`, as for every other
    variant: only how the data is fed changes)

Stand-in choices: his SQuAD (v1.1 train paragraphs, every window) and NQ have no place here (no NQ; SQuAD dev is the
long source); his Hindi MLQA/XQuAD pass is the chaii-like data itself. The tail is shuffled (as his 77-79's): the
chaii-like pools are one per language, so an unshuffled tail would feed every Hindi question and then every Tamil
one, an order his chaii file does not have. TyDi bn/te dev train here, so the grid scores the XQuAD sets only (the
paragraph grid's TyDi te/bn sets would leak); `load_data` refuses a pool that holds an evaluated question.

Variants (every recipe variant is his 68-type with one thing changed):
    plain            the whole-article grid's plain: TyDi-en dev + Hindi + Tamil, one shuffled pool, every window
                     once (equal data: the same chaii-like questions). Its runs are that grid's (`SHARED_RUNS`):
                     the same training, logged once as kind "ablate-article"; its TyDi te/bn scores are not shown
    plain-eqc        plain fed twice (every source repeated): about as many windows as winner (equal compute)
    winner           his 68-type recipe, as above
    winner-no-tail   passes 1 and 2 only
    winner-no-negsamp  every no-answer window kept in every pass (no negative sampling at all)
    winner-thin-tail the tail thinned too, at 0.3 (his XLMR_pretraining119 cell 19)
    winner-119       his 119: pass 1 at 256 tokens, pass 2 and the tail at 384 (stride scaled from the grid's
                     96: 144), his cutout 0.1 (every non-special token, redrawn each batch; cell 20) and the
                     tail at 0.3
    winner-raw       winner started from the raw pretrained e5-small, as he started from raw xlm-roberta-large,
                     not from the QA base (his base had no QA training)

Sizes: SIZES questions of each pool, a seeded sample (SQuAD's limited so that one winner run stays <= 35 min of
training at ~3 windows/s, bf16 on 2 cores, machine A of docs/experiments.md). Windows each variant trains (seed 0,
e5-small's tokenizer, 256/96; counted by `python -m research.experiments.ablate_winner count`, tokenizing only):

    variant            windows  per stage                                  min at 3.0 windows/s
    plain                2,962  one pool                                   16.5
    plain-eqc            5,924  one pool, fed twice                        32.9
    winner               6,069  pass1 1,876 + pass2 1,345 + tail 2,848     33.7
    winner-no-tail       3,221  pass1 1,876 + pass2 1,345                  17.9
    winner-no-negsamp   15,823  pass1 9,750 + pass2 3,225 + tail 2,848     87.9
    winner-thin-tail     4,456  pass1 1,876 + pass2 1,345 + tail 1,235     24.8
    winner-119           3,791  pass1 1,876 + pass2 1,051 + tail 864       21.1 (pass 2 and the tail are 384-token
                                                                            windows: longer each than 3.0/s says)
    winner-raw           6,069  as winner                                  33.7

(2026-12-07; token counts, the same on any machine.) winner's pass 1: SQuAD articles 793 windows (164 with the
answer; 100 questions of the 36 articles, ~43 paragraphs each), TyDi en/bn/te 104 + 107 + 102 (GoldP paragraphs have
almost no windows without the answer, so 0.1 thins them little), Hindi 445 + Tamil 325 of the chaii-like 2,848;
pass 2: TyDi 317, Hindi 601 + Tamil 427; the tail every chaii-like window. The chaii-like questions are read three
times (4,620 windows, 1.6x plain's 2,848), as his are. SQuAD is limited to 100 questions so that winner stays under
35 min (120 gave 6,251 windows, 34.7 min) and within 2.5 % of plain-eqc's windows. winner-no-negsamp keeps every
SQuAD article window (~64 a question), near 3x winner's minutes (the table's train time): the costly row of the grid.
Measured: winner trained 25.6-26.3 min a seed (~3.9 windows/s, machine A's kind, 2026-12-07), so the column above
is an upper bound.

Seeds and verdicts as the other grids (`ablate.run_grid`, `ablate.report`): plain and winner 3 seeds, any other
variant whose first seed differs from plain by more than plain's seed sd 2 more; beyond the noise = more than twice
the combined seed sd; the table ends with the sentence naming which variant beats plain beyond the noise, or none.
Rows log as kind "ablate-winner", run ids "winner-<variant>-s<seed>-<hash>".

    python -m research.experiments.ablate run --shape winner --variants plain,winner     # runs, then the table
    python -m research.experiments.ablate report --shape winner                          # the table from the log
    make ablate-winner
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import pandas as pd

from research.experiments import ablate, ablate_long
from src.common.paths import CACHE_DIR, SHARED_DIR
from src.train import explog
from src.train.recipe import Recipe, Source, Stage

KIND = "ablate-winner"
OUT_ROOT = CACHE_DIR / "ablation-winner"           # a run's folder: OUT_ROOT / run_id
TABLE_SETS = ("xquad_hi", "xquad_in_ta")
EVAL_SETS = ("xquad_hi_article", "xquad_in_ta_article", "xquad_hi", "xquad_in_ta")
HELD_OUT = ("xquad_hi_article", "xquad_hi")        # window logits kept for blending seeds
CAPTION = ("The winner's recipe grid (`research.experiments.ablate_winner`): his 68-type recipe (two passes with "
           "negatives thinned per source, then the chaii-like questions alone with every negative) on the "
           "whole-article data, against plain; \"(article)\" columns score the held-out articles whole. Train "
           "windows and minutes per run.")
# questions, a seeded sample of each pool (`--size KEY=N`); SQuAD's sized in the docstring
SIZES = dict(ablate_long.SIZES, tydi_bn_dev=100, tydi_te_dev=100, squad_articles=100)
BASE = dict(ablate_long.BASE)                       # the whole-article grid's base (the grouped base)
LENGTH, STRIDE = ablate.LENGTH, ablate.STRIDE
LONG_LENGTH = 384                                   # winner-119's pass 2 and tail, its stride scaled with it
CONTEXTS = (ablate_long.CONTEXTS + "; squad_articles: SQuAD v1.1 dev articles 0-35, each question beside its whole "
            "article; tydi_bn_dev, tydi_te_dev: paragraphs")
TYDI = ("tydi_en_dev", "tydi_bn_dev", "tydi_te_dev")
TARGET = ("hindi", "tamil")
# his keep probabilities (XLMR_pretraining68 cell 12): TyDi 0.1 both passes, chaii 0.1 then 0.2, the tail every window
KEEP = {"pass1": {"tydi": 0.1, "squad_articles": 0.1, "target": 0.1}, "pass2": {"tydi": 0.1, "target": 0.2},
        "tail": {"target": None}}
THIN_TAIL = 0.3                                     # his 119's tail (XLMR_pretraining119 cell 19)
TOKEN_CUTOUT = 0.1                                  # his 119's cutout (XLMR_pretraining119 cell 20)
VARIANTS = ["plain", "plain-eqc", "winner", "winner-no-tail", "winner-no-negsamp", "winner-thin-tail",
            "winner-119", "winner-raw"]
SEEDS = {"plain": (0, 1, 2), "winner": (0, 1, 2)}
FOLLOW_UP_SEEDS = ablate.FOLLOW_UP_SEEDS
RAW = ("winner-raw",)                               # variants that start from the raw pretrained e5-small
# plain is the whole-article grid's plain: the same questions, base, settings and seeds, so its logged runs are
# this grid's (scored there on these sets and TyDi te/bn as well), not trained a second time
SHARED_RUNS = {"plain": ablate_long}


def train_sources(sizes: dict | None = None) -> dict[str, Source]:
    """Every pool as a recipe source (`load_data` gives their frames, by these names), `sizes[name]` questions each
    (default `SIZES`)."""
    n = SIZES if sizes is None else sizes
    out = ablate_long.train_sources(n)
    out.update({name: Source(name, "tydi", f"tydiqa_goldp/{lang}_tydiqa_dev.json", limit=n[name])
                for name, lang in (("tydi_bn_dev", "bengali"), ("tydi_te_dev", "telugu"))})
    out["squad_articles"] = Source("squad_articles", "squad", "squad/dev-v1.1.json", limit=n["squad_articles"])
    return out


def his_recipe(name: str, keep: dict | None = None, tail: bool = True, lengths: tuple[int, int] | None = None,
               token_cutout: float = 0.0, sizes: dict | None = None) -> Recipe:
    """His 68-type passes over this grid's pools: `keep` (default `KEEP`) per pass and role; `tail` False drops the
    tail; `lengths` (pass 1's, the later stages') windows each stage at its own length (his 116/119 per-pass
    lengths), the stride scaled from the grid's."""
    s, keep = train_sources(sizes), keep or KEEP
    first, later = lengths or (LENGTH, LENGTH)

    def stage(pass_name: str, roles: dict[str, tuple[str, ...]], length: int) -> Stage:
        sources = [dataclasses.replace(s[n], negative_keep=keep[pass_name][role])
                   for role, names in roles.items() for n in names]
        return Stage(pass_name, sources, length, max(8, round(STRIDE * length / LENGTH)))
    stages = [stage("pass1", {"squad_articles": ("squad_articles",), "tydi": TYDI, "target": TARGET}, first),
              stage("pass2", {"tydi": TYDI, "target": TARGET}, later)]
    if tail:
        stages.append(stage("tail", {"target": TARGET}, later))
    return Recipe(name, stages, dataclasses.replace(ablate.OFF, token_cutout=token_cutout), sequential=True)


def variant_recipe(name: str, sizes: dict | None = None) -> Recipe:
    """Each variant's recipe (see the module docstring)."""
    if name in ("plain", "plain-eqc"):
        plain = ablate_long.variant_recipe("plain", {k: v for k, v in (sizes or SIZES).items()
                                                     if k in ablate_long.SIZES})
        if name == "plain":
            return plain
        return dataclasses.replace(plain, name=name, stages=[dataclasses.replace(
            st, sources=[dataclasses.replace(src, repeats=2) for src in st.sources]) for st in plain.stages])
    no_keep = {p: dict.fromkeys(roles, None) for p, roles in KEEP.items()}
    thin = {**KEEP, "tail": {"target": THIN_TAIL}}
    recipes = {"winner": dict(), "winner-raw": dict(), "winner-no-tail": dict(tail=False),
               "winner-no-negsamp": dict(keep=no_keep), "winner-thin-tail": dict(keep=thin),
               "winner-119": dict(keep=thin, lengths=(LENGTH, LONG_LENGTH), token_cutout=TOKEN_CUTOUT)}
    if name not in recipes:
        raise ValueError(f"unknown variant {name!r}; known: {VARIANTS}")
    return his_recipe(name, sizes=sizes, **recipes[name])


def run_config(variant: str, seed: int) -> dict:
    """Everything a run depends on, JSON-able: what the log stores and `reproduce` reads back."""
    recipe = variant_recipe(variant)
    return {"grid": "winner", "variant": variant, "seed": seed, "recipe": recipe.to_dict(),
            "train": ablate.train_settings(variant, recipe, seed), "eval": list(EVAL_SETS),
            "base": explog.config_hash(ablate.base_config(BASE)), "base_config": dict(BASE),
            "start": "raw e5-small" if variant in RAW else "base",
            "data_dir": "../shared/data", "contexts": CONTEXTS}


def run_id_of(config: dict) -> str:
    return f"winner-{config['variant']}-s{config['seed']}-{explog.config_hash(config)[:6]}"


# ---------------------------------------------------------------- data
def load_data(data_dir: str | os.PathLike) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(training pools by source name, evaluation frames by set name): the whole-article grid's pools and sets
    (`ablate_long.load_data`), with SQuAD v1.1 dev articles 0-35 each question beside its whole article and TyDi
    bn/te dev as paragraphs. Raises a ValueError listing every leak if an evaluated question, title, context or
    paragraph is in a pool."""
    from research.experiments import evalsets
    from src.data.external import load_tydi_json
    d = Path(data_dir)
    pools, evals = ablate_long.load_data(d)
    pools["squad_articles"] = evalsets.whole_articles(evalsets.train_sources(d)["squad_dev"])
    for name, lang in (("tydi_bn_dev", "bengali"), ("tydi_te_dev", "telugu")):
        pools[name] = load_tydi_json(d / "tydiqa_goldp" / f"{lang}_tydiqa_dev.json")
    evals = {n: evals[n] for n in EVAL_SETS}
    problems = ablate_long.leaks(pools, evals)
    if problems:
        raise ValueError(f"{d}: the training pools hold evaluated questions:\n" + "\n".join(problems))
    return pools, evals


def start_model(config: dict) -> Path:
    """The model a run fine-tunes: the QA base, or the raw pretrained e5-small (`config["start"]`)."""
    if config.get("start", "base") == "base":
        return ablate.base_model(config.get("base_config"))
    from src.train.stand_ins import ensure_e5_small
    return ensure_e5_small()


# ---------------------------------------------------------------- one run
def execute(config: dict, out_dir: Path, data_dir: Path, commit: str | None = None) -> dict:
    """Train and evaluate one configuration; returns its log row (without writing it)."""
    from transformers import AutoTokenizer

    pools, evals = load_data(data_dir)
    model_dir = start_model(config)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    t0 = time.time()
    recipe = Recipe.from_dict(config["recipe"])
    frames = ablate.frames_for(recipe, pools)
    m = ablate.fine_tune(config, recipe, frames, evals, model_dir, tokenizer, Path(out_dir), held_out=HELD_OUT)
    data = {"train": ablate.questions_fed(recipe, frames), "train_windows": m["n_train_windows"],
            "eval": {n: len(evals[n]) for n in config["eval"]}}
    row = ablate.log_row(config, m, data, run_id_of(config), KIND, t0, Path(out_dir), commit)
    if config.get("start", "base") != "base":
        row["backbone"] = config["start"]
    return row


# ---------------------------------------------------------------- sizing, without training
def window_counts(data_dir: str | os.PathLike = SHARED_DIR / "data", seed: int = 0,
                  variants: list[str] | None = None) -> pd.DataFrame:
    """Per variant: the windows `build_dataset` feeds it at `seed` (the keep draws are random: another seed keeps
    a few more or fewer), per stage and in all, and the minutes that is at 3.0 windows/s. Tokenizing only."""
    from transformers import AutoTokenizer

    from src.train.stand_ins import ensure_e5_small
    from src.train.windows import build_dataset

    pools, _ = load_data(data_dir)
    tokenizer = AutoTokenizer.from_pretrained(ensure_e5_small())
    rows = []
    for v in variants or VARIANTS:
        recipe = variant_recipe(v)
        ds = build_dataset(recipe, ablate.frames_for(recipe, pools), tokenizer, seed=seed)
        stages = ds.to_pandas()["stage"].value_counts().sort_index()
        rows.append({"variant": v, "windows": len(ds),
                     "per stage": " + ".join(f"{recipe.stages[k].name} {n:,}" for k, n in stages.items()),
                     "min at 3.0/s": round(len(ds) / 3.0 / 60, 1)})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Count the windows each variant of the winner grid trains (no "
                                             "training; `python -m research.experiments.ablate --shape winner` "
                                             "runs and reports the grid)")
    ap.add_argument("command", choices=["count"])
    ap.add_argument("--data-dir", type=Path, default=SHARED_DIR / "data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="")
    a = ap.parse_args(argv)
    variants = [v for v in a.variants.split(",") if v] or None
    print(window_counts(a.data_dir, a.seed, variants).to_string(index=False))


if __name__ == "__main__":
    main()
