"""Fine-tune one backbone on one fold: `AutoModelForQuestionAnswering` + a thin `Trainer` subclass.

Reads top to bottom in the order the work happens (as run_qa.py): config -> folds -> features -> model -> train
-> predict the held-out fold -> post-process -> Jaccard per language -> save model, out-of-fold predictions, metrics.
What the run leaves in its folder, and reading it back (checkpoints, `read_fold_result`): `src/train/fold_outputs.py`.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.common.io import write_json
from src.data import presplit
from src.data.features import frame_to_batch, prepare_train_features
from src.infer.metric import qa_metrics, score_rows
from src.infer.precision import use_bf16
from src.infer.predict import WindowLogits
from src.train import explog, exports
from src.train.backbones import get_backbone, resolve_model_path
from src.train.fold_outputs import (
    LOG_HISTORY_JSON,
    FoldResult,
    last_complete_checkpoint,
    save_run,
)
from src.train.partition import split_batch, split_rows, world_size
from src.train.trainer import eval_features, predict_features, trainer_class


@dataclass
class TrainConfig:
    """One training run. `None` means: take the backbone's registry value (its paper's or card's setting)."""
    backbone: str = "muril-large"
    model_path: str = ""            # local directory or hub id; default: the backbone found in models_dir
    models_dir: str = ""
    output_dir: str = ""            # default: <work_dir>/<backbone>/fold<k>
    fold: int = 0
    n_folds: int = 5
    seed: int = 42
    learning_rate: float | None = None
    epochs: float | None = None
    batch_size: int | None = None
    grad_accum: int | None = None
    max_length: int | None = None
    doc_stride: int | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None
    lr_scheduler: str = "linear"
    n_best_size: int = 20
    max_answer_length: int = 30
    eval_batch_size: int = 64
    fp16: bool | None = None        # None: on when a GPU is present
    save_steps: int = 500           # checkpoints for resume_from_checkpoint
    logging_steps: int = 10
    freeze_word_embeddings: bool = False  # 250k-row vocabularies: Adam state and dense grads cost more than they give
    # Batches of windows of similar length (HF's LengthGroupedSampler): a shuffled batch of 16 nearly always holds
    # one full-length window and pads to it; grouped, e5-small trains 1.86x the windows/s per step on 2 CPU cores
    # (make bench-grouping), 1.29x over the whole base run. Not with a recipe fed in its designed order (sequential).
    group_by_length: bool = False
    soft_label_radius: int = 0      # > 0: soft start/end targets within this many tokens, KL loss (augment.py)
    # Evaluation during training: off by default (GPU hours go to training). eval_steps > 0 scores the held-out set
    # every that many optimizer steps, as the winner did on his own GPUs (kldarek/chaii: every 1,000 steps, RemBERT
    # 200; XLMR_pretraining68 cell 19, REMBERT_pretraining77 cell 17).
    eval_steps: int = 0
    # Checkpoints kept as models of an ensemble (he kept some interim ones: MuRIL 71 and 73 at step 7000, RemBERT 79
    # at 1000): "7000" or "1000,4000", optimizer steps. At each, the model is scored on the held-out fold and saved
    # as <output_dir>/step<N>/ (model/, oof files, metrics.json: a run folder of its own). export_steps_of: the
    # number of steps the steps were counted in (his run's); > 0 scales them to this run's length, so a checkpoint
    # sits at the same point of the learning-rate schedule when this run's data give another number of steps.
    export_steps: str = ""
    export_steps_of: int = 0
    # The folds: "grouped" (the project's CV: no article on both sides) or "winner" (his StratifiedKFold on language,
    # not grouped: see make_folds). fold -1: no held-out rows (every chaii row trains; nothing is scored).
    split: str = "grouped"
    metric_for_best: str = ""       # e.g. "jaccard_all" or "nonzero_all" (4th place): keep that best checkpoint
    bf16: bool = False              # bf16 autocast where the processor supports it (else fp32, with the reason)
    # A space between a word and a punctuation mark touching it before tokenizing (src/data/presplit.py): recorded
    # in the saved tokenizer, so inference does the same. Off: on whole articles it loses on Tamil, gains nothing
    # beyond the noise on Hindi (docs/ablation_table_long.md).
    presplit_punctuation: bool = False
    report_to: str = "none"         # the Trainer's trackers: tensorboard, wandb, mlflow, trackio
    experiment_log: str = "auto"    # "auto": explog.default_log(); "" or "none": no row
    # Processes (src/train/launch.py): 0 = one per visible GPU, DistributedDataParallel when there are several
    # (Kaggle's T4 x2); 1 = this process, no launcher; n > 1 without a GPU: n CPU processes (gloo), for tests.
    # batch_size x grad_accum stays the global batch of one GPU whatever the number (split_batch).
    num_processes: int = 0

    def resolved(self, paths=None) -> "TrainConfig":
        """A copy with every `None` filled in from the backbone registry, and empty locations from `paths`."""
        b = get_backbone(self.backbone)
        fill = {f.name: getattr(b, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is None and hasattr(b, f.name)}
        if paths is not None:
            fill.setdefault("models_dir", self.models_dir or str(paths.models_dir))
            fill.setdefault("output_dir",
                            self.output_dir or str(Path(paths.work_dir) / self.backbone / fold_name(self.fold)))
        if not (fill.get("output_dir") or self.output_dir):
            raise ValueError("TrainConfig.output_dir is empty: give one, or resolve with paths")
        return dataclasses.replace(self, **fill)


def config_from_params(cls, params: dict):
    """Build a dataclass config from a namespace (a notebook's `globals()`): papermill names map 1:1 to fields."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in params.items() if k in names})


def fold_name(fold: int) -> str:
    """A run's folder: fold<k>, or "all" for a run that holds no row out (fold -1)."""
    return f"fold{fold}" if fold >= 0 else "all"


def features_dataset(df: pd.DataFrame, tokenizer, max_length: int, doc_stride: int):
    """Training windows as a `datasets.Dataset` (columns the model does not take are dropped by Trainer)."""
    from datasets import Dataset

    feats = prepare_train_features(frame_to_batch(df[["id", "question", "context", "answer_text", "answer_start"]]),
                                   tokenizer, max_length, doc_stride)
    return Dataset.from_dict(feats)


def training_arguments(cfg: TrainConfig, n_windows: int | None = None, **overrides):
    import torch
    from transformers import TrainingArguments

    wants_fp16 = torch.cuda.is_available() if cfg.fp16 is None else cfg.fp16
    bf16 = use_bf16(cfg, fallback="fp16" if wants_fp16 else "fp32")
    fp16 = wants_fp16 and not bf16
    per_device, accum = split_batch(cfg.batch_size, cfg.grad_accum, world_size())
    kw = dict(
        output_dir=str(Path(cfg.output_dir) / "checkpoints"),
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accum,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        warmup_steps=cfg.warmup_ratio,   # a float in [0, 1) is a ratio of all steps
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler,
        fp16=fp16,
        bf16=bf16,
        seed=cfg.seed,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        logging_steps=cfg.logging_steps,
        report_to=[x.strip() for x in cfg.report_to.split(",") if x.strip()] or "none",
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
    )
    if world_size() > 1:
        # every parameter of the QA models trained here gets a gradient (BERT, XLM-R and RemBERT QA heads are built
        # without the pooler), so DDP need not search the graph for unused ones at every step
        kw.update(ddp_find_unused_parameters=False)
        if not torch.cuda.is_available():
            kw.update(ddp_backend="gloo")   # CPU processes (tests, the Kaggle simulation); GPUs get NCCL
    if cfg.group_by_length:
        kw.update(train_sampling_strategy="group_by_length")
    if cfg.eval_steps:
        kw.update(eval_strategy="steps", eval_steps=cfg.eval_steps)
    if cfg.metric_for_best:
        if not cfg.eval_steps:
            raise ValueError("metric_for_best needs eval_steps > 0 (checkpoints are compared by their evaluation)")
        # the best checkpoint must be among those saved: save at every evaluation, keep the best and the last
        kw.update(load_best_model_at_end=True, metric_for_best_model=f"eval_{cfg.metric_for_best}",
                  greater_is_better=True, save_steps=cfg.eval_steps, save_total_limit=2)
    kw.update(overrides)
    return TrainingArguments(**kw)


def predict_frame(model, tokenizer, df: pd.DataFrame, cfg: TrainConfig) -> tuple[dict[str, str], WindowLogits]:
    """Answers and per-window logits for the examples in `df`."""
    return predict_features(model, df, eval_features(df, tokenizer, cfg), cfg, tokenizer.pad_token_id)


def check_unique_ids(valid_df: pd.DataFrame) -> None:
    """Windows find their example by id, so held-out examples sharing an id would be scored on each other's
    contexts (XQuAD and XQuAD-IN translate the same SQuAD questions under the same ids)."""
    dup = valid_df["id"][valid_df["id"].duplicated()]
    if len(dup):
        raise ValueError(f"the evaluation examples have {len(dup)} duplicated ids (e.g. {sorted(set(dup))[:3]}): "
                         "give each its own id, e.g. prefix each evaluation set's ids with its name")


def score_model(model, tokenizer, valid_df: pd.DataFrame, cfg: TrainConfig, bf16: bool = False,
                feats: dict | None = None) -> tuple[dict, pd.DataFrame, WindowLogits]:
    """Metrics (rounded, with intervals), the scored rows and the per-window logits of `model` on `valid_df`."""
    check_unique_ids(valid_df)
    feats = feats if feats is not None else eval_features(valid_df, tokenizer, cfg)
    answers, logits = predict_features(model, valid_df, feats, cfg, tokenizer.pad_token_id, bf16=bf16)
    scored = valid_df.assign(prediction=valid_df["id"].map(answers))
    keep = [c for c in ("id", "language", "eval_set", "question", "answer_text", "prediction") if c in scored]
    oof = pd.concat([scored[keep], score_rows(scored)], axis=1)
    metrics = {k: round(v, 4) for k, v in qa_metrics(scored, interval=True, seed=cfg.seed).items()}
    return metrics, oof, logits


def train_fold(train_df: pd.DataFrame, cfg: TrainConfig, valid_df: pd.DataFrame | None = None,
               train_dataset=None, callbacks=None, resume: bool | str = False, sequential: bool = False,
               data_collator=None, num_train_epochs: float | None = None,
               extra_metrics: dict | None = None, log_row: dict | None = None) -> FoldResult:
    """Train on `train_df` minus fold `cfg.fold` (or all of it when `valid_df` is given), evaluate, save.

    `train_dataset` replaces the windows built from `train_df` (a recipe builds its own); with `sequential`
    it is fed in order. `data_collator` (e.g. `augment.QACollator`) gets every dataset column and keeps what
    the model takes. `num_train_epochs` overrides `cfg.epochs` for the Trainer (a recipe builds its epochs into
    `train_dataset` and is passed once); `extra_metrics` are added to metrics.json. Writes `model/`, `oof.csv`,
    `oof_logits.npz` and `metrics.json` under `cfg.output_dir` (no oof files when no row is held out: fold -1),
    the same under `step<N>/` for each of `cfg.export_steps` (src/train/exports.py), and appends one row to the
    experiment log (`cfg.experiment_log`; `log_row` adds or replaces fields, e.g. a run_id and the data sources).
    Scores are the best over every gold answer (`answers` column) with intervals.
    """
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding, set_seed

    cfg = cfg.resolved()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if valid_df is None:
        train_df, valid_df = split_rows(train_df, cfg)
    check_unique_ids(valid_df)
    held_out = len(valid_df) > 0        # fold -1 (and a recipe without chaii): nothing to score
    if not held_out and (cfg.eval_steps or cfg.metric_for_best):
        raise ValueError(f"fold {cfg.fold} holds no row out, so eval_steps/metric_for_best have nothing to score: "
                         "set eval_steps=0 and metric_for_best=''")
    if sequential and cfg.group_by_length:
        raise ValueError("group_by_length reorders the windows: a recipe fed in its designed order "
                         "(sequential) cannot use it")
    model_path = resolve_model_path(cfg.model_path or cfg.backbone, cfg.models_dir or None)
    set_seed(cfg.seed)
    tokenizer = presplit.configure(AutoTokenizer.from_pretrained(model_path), cfg.presplit_punctuation,
                                   training=True)
    model = AutoModelForQuestionAnswering.from_pretrained(model_path)
    if cfg.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if train_dataset is None:
        train_dataset = features_dataset(train_df, tokenizer, cfg.max_length, cfg.doc_stride)
    if data_collator is None and cfg.soft_label_radius:
        from src.train.augment import QACollator
        data_collator = QACollator(tokenizer, seed=cfg.seed, keep_context_bounds=True)
    valid_feats = eval_features(valid_df, tokenizer, cfg) if held_out else None
    evaluating = dict(eval_examples=valid_df, eval_features=valid_feats, post=cfg,
                      eval_dataset=[0]) if cfg.eval_steps else {}   # evaluate() reads the features, not eval_dataset
    if cfg.export_steps:
        def write_export(named: int, step: int, model, first: bool) -> None:
            scored = score_model(model, tokenizer, valid_df, cfg, bf16=trainer.args.bf16, feats=valid_feats) \
                if held_out else ({}, pd.DataFrame(), None)
            if first:
                where = exports.export_dir(out, named)
                scored[0].update(step=step, named_step=named, backbone=cfg.backbone, fold=cfg.fold, seed=cfg.seed,
                                 n_valid=len(valid_df))
                save_run(where, trainer, tokenizer, dataclasses.replace(cfg, output_dir=str(where)), *scored)

        callbacks = [*(callbacks or []), exports.export_callback(exports.parse_steps(cfg.export_steps),
                                                                 cfg.export_steps_of, write_export)]
    trainer = trainer_class()(
        model=model, args=training_arguments(cfg, remove_unused_columns=data_collator is None,
                                             num_train_epochs=num_train_epochs or cfg.epochs),
        train_dataset=train_dataset, data_collator=data_collator or DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer, callbacks=callbacks, sequential=sequential,
        soft_label_radius=cfg.soft_label_radius, **evaluating)
    t0 = time.time()
    if resume is True:
        resume = last_complete_checkpoint(out, remove=trainer.is_world_process_zero())
    trainer.train(resume_from_checkpoint=resume or None)
    train_seconds = time.time() - t0
    if not trainer.is_world_process_zero():
        # under DistributedDataParallel the ranks hold the same weights: rank 0 alone scores, saves and logs
        return FoldResult({}, pd.DataFrame(), out, trainer.state.log_history)

    metrics, oof, logits = score_model(trainer.model, tokenizer, valid_df, cfg, bf16=trainer.args.bf16,
                                       feats=valid_feats) if held_out else ({}, pd.DataFrame(), None)
    metrics.update(train_seconds=round(train_seconds, 1), n_train_windows=len(train_dataset),
                   n_valid=len(valid_df), backbone=cfg.backbone, model_path=model_path, fold=cfg.fold,
                   seed=cfg.seed, learning_rate=cfg.learning_rate, bf16=bool(trainer.args.bf16),
                   best_checkpoint=trainer.state.best_model_checkpoint, processes=trainer.args.world_size,
                   per_device_batch=trainer.args.per_device_train_batch_size,
                   grad_accum_steps=trainer.args.gradient_accumulation_steps, **(extra_metrics or {}))

    save_run(out, trainer, tokenizer, cfg, metrics, oof, logits)
    write_json(trainer.state.log_history, out / LOG_HISTORY_JSON)
    log = explog.resolve_log(cfg.experiment_log)
    if log is not None:
        extra = dict(log_row or {})
        data = extra.pop("data", {"train": explog.data_sizes(train_df, n_windows=len(train_dataset)),
                                  "valid": explog.data_sizes(valid_df)})
        explog.append_run(log, explog.run_row(dataclasses.asdict(cfg), metrics, data, **extra))
    return FoldResult(metrics, oof, out, trainer.state.log_history)
