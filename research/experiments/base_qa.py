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

    python -m research.experiments.base_qa            # build (or find) the base, print its zero-shot scores
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from src.common.paths import CACHE_DIR
from src.train import explog

BASE_DIR = CACHE_DIR / "base-qa"
RESULT = "base_qa.json"


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

    def to_dict(self) -> dict:
        """The config as logged and hashed. Fields added after the grid was logged appear only when set, so the
        logged base (and every ablation run on it) keeps its hash."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}


LATER_FIELDS = {"group_by_length": False}   # field -> the value every earlier build had


def base_dir(cfg: BaseQAConfig) -> Path:
    """Where a base is cached: BASE_DIR for the default build, a folder per config hash for any other."""
    return BASE_DIR if cfg == BaseQAConfig() else BASE_DIR.with_name(f"base-qa-{explog.config_hash(cfg.to_dict())}")


def train_windows(frames: dict[str, pd.DataFrame], tokenizer, cfg: BaseQAConfig):
    """All sources' windows, then a seeded sample of `max_windows` of them (positives and negatives alike)."""
    from datasets import concatenate_datasets

    from src.train.fold import features_dataset

    parts = [features_dataset(df, tokenizer, cfg.max_length, cfg.doc_stride) for df in frames.values()]
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

    from src.train.backbones import ensure_e5_small
    from src.train.fold import TrainConfig, last_complete_checkpoint, train_fold

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
    from research.experiments import evalsets
    if trains is None or evals is None:
        all_trains = evalsets.train_sources()
        trains = trains or {k: all_trains[k] for k in ("tydi_en", "squad_dev")}
        evals = evals or evalsets.eval_sets()
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

    from research.experiments import evalsets
    from src.common.io import write_json
    from src.train.fold import TrainConfig, score_model, update_metrics_json

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
    ap.add_argument("--fp32", action="store_true", help="train in fp32 (bf16 autocast is the default)")
    ap.add_argument("--rescore", action="store_true",
                    help="score the built base again (after a change to the evaluation) and update its log row")
    a = ap.parse_args(argv)
    cfg = BaseQAConfig(max_windows=a.max_windows, bf16=not a.fp32, group_by_length=a.group_by_length)
    res = rescore(a.out or base_dir(cfg)) if a.rescore else build(cfg, a.out)
    names = list(res["data"]["eval"])
    print(f"zero-shot scores of {res['model_dir']} (Jaccard with 95% bootstrap interval, EM and F1 in %):")
    print(score_table(res["metrics"], names).to_string(index=False))


if __name__ == "__main__":
    main()
