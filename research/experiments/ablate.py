"""Ablation of the data recipe and each augmentation, fine-tuning the QA-competent base (`make ablate`).

Every variant fine-tunes the same base (`research.experiments.base_qa`, e5-small already trained on English QA) on the
same questions with the same optimizer and schedule; only how the data is fed changes. Evaluation: every leak-free set
of `research.experiments.evalsets` (XQuAD-hi, XQuAD-IN hi and ta on the held-out articles, TyDi te and bn dev), Jaccard
with a 95% bootstrap interval. plain runs with three seeds; a variant whose first seed differs from plain by more than
plain's seed spread gets two more. Runs already in the committed log (docs/experiments.jsonl) are never re-run, on any
machine: on a fresh clone with a complete log `make ablate` only prints the table
(`research.experiments.ablation_table`: the table, the verdicts and the plot). Each kind of machine (CPU model,
native bf16) builds its own base, so on a kind other than the grid's first run's a run is added only once plain's
runs are repeated there (`reproduce`), and the table shifts it by plain's offset between the kinds.

    python -m research.experiments.ablate run --variants plain,cutout  # run what is missing, then the table and plot
    python -m research.experiments.ablate report                       # table + plot from the log only
    python -m research.experiments.ablate reproduce RUN_ID             # re-run a logged run from its row, log a repeat
    python -m research.experiments.ablate rescore RUN_ID               # re-score a logged run's model, update its row
    # another setting:
    python -m research.experiments.ablate run --variants plain --seeds 0,1,2 --train group_by_length=true

`--size`, `--train` and `--base` change what a run depends on, so their runs get their own ids and their own table
(`report` with the same flags); the grid's logged runs keep theirs.

`--shape article` runs and reports the second grid, every question beside its whole article
(`research.experiments.ablate_long`, `make ablate-long`), with the same machinery: a grid is a module that names its
runs (`run_config`, `run_id_of`, `KIND`), trains one (`execute`) and lists its sets and variants; this module is the
paragraph grid. `--shape winner` is the third (`research.experiments.ablate_winner`, `make ablate-winner`): the
winner's own recipe, as his notebooks wrote it, against plain on whole articles.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from research.experiments import ablation_table, grid_flags
from src.common.paths import CACHE_DIR, SHARED_DIR
from src.data import presplit
from src.train import explog
from src.train.recipe import Augment, Recipe, Source, Stage
from src.train.windows import build_dataset

CACHE = CACHE_DIR
OUT_ROOT = CACHE / "ablation-base"   # a run's folder: OUT_ROOT / run_id
EVAL_SETS = ("xquad_hi", "xquad_in_hi", "xquad_in_ta", "tydi_te", "tydi_bn")
# the grid's description for the shared machinery (`research.experiments.ablate_long` is the other grid)
KIND = "ablate"              # the log rows' kind
TABLE_SETS = EVAL_SETS       # the sets the table shows (each in every shape it was scored in)
HELD_OUT = ("xquad_hi",)     # sets whose window logits a run keeps for blending seeds
CAPTION = ""                 # a line above the table

# Sizing (<= 15 min a run on 2 CPU cores, bf16 at ~3.0 training windows/s at 256 tokens): 600 of the 925 XQuAD-hi
# training-article questions (~900 windows of 256 a pass, fed twice) + 200 TyDi-en dev questions (~230 windows;
# English replay in stage 1; the base never saw them) = ~2,030 windows, ~11.3 min; scoring 1,412 evaluation
# questions (1,907 windows) in bf16 takes ~1.5 min more. resize grows the second stage to 384 tokens.
SIZES = dict(tydi_en_dev=200, xquad_hi_train=600)
BASE: dict = {}   # BaseQAConfig fields that differ from the default base (`--base KEY=VALUE`): new run ids
LENGTH, STRIDE = 256, 96
TRAIN = dict(backbone="e5-small-qa", learning_rate=5e-5, epochs=1, batch_size=16, grad_accum=1, max_length=LENGTH,
             doc_stride=STRIDE, warmup_ratio=0.1, freeze_word_embeddings=True, save_steps=40, logging_steps=10,
             eval_batch_size=64, bf16=True)


def train_sources() -> dict[str, Source]:
    """The training side, named as in `research.experiments.evalsets.train_sources` (no evaluated article in any of
    them)."""
    return {"tydi_en_dev": Source("tydi_en_dev", "tydi", "tydiqa_goldp/english_tydiqa_dev.json",
                                  limit=SIZES["tydi_en_dev"]),
            "xquad_hi": Source("xquad_hi_train", "xquad", "xquad/xquad.hi.json", language="hindi",
                               limit=SIZES["xquad_hi_train"])}


OFF = Augment(random_crop=False, progressive=False, lengths=(LENGTH, 384), cutout=0.0, negative_fraction=1.0,
              soft_label_radius=0)
SWITCHES = {"recipe": {}, "crop": dict(random_crop=True), "resize": dict(progressive=True),
            "cutout": dict(cutout=0.1), "negsamp": dict(negative_fraction=0.3), "soft": dict(soft_label_radius=3)}
SWITCHES["all"] = {k: v for d in SWITCHES.values() for k, v in d.items()}
SWITCHES["all-but-soft"] = {k: v for k, v in SWITCHES["all"].items() if k != "soft_label_radius"}
VARIANTS = ["plain", *SWITCHES]
SEEDS = {"plain": (0, 1, 2)}
FOLLOW_UP_SEEDS = (1, 2)


def variant_recipe(name: str) -> Recipe:
    """plain: one shuffled pool. Every other variant: the two-stage recipe (English replay + Hindi, then Hindi
    again), fed in order, with its augmentations on."""
    s = train_sources()
    if name == "plain":
        pool = [s["tydi_en_dev"], dataclasses.replace(s["xquad_hi"], repeats=2)]
        return Recipe("plain", [Stage("all", pool, LENGTH, STRIDE)], OFF, sequential=False)
    if name not in SWITCHES:
        raise ValueError(f"unknown variant {name!r}; known: {VARIANTS}")
    stages = [Stage("external", [s["tydi_en_dev"], s["xquad_hi"]], LENGTH, STRIDE),
              Stage("target", [s["xquad_hi"]], LENGTH, STRIDE)]
    return Recipe(name, stages, dataclasses.replace(OFF, **SWITCHES[name]), sequential=True)


def base_config(fields: dict | None = None) -> dict:
    """The base's config as hashed: `fields` (default `BASE`) over the default BaseQAConfig."""
    from research.experiments.base_qa import BaseQAConfig
    return BaseQAConfig(**(BASE if fields is None else fields)).to_dict()


