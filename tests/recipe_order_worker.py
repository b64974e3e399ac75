"""Worker for test_recipe.py: train tiny-bert over a two-stage recipe and record, per rank, the windows of each step.

Run as `python tests/recipe_order_worker.py OUT_DIR` (one process) or under `torchrun --nproc_per_node 2` (gloo, CPU).
Writes OUT_DIR/order.json (the recipe's window order), OUT_DIR/rank<r>.json (the `order` and `example_id` of each
batch this rank trained on, step by step) and OUT_DIR/lr.json (rank 0: learning rate and optimizer id per step).
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from transformers import AutoModelForQuestionAnswering, AutoTokenizer, TrainerCallback  # noqa: E402

from src.data.synthetic import make_synthetic_qa  # noqa: E402
from src.train.augment import QACollator  # noqa: E402
from src.train.fold import TrainConfig, training_arguments  # noqa: E402
from src.train.recipe import Augment, Recipe, Source, Stage  # noqa: E402
from src.train.stand_ins import ensure_tiny  # noqa: E402
from src.train.trainer import trainer_class  # noqa: E402
from src.train.windows import build_dataset  # noqa: E402

MODELS = Path(os.environ.get("CHAII_MODELS", Path(__file__).resolve().parents[1] / ".cache" / "backbones"))


def recipe_dataset(tokenizer):
    a, b = Source("a", "synthetic"), Source("b", "synthetic", repeats=2)
    frames = {a.data_key(): make_synthetic_qa(48, seed=3), b.data_key(): make_synthetic_qa(24, seed=4)}
    b_key = b.data_key()
    frames[b_key] = frames[b_key].assign(id=lambda d: "b-" + d["id"])
    r = Recipe("order", [Stage("one", [a, b], 64, 24), Stage("two", [b], 64, 24)],
               Augment(random_crop=True, progressive=False, negative_fraction=0.5))
    ds = build_dataset(r, frames, tokenizer, seed=0)
    return ds.add_column("order", list(range(len(ds))))


class Recorder:
    """Wraps the collator: what each call receives is one batch of this rank, in training order."""

    def __init__(self, collator):
        self.collator, self.batches = collator, []

    def __call__(self, features):
        self.batches.append({"order": [int(f["order"]) for f in features],
                             "example_id": [f["example_id"] for f in features],
                             "stage": [int(f["stage"]) for f in features]})
        return self.collator(features)


class LR(TrainerCallback):
    def __init__(self):
        self.rows = []

    def on_step_end(self, args, state, control, optimizer=None, lr_scheduler=None, **kw):
        self.rows.append({"step": state.global_step, "lr": lr_scheduler.get_last_lr()[0], "optimizer": id(optimizer)})


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = ensure_tiny(MODELS)["tiny-bert"]
    tok = AutoTokenizer.from_pretrained(path)
    ds = recipe_dataset(tok)
    rank = int(os.environ.get("RANK", 0))
    if rank == 0:
        order = {"example_id": list(ds["example_id"]), "stage": [int(s) for s in ds["stage"]]}
        (out / "order.json").write_text(json.dumps(order))
    cfg = TrainConfig(backbone="tiny-bert", output_dir=str(out / "run"), batch_size=4, epochs=1, learning_rate=1e-3,
                      warmup_ratio=0.1, save_steps=10_000, logging_steps=1).resolved()
    recorder, lr = Recorder(QACollator(tok)), LR()
    trainer = trainer_class()(model=AutoModelForQuestionAnswering.from_pretrained(path),
                               args=training_arguments(cfg, remove_unused_columns=False, ddp_backend="gloo"
                                                       if "RANK" in os.environ else None),
                               train_dataset=ds, data_collator=recorder, callbacks=[lr], sequential=True)
    trainer.train()
    (out / f"rank{rank}.json").write_text(json.dumps(recorder.batches))
    if rank == 0:
        (out / "lr.json").write_text(json.dumps(lr.rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
