"""The thin `Trainer` subclass (as HF's trainer_qa.py): a sequential sampler for a recipe's designed order, the
soft-label loss, and an `evaluate` that post-processes held-out windows into answers and scores them."""
from __future__ import annotations

import time

import pandas as pd

from src.data.features import frame_to_batch, prepare_eval_features
from src.infer.metric import qa_metrics
from src.infer.postprocess import predict_texts
from src.infer.predict import WindowLogits, predict_windows


def eval_features(df: pd.DataFrame, tokenizer, cfg) -> dict:
    return prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), tokenizer,
                                 cfg.max_length, cfg.doc_stride)


def predict_features(model, df: pd.DataFrame, feats: dict, cfg, pad_token_id: int,
                     device=None, bf16: bool = False) -> tuple[dict[str, str], WindowLogits]:
    """Answers and per-window logits for the examples in `df` from their windows `feats`: in bf16 autocast for a
    model trained in bf16 (on CPU ~5x faster than fp32), else the device's default precision (fp16 autocast on a
    GPU, as before); the model is left in the mode it was in (evaluation runs mid-training)."""
    was_training = model.training
    logits = predict_windows(model, feats, cfg.eval_batch_size, pad_token_id=pad_token_id, device=device,
                             precision="bf16" if bf16 else "auto")
    model.train(was_training)
    return predict_texts(df, logits, cfg.n_best_size, cfg.max_answer_length), logits


def trainer_class():
    """The QATrainer class (built on first use: transformers is imported only when training)."""
    from transformers import Trainer

    class QATrainer(Trainer):
        """Trainer plus a sequential sampler (a designed data order, the recipe, is kept), soft-label loss, and an
        `evaluate` that post-processes the held-out windows into answers and scores them (as HF's trainer_qa.py)."""

        def __init__(self, *args, sequential: bool = False, soft_label_radius: int = 0, eval_examples=None,
                     eval_features=None, post=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.sequential = sequential
            self.soft_label_radius = soft_label_radius
            self.eval_examples, self.eval_features, self.post = eval_examples, eval_features, post

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            if self.eval_examples is None:
                return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            t0 = time.time()
            answers, _ = predict_features(self.model, self.eval_examples, self.eval_features, self.post,
                                          self.processing_class.pad_token_id, self.args.device, self.args.bf16)
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in
                       qa_metrics(self.eval_examples.assign(prediction=self.eval_examples["id"].map(answers))).items()}
            metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - t0, 2)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not self.soft_label_radius:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            from src.train.augment import soft_label_loss
            labels = [inputs.pop(k) for k in ("start_positions", "end_positions", "context_start", "context_end")]
            outputs = model(**inputs)
            loss = soft_label_loss(outputs.start_logits, outputs.end_logits, *labels, radius=self.soft_label_radius)
            return (loss, outputs) if return_outputs else loss

        def _get_train_sampler(self, train_dataset=None):
            if self.sequential:
                # Under DDP, accelerate shards this sampler's batches round-robin over ranks (BatchSamplerShard),
                # so the union of what the ranks see at each step still follows the recipe order.
                from torch.utils.data import SequentialSampler
                return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)
            return super()._get_train_sampler(train_dataset)

    return QATrainer