def train_settings(variant: str, recipe: Recipe, seed: int) -> dict:
    """A run's fine-tune settings (TrainConfig fields): `TRAIN`, the seed and the recipe's soft-label radius."""
    if TRAIN.get("group_by_length") and recipe.sequential:
        raise ValueError(f"variant {variant!r} feeds its stages in order: group_by_length would reorder them; "
                         "only plain (one shuffled pool) can group by length")
    return dict(TRAIN, seed=seed, soft_label_radius=recipe.augment.soft_label_radius)


def run_config(variant: str, seed: int) -> dict:
    """Everything a run depends on, JSON-able: what the log stores and `reproduce` reads back."""
    recipe = variant_recipe(variant)
    config = {"variant": variant, "seed": seed, "recipe": recipe.to_dict(),
              "train": train_settings(variant, recipe, seed),
              "eval": list(EVAL_SETS), "base": explog.config_hash(base_config()), "data_dir": "../shared/data"}
    if BASE:  # only then, so the runs on the default base keep their logged ids
        config["base_config"] = dict(BASE)
    return config


def run_id_of(config: dict) -> str:
    return f"{config['variant']}-s{config['seed']}-{explog.config_hash(config)[:6]}"


def load_data(data_dir: Path) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(training frames by source name, evaluation frames by set name) from `research.experiments.evalsets`."""
    from research.experiments import evalsets
    trains = evalsets.train_sources(data_dir)
    return trains, evalsets.eval_sets(data_dir)


def base_model(overrides: dict | None = None) -> Path:
    """The base's model directory, built (about an hour) only when a run needs it."""
    from research.experiments import base_qa
    return Path(base_qa.build(base_qa.BaseQAConfig(**(overrides or {})))["model_dir"])


