"""A QA-competent base (`make base-qa`): the full 12-layer e5-small fine-tuned on English extractive QA.

The CPU stand-in for the winner's `deepset/xlm-roberta-large-squad2`: TyDi-en train + SQuAD dev articles 0-35
(no evaluated article: `research.experiments.evalsets`), trained by `src.train.fold.train_fold`, then scored zero-shot
on every evaluation set (Jaccard with its 95% bootstrap interval, EM, F1). Cached outside the repo in
`CACHE_DIR/base-qa` (model/, base_qa.json with its config and scores); a finished build with the same config is
found and its scores printed, an interrupted one resumes from its last checkpoint. The registry names it
`e5-small-qa`.

Sizing (2 CPU cores): bf16 autocast trains e5-small at ~3.0 windows/s at 256 tokens (fp32 ~1.85), so
`max_windows` = 10,800 is 60 minutes of training in bf16, leaving ~15 minutes for tokenizing, checkpoints and
scoring 1,412 evaluation questions (97 minutes in fp32).

`squad_shape="article"` (`--squad-shape article`) lets the base meet long contexts: every SQuAD question sits beside
its whole article (`evalsets.whole_articles`: the paragraphs joined in file order, the answer moved), TyDi-en stays
paragraphs, and no evaluated title can enter (the articles are joined from the SQuAD frame left after dropping the
held-out titles, and `training_frames` refuses to return if `evalsets.leaks` finds anything). Its compute is the
paragraph build's: the article part keeps exactly the windows the same questions give as paragraphs
(`article_windows`). Measured with e5-small's tokenizer at 256/96 (2026-12-05; token counts, the same on any
machine): SQuAD dev articles 0-35 are 8,123 questions in 36 articles (1,545 paragraphs); as paragraphs 9,928 windows
(8,504 with the answer), as whole articles 525,934 (64.7 a question), 13,316 of them with the answer (1.64 a
question). Answer windows alone exceed the paragraph count, so each question keeps one of its answer windows (8,123)
and a seeded sample of 1,805 windows without the answer fills the 9,928: about as many negatives as the paragraph
build's 1,424, drawn from the other paragraphs of the same article. With TyDi-en's 4,242 windows that is the same
14,170 windows as the paragraph build. Cutting the 525,934 windows took 6.3 min (counted niced on 2 cores beside a
training run) and holds them all in Arrow once (~0.7 GB) before the sample.

    python -m research.experiments.base_qa            # build (or find) the base, print its zero-shot scores
    python -m research.experiments.base_qa --group-by-length --max-windows 0 --squad-shape article
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from research.experiments import evalsets
from src.common.paths import CACHE_DIR
from src.train import explog

BASE_DIR = CACHE_DIR / "base-qa"
RESULT = "base_qa.json"
SQUAD = "squad_dev"                  # the training source `squad_shape` acts on
SQUAD_SHAPES = evalsets.SHAPES       # "paragraph" | "article"


@dataclass
class BaseQAConfig:
    """The base's training run; defaults are the sized build above."""
    model_dir: str = ""                 # "" = the pretrained e5-small (built once into CACHE_DIR/e5-small)
    backbone: str = "e5-small"
    max_windows: int = 10_800           # a seeded sample of the training windows: 60 min at 3.0 windows/s; 0 = all
    max_length: int = 256
    doc_stride: int = 96
    learning_rate: float = 1e-4
    batch_size: int = 16
    warmup_ratio: float = 0.1
    freeze_word_embeddings: bool = True  # 250k-row vocabulary: Adam state and dense grads cost more than they give
    bf16: bool = True
    save_steps: int = 100               # ~9 minutes of training between checkpoints: what an interruption loses
    eval_steps: int = 0                 # > 0: also score the evaluation sets during training
    seed: int = 42
    group_by_length: bool = False       # batches of similar length (TrainConfig.group_by_length): 1.29x windows/s
    squad_shape: str = "paragraph"      # "article": each SQuAD question beside its whole article, equal compute

    def __post_init__(self):
        if self.squad_shape not in SQUAD_SHAPES:
            raise ValueError(f"BaseQAConfig.squad_shape must be one of {SQUAD_SHAPES}, got {self.squad_shape!r}")

    def to_dict(self) -> dict:
        """The config as logged and hashed. Fields added after the grid was logged appear only when set, so the
        logged base (and every ablation run on it) keeps its hash."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}


LATER_FIELDS = {"group_by_length": False, "squad_shape": "paragraph"}   # field -> what every earlier build had


def base_dir(cfg: BaseQAConfig) -> Path:
    """Where a base is cached: BASE_DIR for the default build, a folder per config hash for any other."""
    return BASE_DIR if cfg == BaseQAConfig() else BASE_DIR.with_name(f"base-qa-{explog.config_hash(cfg.to_dict())}")


def shaped(frames: dict[str, pd.DataFrame], squad_shape: str) -> dict[str, pd.DataFrame]:
    """The training frames as the base meets them: as they are, or ("article") the SQuAD source's questions each
    beside its whole article (`evalsets.whole_articles`), the other sources unchanged."""
    if squad_shape not in SQUAD_SHAPES:
        raise ValueError(f"squad_shape must be one of {SQUAD_SHAPES}, got {squad_shape!r}")
    if squad_shape == "paragraph":
        return frames
    if SQUAD not in frames:
        raise ValueError(f"squad_shape='article' reshapes the {SQUAD!r} source; the frames are {sorted(frames)}")
    return {k: evalsets.whole_articles(v) if k == SQUAD else v for k, v in frames.items()}


def training_frames(squad_shape: str = "paragraph", data_dir: Path = evalsets.DATA_DIR) -> dict[str, pd.DataFrame]:
    """The base's training sources as paragraphs (TyDi-en train, SQuAD dev articles 0-35). Raises a ValueError
    listing every leak if an evaluated question id, title, context or paragraph (of either evaluation shape) is in
    them as the base meets them (`shaped`)."""
    trains = {k: v for k, v in evalsets.train_sources(data_dir).items() if k in ("tydi_en", SQUAD)}
    every = {**evalsets.eval_sets(data_dir), **evalsets.eval_sets(data_dir, shape="article")}
    problems = evalsets.leaks(every, shaped(trains, squad_shape))
    if problems:
        raise ValueError(f"{data_dir}: the base's training frames hold evaluated data:\n" + "\n".join(problems))
    return trains


def keep_windows(has_answer: np.ndarray, example_id: np.ndarray, budget: int, rng: np.random.Generator
                 ) -> np.ndarray:
    """Keep mask over one source's windows, `budget` of them (fewer only if it has fewer): every window with the
    answer if they fit, else one of each question's (a seeded choice), then a seeded sample of the windows without
    it for the rest (`src.train.augment.sample_negatives`)."""
    from src.train.augment import sample_negatives

    has_answer = np.asarray(has_answer, dtype=bool)
    pos = np.flatnonzero(has_answer)
    if len(pos) > budget:
        shuffled = rng.permutation(pos)
        _, first = np.unique(np.asarray(example_id)[shuffled], return_index=True)
        pos = np.sort(shuffled[first])
        if len(pos) > budget:
            raise ValueError(f"{len(pos)} questions have an answer window, more than the budget of {budget} windows")
    neg = np.flatnonzero(~has_answer)
    pool = np.sort(np.concatenate([pos, neg]))
    fraction = min(1.0, (budget - len(pos)) / len(neg)) if len(neg) else 0.0
    keep = np.zeros(len(has_answer), dtype=bool)
    keep[pool[sample_negatives(has_answer[pool], fraction, rng)]] = True
    return keep


def article_windows(paragraphs: pd.DataFrame, tokenizer, cfg: BaseQAConfig):
    """The windows of `paragraphs`' questions each beside its whole article, as many as the same questions give as
    paragraphs (`keep_windows`, seeded by `cfg.seed`). Windows are cut by the recipe's chunked featurizer
    (`src.train.windows.source_windows`, every window once, no augmentation)."""
    import pyarrow as pa
    from datasets import Dataset

    from src.train.fold import features_dataset
    from src.train.recipe import Augment
    from src.train.windows import source_windows

    budget = len(features_dataset(paragraphs, tokenizer, cfg.max_length, cfg.doc_stride))
    rng = np.random.default_rng([cfg.seed, 1])      # not max_windows' stream (default_rng(seed)): independent draws
    articles = evalsets.whole_articles(paragraphs)
    table = source_windows(articles, tokenizer, cfg.max_length, cfg.doc_stride,
                           Augment(random_crop=False, progressive=False), rng)
    has_answer = table.column("has_answer").to_numpy(zero_copy_only=False)
    keep = keep_windows(has_answer, np.asarray(table.column("example_id").to_pylist()), budget, rng)
    print(f"base-qa: {len(articles)} questions beside their whole article: {len(keep)} windows, "
          f"{int(has_answer.sum())} with the answer; kept {int((keep & has_answer).sum())} with it + "
          f"{int((keep & ~has_answer).sum())} without = {int(keep.sum())}, their windows as paragraphs", flush=True)
    return Dataset(table.filter(pa.array(keep)))


def train_windows(frames: dict[str, pd.DataFrame], tokenizer, cfg: BaseQAConfig):
    """All sources' windows (the SQuAD source's as `article_windows` with `squad_shape="article"`), then a seeded
    sample of `max_windows` of them (positives and negatives alike). `frames` hold paragraphs."""
    from datasets import concatenate_datasets

    from src.train.fold import features_dataset

    shaped(frames, cfg.squad_shape)                 # a clear error before any tokenizing
    parts = [article_windows(df, tokenizer, cfg) if cfg.squad_shape == "article" and name == SQUAD
             else features_dataset(df, tokenizer, cfg.max_length, cfg.doc_stride) for name, df in frames.items()]
    ds = concatenate_datasets(parts)
    if 0 < cfg.max_windows < len(ds):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(ds), cfg.max_windows, replace=False))
        ds = ds.select(keep)
    return ds


def score_table(metrics: dict, names) -> pd.DataFrame:
    """One row per evaluation set: Jaccard with its interval, EM and F1 (in %)."""
    rows = [{"set": n, "jaccard": metrics[f"jaccard_{n}"], "lo": metrics[f"jaccard_{n}_lo"],
             "hi": metrics[f"jaccard_{n}_hi"], "em": 100 * metrics[f"em_{n}"], "f1": 100 * metrics[f"f1_{n}"]}
            for n in names]
    return pd.DataFrame(rows).round(3)


def build(cfg: BaseQAConfig | None = None, out_dir: str | Path | None = None,
          trains: dict[str, pd.DataFrame] | None = None, evals: dict[str, pd.DataFrame] | None = None,
          callbacks=None, experiment_log: str = "auto") -> dict:
    """Build the base into `out_dir` (or return the cached result of the same config); the result holds the
    config, the data sizes and the zero-shot metrics per evaluation set."""
    from transformers import AutoTokenizer

    from src.train.fold import TrainConfig, train_fold
    from src.train.fold_outputs import last_complete_checkpoint
    from src.train.stand_ins import ensure_e5_small

    cfg = BaseQAConfig() if cfg is None else cfg   # a fresh default: the config is a mutable dataclass
    out = Path(out_dir) if out_dir is not None else base_dir(cfg)
    config = cfg.to_dict()
    h = explog.config_hash(config)
    done = out / RESULT
    if done.exists() and (out / "model" / "config.json").exists():
        cached = json.loads(done.read_text(encoding="utf-8"))
        if cached.get("config_hash") == h:
            print(f"base-qa found in {out} (config {h})", flush=True)
            return cached
        print(f"base-qa in {out} has another config ({cached.get('config_hash')} != {h}): rebuilding", flush=True)
    trains = training_frames(cfg.squad_shape) if trains is None else trains
    evals = evalsets.eval_sets() if evals is None else evals
    model_dir = cfg.model_dir or str(ensure_e5_small(CACHE_DIR / "e5-small"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = train_windows(trains, tokenizer, cfg)
    valid = evalsets.combined(evals)
    tcfg = TrainConfig(backbone=cfg.backbone, model_path=model_dir, output_dir=str(out), seed=cfg.seed,
                       learning_rate=cfg.learning_rate, epochs=1, batch_size=cfg.batch_size, grad_accum=1,
                       max_length=cfg.max_length, doc_stride=cfg.doc_stride, warmup_ratio=cfg.warmup_ratio,
                       freeze_word_embeddings=cfg.freeze_word_embeddings, bf16=cfg.bf16, save_steps=cfg.save_steps,
                       eval_steps=cfg.eval_steps, group_by_length=cfg.group_by_length,
                       experiment_log=experiment_log)
    ckpt = last_complete_checkpoint(out)
    print(f"base-qa: {len(dataset)} training windows of {cfg.max_length} from "
          f"{ {k: len(v) for k, v in trains.items()} }; "
          + (f"resuming from {ckpt.name}" if ckpt else "from the start"), flush=True)
    data = {"train": {k: len(v) for k, v in trains.items()}, "train_windows": len(dataset),
            "eval": {k: len(v) for k, v in evals.items()}}
    result = train_fold(valid, tcfg, valid_df=valid, train_dataset=dataset, resume=bool(ckpt), callbacks=callbacks,
                        log_row={"run_id": f"base-qa-{h}", "kind": "base-qa", "data": data, "base_qa_config": config})
    import shutil
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # only needed to resume; the model is in model/
    from src.common.io import write_json
    summary = {"config": config, "config_hash": h, "data": data, "metrics": result.metrics,
               "model_dir": str(out / "model")}
    write_json(summary, done)
    return summary


def rescore(out_dir: str | Path = BASE_DIR, evals: dict[str, pd.DataFrame] | None = None,
            log: str | Path | None = explog.REPO_LOG) -> dict:
    """Score the built base again on the evaluation sets (after a fix to the evaluation, not to training):
    rewrites the metrics in base_qa.json and in the base's row of the experiment log."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from src.common.io import write_json
    from src.train.fold import TrainConfig, score_model
    from src.train.fold_outputs import update_metrics_json

    out = Path(out_dir)
    summary = json.loads((out / RESULT).read_text(encoding="utf-8"))
    cfg = BaseQAConfig(**summary["config"])
    evals = evals or evalsets.eval_sets()
    model_dir = out / "model"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir)
    tcfg = TrainConfig(backbone=cfg.backbone, max_length=cfg.max_length, doc_stride=cfg.doc_stride, seed=cfg.seed)
    metrics, _, _ = score_model(model, tokenizer, evalsets.combined(evals), tcfg, bf16=cfg.bf16)
    summary["metrics"] = dict(summary["metrics"], **metrics)
    update_metrics_json(out, metrics)
    summary["data"]["eval"] = {k: len(v) for k, v in evals.items()}
    write_json(summary, out / RESULT)
    if log is not None:
        explog.update_run(log, f"base-qa-{summary['config_hash']}", metrics=summary["metrics"],
                          rescored_at=explog.git_commit())
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="default: the cache folder of this config (base_dir)")
    ap.add_argument("--max-windows", type=int, default=BaseQAConfig.max_windows, help="0: every training window")
    ap.add_argument("--group-by-length", action="store_true", help="batches of windows of similar length")
    ap.add_argument("--squad-shape", choices=SQUAD_SHAPES, default=BaseQAConfig.squad_shape,
                    help="article: each SQuAD question beside its whole article, as many windows as paragraphs")
    ap.add_argument("--fp32", action="store_true", help="train in fp32 (bf16 autocast is the default)")
    ap.add_argument("--rescore", action="store_true",
                    help="score the built base again (after a change to the evaluation) and update its log row")
    a = ap.parse_args(argv)
    cfg = BaseQAConfig(max_windows=a.max_windows, bf16=not a.fp32, group_by_length=a.group_by_length,
                       squad_shape=a.squad_shape)
    res = rescore(a.out or base_dir(cfg)) if a.rescore else build(cfg, a.out)
    names = list(res["data"]["eval"])
    print(f"zero-shot scores of {res['model_dir']} (Jaccard with 95% bootstrap interval, EM and F1 in %):")
    print(score_table(res["metrics"], names).to_string(index=False))


if __name__ == "__main__":
    main()
