"""The fine-tuned QA models the benchmarks measure (built once, cached outside the repo); `make e5-qa`.

    python -m research.bench.models e5      # e5-small fine-tuned one epoch on XQuAD-hi articles 0-35
    python -m research.bench.models tiny    # tiny-bert fine-tuned on the synthetic task

Both go through `src.train.fold.train_fold`, the library's own fine-tuning, so the bench measures models made the way
the notebooks make them. An untrained QA head gives near-uniform logits, where comparing answers says nothing.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from research.bench.questions import HELD_OUT, TRAIN_ARTICLES, xquad_frame
from src.common.paths import CACHE_DIR, REPO_ROOT
from src.train.stand_ins import ensure_e5_small

E5_BASE = CACHE_DIR / "e5-small"
E5_QA = CACHE_DIR / "e5-small-qa-1ep"
TINY_QA = CACHE_DIR / "tiny-bert-qa"


def tiny_qa_model(out: Path = TINY_QA) -> Path:
    """tiny-bert fine-tuned on the synthetic task with 8 persons per context (2-3 windows each, so it also
    learns no-answer windows): a confident QA head in ~2 min on 2 cores, cached. Its held-out Jaccard is in
    `metrics.json`."""
    if (out / "model" / "config.json").exists():
        return out / "model"
    from src.data.synthetic import make_synthetic_qa
    from src.train.fold import TrainConfig, train_fold
    from src.train.stand_ins import ensure_tiny

    base = ensure_tiny(REPO_ROOT / ".cache" / "backbones", names=("tiny-bert",))["tiny-bert"]
    cfg = TrainConfig(backbone="tiny-bert", model_path=str(base), output_dir=str(out), epochs=5, max_length=128,
                      doc_stride=48, save_steps=100_000, logging_steps=50)
    train_fold(make_synthetic_qa(2000, seed=0, people=8), cfg, valid_df=make_synthetic_qa(200, seed=2, people=8))
    return out / "model"


def freeze_lower_layers(n_layers: int):
    """A Trainer callback that freezes the embeddings and the lower `n_layers` encoder layers when the Trainer
    is built (before it creates the optimizer, so they are not in it)."""
    from transformers import TrainerCallback

    class FreezeLower(TrainerCallback):
        def on_init_end(self, args, state, control, model=None, **kw):
            for p in model.base_model.embeddings.parameters():
                p.requires_grad_(False)
            for layer in model.base_model.encoder.layer[:n_layers]:
                for p in layer.parameters():
                    p.requires_grad_(False)

    return FreezeLower()


def finetune_e5(out: Path = E5_QA, seed: int = 42, max_length: int = 192, doc_stride: int = 64,
                learning_rate: float = 2e-4, frozen_layers: int = 6) -> Path:
    """e5-small fine-tuned for QA with `train_fold`: one epoch over XQuAD-hi articles 0-35 (~1,950 windows of
    192; about 6 min on 2 quiet cores), scored on articles 36-47 (`metrics.json`). The e5_small README's recipe:
    embeddings frozen, AdamW, linear schedule with warm-up; here also the lower 6 layers (on 2 shared CPU cores a
    full backward pass leaves too few steps to move the QA head at all). Far from a good model: the point is a
    QA head confident enough that comparing answers means something."""
    from src.train.fold import TrainConfig, train_fold

    cfg = TrainConfig(backbone="e5-small", model_path=str(ensure_e5_small(E5_BASE)), output_dir=str(out),
                      seed=seed, learning_rate=learning_rate, epochs=1, batch_size=16, grad_accum=1,
                      max_length=max_length, doc_stride=doc_stride, warmup_ratio=0.1, weight_decay=0.01,
                      logging_steps=5, save_steps=100_000, freeze_word_embeddings=True)
    train_fold(xquad_frame(articles=slice(0, TRAIN_ARTICLES)), cfg, valid_df=xquad_frame(articles=HELD_OUT),
               callbacks=[freeze_lower_layers(frozen_layers)])
    return out / "model"


def find_own_e5() -> Path | None:
    own = E5_QA / "model"
    return own if (own / "config.json").exists() else None


def find_finetuned() -> Path | None:
    """The e5-small QA model the benchmarks measure: the best run of the ablation from the QA base (base +
    fine-tune on XQuAD-hi articles 0-35, the project's strongest CPU model), else our own one-epoch model
    (`finetune_e5`), else the best run of the old 6-layer ablation."""
    from research.experiments.ablate import OUT_ROOT
    return (_best_run(OUT_ROOT, "jaccard_xquad_hi") or find_own_e5()
            or _best_run(CACHE_DIR / "ablation", "jaccard_all"))


def _best_run(root: Path, metric: str) -> Path | None:
    """The model of the run under `root` with the highest `metric` in its metrics.json."""
    best, best_score = None, -1.0
    for m in root.glob("*/metrics.json"):
        try:
            score = float(json.loads(m.read_text())["metrics"][metric])
        except (KeyError, ValueError, json.JSONDecodeError):
            continue
        if (m.parent / "model" / "config.json").exists() and score > best_score:
            best, best_score = m.parent / "model", score
    return best


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    what = argv[0] if argv else "e5"
    if what == "e5":
        print(f"fine-tuned e5-small QA model: {find_own_e5() or finetune_e5()}")
    elif what == "tiny":
        print(f"fine-tuned tiny-bert QA model: {tiny_qa_model()}")
    else:
        raise SystemExit(f"usage: python -m research.bench.models [e5|tiny] (got {what!r})")


if __name__ == "__main__":
    main()