def frames_for(recipe: Recipe, trains: dict[str, pd.DataFrame]) -> dict[tuple, pd.DataFrame]:
    """Each recipe source's frame: its named training frame, a seeded sample of `limit` questions; a source with
    `articles` "train" or "test" keeps one side of that sample's `split_by_title(test_fraction, split_seed)` (whole
    articles on each side)."""
    from src.data.external import split_by_title
    out = {}
    for stage in recipe.stages:
        for src in stage.sources:
            df = trains[src.name]
            if src.limit is not None and src.limit < len(df):
                df = df.sample(src.limit, random_state=0).sort_index()
            if src.articles != "all":
                train, test = split_by_title(df, src.test_fraction, src.split_seed)
                df = {"train": train, "test": test}[src.articles]
            out[src.data_key()] = df.reset_index(drop=True)
    return out


def questions_fed(recipe: Recipe, frames: dict[tuple, pd.DataFrame]) -> dict[str, int]:
    """Questions per source name, each distinct frame of a name counted once (a source in two stages is one set of
    questions; the two halves of a split source add up)."""
    keys = {(src.name, src.data_key()) for st in recipe.stages for src in st.sources}
    out: dict[str, int] = {}
    for name, key in sorted(keys, key=str):
        out[name] = out.get(name, 0) + len(frames[key])
    return out


def execute(config: dict, out_dir: Path, data_dir: Path, commit: str | None = None) -> dict:
    """Train and evaluate one configuration; returns its log row (without writing it)."""
    from transformers import AutoTokenizer

    recipe = Recipe.from_dict(config["recipe"])
    trains, evals = load_data(data_dir)
    model_dir = base_model(config.get("base_config"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    t0 = time.time()
    frames = frames_for(recipe, trains)
    m = fine_tune(config, recipe, frames, evals, model_dir, tokenizer, out_dir)
    data = {"train": questions_fed(recipe, frames), "train_windows": m["n_train_windows"],
            "eval": {n: len(evals[n]) for n in config["eval"]}}
    return log_row(config, m, data, run_id_of(config), KIND, t0, out_dir, commit)


def fine_tune(config: dict, recipe: Recipe, frames: dict[tuple, pd.DataFrame], evals: dict[str, pd.DataFrame],
              model_dir: Path, tokenizer, out_dir: Path, hard: dict[str, float] | None = None,
              held_out: tuple[str, ...] = HELD_OUT) -> dict:
    """Fine-tune the base on `recipe`'s windows of `frames` (negatives weighted by `hard`, if given), score the
    configuration's evaluation sets in one pass, keep the `held_out` sets' window logits; `train_fold`'s metrics."""
    from research.experiments.evalsets import combined
    from src.train.augment import QACollator
    from src.train.fold import TrainConfig, train_fold

    cfg = TrainConfig(**config["train"], model_path=str(model_dir), output_dir=str(out_dir), experiment_log="")
    tokenizer = presplit.configure(tokenizer, cfg.presplit_punctuation, training=True)
    dataset = build_dataset(recipe, frames, tokenizer, seed=config["seed"], hard=hard)
    valid = combined({n: evals[n] for n in config["eval"]})
    collator = QACollator(tokenizer, cutout=recipe.augment.cutout, seed=config["seed"],
                          keep_context_bounds=cfg.soft_label_radius > 0, token_cutout=recipe.augment.token_cutout)
    result = train_fold(valid, cfg, valid_df=valid, train_dataset=dataset, sequential=recipe.sequential,
                        data_collator=collator, resume=True)
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)  # only needed to resume an interrupted run
    for name in held_out:
        if name in config["eval"]:
            save_held_out(out_dir, valid[valid["eval_set"] == name], name)
    return result.metrics


def log_row(config: dict, m: dict, data: dict, run_id: str, kind: str, t0: float, out_dir: Path,
            commit: str | None = None) -> dict:
    """A run's log row from `fine_tune`'s metrics `m` and its `data` (sizes), timed from `t0`."""
    return explog.run_row(config, row_metrics(m, config["eval"]), data, run_id=run_id, kind=kind,
                          variant=config["variant"], git_commit=commit or explog.git_commit(),
                          backbone=f"e5-small-qa (base {config['base']})",
                          train_seconds=m["train_seconds"], total_seconds=round(time.time() - t0, 1),
                          n_train_windows=m["n_train_windows"], n_valid=m["n_valid"], out_dir=str(out_dir),
                          # what ran, not what was asked: `bf16=True` falls back to fp32 on a CPU without it
                          precision="bf16" if m["bf16"] else "fp32")


def this_grid():
    """The paragraph grid: this module (looked up at call time, so a test's monkeypatch of it holds)."""
    return sys.modules[__name__]


def grid_of(shape: str):
    """The grid of a context shape: "paragraph" (this module) or "article" (`research.experiments.ablate_long`);
    "winner": the winner's own recipe against plain on whole articles (`research.experiments.ablate_winner`)."""
    grids = {"paragraph": __name__, "article": "research.experiments.ablate_long",
             "winner": "research.experiments.ablate_winner"}
    if shape not in grids:
        raise ValueError(f"shape must be one of {sorted(grids)}, got {shape!r}")
    return importlib.import_module(grids[shape])


def reproduce(run_id: str, log: Path, out_root: Path, data_dir: Path, grid=None) -> tuple[dict, dict]:
    """Train a logged run's configuration again (another machine, precision or library version) and log the
    repeat as its own row, `RUN_ID-rN` of kind "reproduce": the table keeps the original, the report lists
    both. Returns (the logged row, the repeat's row)."""
    g = grid or this_grid()
    rows = explog.read_log(log)
    row = next((r for r in rows if r["run_id"] == run_id and r.get("kind") == g.KIND), None)
    if row is None:
        raise SystemExit(f"run {run_id!r} is not an ablation run in {log} (no row of kind {g.KIND!r})")
    rid = f"{run_id}-r{1 + sum(r.get('reproduces') == run_id for r in rows)}"
    print(f"reproduce {run_id} as {rid} ...", flush=True)
    new = g.execute(row["config"], out_root / rid, data_dir)
    new.update(run_id=rid, kind="reproduce", reproduces=run_id)
    explog.append_run(log, new)
    return row, new


def row_metrics(m: dict, names) -> dict:
    """The log row's metrics per evaluation set: Jaccard, its interval, EM and F1."""
    out = {}
    for n in names:
        out.update({n: m[f"jaccard_{n}"], f"{n}_lo": m[f"jaccard_{n}_lo"], f"{n}_hi": m[f"jaccard_{n}_hi"],
                    f"{n}_em": m[f"em_{n}"], f"{n}_f1": m[f"f1_{n}"]})
    return out


def rescore(run_id: str, log: Path, out_root: Path, data_dir: Path, grid=None) -> dict:
    """Score a logged run's saved model again (after a fix to the evaluation, not to training) and rewrite its
    row's metrics; the run's oof files are rewritten too."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from research.experiments.evalsets import combined
    from src.common.io import write_csv
    from src.train.fold import TrainConfig, score_model
    from src.train.fold_outputs import update_metrics_json

    g = grid or this_grid()
    row = next((r for r in explog.read_log(log) if r["run_id"] == run_id), None)
    if row is None:
        raise SystemExit(f"run {run_id!r} not in {log}")
    out_dir = out_root / run_id
    model_dir = out_dir / "model"
    if not (model_dir / "config.json").exists():
        raise SystemExit(f"{model_dir} has no model: re-run it (`reproduce {run_id}`) instead")
    _, evals = g.load_data(data_dir)
    valid = combined({n: evals[n] for n in row["config"]["eval"]})
    cfg = TrainConfig(**row["config"]["train"], output_dir=str(out_dir), experiment_log="")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir)
    m, oof, logits = score_model(model, tokenizer, valid, cfg, bf16=cfg.bf16)
    update_metrics_json(out_dir, m)   # the run's own record (the bench picks models by it) takes them too
    write_csv(oof, out_dir / "oof.csv")
    logits.save(out_dir / "oof_logits.npz")
    for name in g.HELD_OUT:
        if name in row["config"]["eval"]:
            save_held_out(out_dir, valid[valid["eval_set"] == name], name)
    metrics = row_metrics(m, row["config"]["eval"])
    return explog.update_run(log, run_id, metrics=metrics, rescored_at=explog.git_commit())


def save_held_out(out_dir: Path, held: pd.DataFrame, name: str = "xquad_hi") -> None:
    """One evaluation set's windows' logits and examples alone (`<name>_logits.npz`, `<name>_examples.csv`; the
    held-out XQuAD-hi by default), for blending seeds (research/bench/run.py)."""
    from src.common.io import write_csv
    from src.infer.predict import WindowLogits

    WindowLogits.load(out_dir / "oof_logits.npz").of_examples(held["id"]).save(out_dir / f"{name}_logits.npz")
    cols = [c for c in ("id", "context", "question", "answer_text", "answer_start", "language", "title") if c in held]
    write_csv(held[cols], out_dir / f"{name}_examples.csv")


def ablation_rows(log: Path, grid=None) -> list[dict]:
    """The logged runs of the grid's current configuration (rows of other grids and other kinds stay out)."""
    g = grid or this_grid()
    shared = shared_runs(g)
    rows = [r for r in explog.read_log(log)
            if r.get("kind") == g.KIND and r.get("variant") not in shared and of_current_config(r, g)]
    for variant, other in shared.items():   # another grid's runs of the same training, scored on more sets
        rows += [r for r in ablation_rows(log, other) if r["variant"] == variant]
    return rows


def shared_runs(grid) -> dict:
    """variant -> the grid whose runs it is (`SHARED_RUNS`: the same training, logged once)."""
    return getattr(grid, "SHARED_RUNS", {})


def repeat_rows(log: Path, rows: list[dict]) -> list[dict]:
    """The logged repeats (`reproduce`) of `rows`' runs."""
    ids = {r["run_id"] for r in rows}
    return [r for r in explog.read_log(log) if r.get("kind") == "reproduce" and r.get("reproduces") in ids]


def score_keys(grid) -> list[str]:
    return [n for n, _, _ in ablation_table.score_columns(grid.TABLE_SETS)]


def needs_more_seeds(rows: list[dict], grid=None, repeats: list[dict] = ()) -> list[str]:
    """Variants with fewer than 3 seeds whose mean differs from plain's by more than plain's seed sd on any set
    (runs from another kind of machine shifted by its offset, given plain's `repeats` there)."""
    g = grid or this_grid()
    rows = ablation_table.on_first_machine(rows, list(repeats), score_keys(g))
    s = ablation_table.summary(rows, g.TABLE_SETS, g.VARIANTS)
    if "plain" not in set(s["variant"]):
        return []
    p = s[s["variant"] == "plain"].iloc[0]
    out = []
    for r in s.itertuples():
        if r.variant == "plain" or r.n_seeds >= 3:
            continue
        if any(abs(getattr(r, n) - p[n]) > (p[f"{n}_sd"] if p[f"{n}_sd"] == p[f"{n}_sd"] else 0)
               for n in g.EVAL_SETS):
            out.append(r.variant)
    return out


machine_kind = ablation_table.machine_kind


def this_machine_kind() -> tuple:
    return machine_kind({"machine": explog.machine()})


def run_grid(variants: list[str], log: Path, out_root: Path, data_dir: Path,
             seeds: tuple[int, ...] | None = None, follow_up: bool = True, grid=None,
             any_machine: bool = False) -> None:
    """Run what the log lacks: each variant with its seeds (`SEEDS`, or `seeds` for every variant); then, with
    `follow_up`, two more seeds for each variant that `needs_more_seeds`. `grid`: this module (the paragraph
    grid) by default, or `research.experiments.ablate_long`. On a kind of machine (`machine_kind`) other than the
    grid's first run's, a run is added only once plain's runs are repeated there (`reproduce`): the table then
    shifts it by that kind's measured offset (`ablation_table.on_first_machine`); elsewhere only with
    `any_machine` (its scores then enter their cells as logged)."""
    g = grid or this_grid()
    commit = explog.git_commit()
    logged = ablation_rows(log, g)
    ref = machine_kind(logged[0]) if logged and not any_machine else (None, None)
    offsets = ablation_table.machine_offsets(logged, repeat_rows(log, logged), score_keys(g)) if logged else {}

    @functools.cache
    def here() -> tuple:   # this machine's kind: probed (torch, oneDNN) only once a run is missing
        return this_machine_kind()

    def run(v: str, seed: int) -> None:
        gv = shared_runs(g).get(v, g)   # a shared variant runs (and logs) as its own grid's run
        config = gv.run_config(v, seed)
        rid = gv.run_id_of(config)
        if rid in explog.done_run_ids(log):
            print(f"skip {rid}: already in {log}", flush=True)
            return
        if ref[0] is not None and ref != here() and here() not in offsets:
            print(f"not run {rid}: the grid's runs trained on {ref[0]} (bf16 {ref[1]}), this machine is {here()[0]} "
                  f"(bf16 {here()[1]}) and plain's runs are not all repeated here to measure its offset "
                  f"(`python -m research.experiments.ablate reproduce RUN_ID` for each), or pass --any-machine to "
                  "mix them unshifted", flush=True)
            return
        print(f"run {rid} ...", flush=True)
        row = gv.execute(config, out_root / rid, data_dir, commit)
        explog.append_run(log, row)
        print(f"done {rid}: { {n: row['metrics'][n] for n in g.EVAL_SETS if n in row['metrics']} } "
              f"in {row['train_seconds']:.0f} s on {row['n_train_windows']} windows", flush=True)

    for v in variants:
        for seed in seeds or g.SEEDS.get(v, (0,)):
            run(v, seed)
    if follow_up and seeds is None:
        done = ablation_rows(log, g)
        more = set(needs_more_seeds(done, g, repeat_rows(log, done)))
        for v in variants:          # in the caller's order: the Makefile puts the whole scheme first
            if v in more:
                for seed in g.FOLLOW_UP_SEEDS:
                    run(v, seed)


def of_current_config(row: dict, grid=None) -> bool:
    """Whether a logged run is its variant and seed under the grid's current configuration (sizes, base, code
    settings)."""
    g = grid or this_grid()
    try:
        return row["run_id"] == g.run_id_of(g.run_config(row["variant"], row["seed"]))
    except (KeyError, ValueError):   # a variant this code no longer knows, or a row of another kind
        return False


def report(log: Path, table: Path | None, png: Path | None, grid=None) -> str:
    """Table, verdicts (and plot) of the logged runs of the grid's current configuration; with none logged yet, a
    sentence saying so (and no table or plot written)."""
    g = grid or this_grid()
    rows = ablation_rows(log, g)
    if not rows:
        return (f"nothing logged yet: no {g.KIND} run of the current configuration in {log} "
                f"(`run` trains them; {g.__name__})")
    repeats = repeat_rows(log, rows)
    shifted = ablation_table.on_first_machine(rows, repeats, score_keys(g))
    s = ablation_table.summary(shifted, g.TABLE_SETS, g.VARIANTS)
    text = (g.CAPTION + "\n\n" if g.CAPTION else "") + ablation_table.markdown_table(s, g.TABLE_SETS)
    note = ablation_table.offsets_note(rows, repeats, score_keys(g))
    if note:
        text += "\n" + note + "\n"
    verdicts = ablation_table.verdicts(s, g.EVAL_SETS)
    if verdicts:    # none where plain is the only variant
        text += "\n" + "\n".join(f"- {v}" for v in verdicts) + "\n"
    ahead = ablation_table.ahead_of_plain(s, g.EVAL_SETS)
    if ahead and len(s) > 1:
        text += "\n**" + ahead + "**\n"
    if repeats:
        text += "\n" + ablation_table.repeats_table(rows, repeats, g.EVAL_SETS)
    if table:
        from src.common.io import write_text
        write_text(text, table)
    if png:
        ablation_table.plot(s, g.EVAL_SETS, png)
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["run", "report", "reproduce", "rescore"])
    ap.add_argument("run_id", nargs="?")
    ap.add_argument("--shape", choices=["paragraph", "article", "winner"], default="paragraph",
                    help="the grid: each question beside its paragraph (this module's) or its whole article "
                         "(research.experiments.ablate_long); winner: the winner's own recipe against plain on "
                         "whole articles (research.experiments.ablate_winner)")
    ap.add_argument("--variants", default=None, help="comma-separated (default: every variant of the grid)")
    ap.add_argument("--seeds", default="", help="e.g. 0,1,2: run every selected variant with these seeds "
                                                "(default: plain 0,1,2, the others 0, then follow-up seeds)")
    ap.add_argument("--any-machine", action="store_true",
                    help="run: train missing runs even on a kind of machine other than the grid's first run's "
                         "where plain's runs are not repeated (its cells then mix two bases unshifted)")
    ap.add_argument("--log", type=Path, default=explog.REPO_LOG, help="the experiment log (default: the committed one)")
    ap.add_argument("--out-root", type=Path, default=None, help="the runs' folders (default: the grid's OUT_ROOT)")
    ap.add_argument("--data-dir", type=Path, default=SHARED_DIR / "data")
    ap.add_argument("--table", type=Path, default=None, help="also write the markdown table here")
    ap.add_argument("--plot", type=Path, default=None, help="also save the plot here")
    grid_flags.add_config_args(ap, SIZES)
    a = ap.parse_args(argv)
    g = grid_of(a.shape)
    # the paragraph grid's report is called as before (tests replace it with a three-argument stand-in)
    kw = {} if g is this_grid() else {"grid": g}
    out_root = a.out_root or g.OUT_ROOT
    grid_flags.apply_config_args(g, a, TRAIN)   # both grids fine-tune with TRAIN's settings
    if a.command == "rescore":
        row = rescore(a.run_id, a.log, out_root, a.data_dir, **kw)
        print(f"rescored {a.run_id}: { {n: row['metrics'][n] for n in g.EVAL_SETS if n in row['metrics']} }")
    if a.command == "reproduce":
        row, new = reproduce(a.run_id, a.log, out_root, a.data_dir, **kw)
        print(f"logged {row['metrics']}\nnow    {new['metrics']}")
        return
    if a.command == "run":
        variants = [v.strip() for v in (a.variants or ",".join(g.VARIANTS)).split(",") if v.strip()]
        unknown = set(variants) - set(g.VARIANTS)
        if unknown:
            raise SystemExit(f"unknown variant(s) {sorted(unknown)}; known: {g.VARIANTS}")
        seeds = grid_flags.parse_seeds(a.seeds)
        run_grid(variants, a.log, out_root, a.data_dir, seeds, any_machine=a.any_machine, **kw)
    print(report(a.log, a.table, a.plot, **kw))


if __name__ == "__main__":
    main()
