"""Worker for test_launch.py: one recipe training run twice, at the same global batch of 16 windows.

    python tests/launch_worker.py OUT_DIR

OUT_DIR/two: on 2 CPU processes through the launcher (`launch.launch`, accelerate's notebook_launcher; DDP, gloo),
batch_size 16 -> 8 windows per process per step. OUT_DIR/resumed: the same, stopped after its checkpoint at step
SAVE_STEPS, then resumed on 2 processes to the end. OUT_DIR/one: in this process, batch_size 8 x grad_accum 2.
Each run writes what train_fold writes, plus batches<rank>.json (the `order` of the windows of every micro-batch
this process trained on, in training order). Dropout is off (a copy of tiny-bert): the runs do the same arithmetic.

Its own interpreter, launching first: accelerate refuses to fork processes from one where a Trainer already ran.
"""
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from transformers import AutoTokenizer, TrainerCallback  # noqa: E402

from src.data.synthetic import make_synthetic_qa  # noqa: E402
from src.train.augment import QACollator  # noqa: E402
from src.train.fold import TrainConfig, train_fold  # noqa: E402
from src.train.launch import launch  # noqa: E402
from src.train.stand_ins import ensure_tiny  # noqa: E402
from tests.recipe_order_worker import MODELS, Recorder, recipe_dataset  # noqa: E402

GLOBAL_BATCH = 16
SAVE_STEPS = 4


def dropout_free(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, dirs_exist_ok=True)
    config = json.loads((dest / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (dest / "config.json").write_text(json.dumps(config))
    return dest


class StopAt(TrainerCallback):
    """Ends training after `step`, as a kernel that ran out of time would (the checkpoint of that step is saved)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if self.step and state.global_step >= self.step:
            control.should_training_stop = True


def run(out: Path, model: Path, dataset, batch_size: int, grad_accum: int, resume: bool = False,
        stop_at: int = 0) -> None:
    """train_fold on the recipe's windows in order (sequential), recording each micro-batch of this process."""
    tok = AutoTokenizer.from_pretrained(model)
    valid = make_synthetic_qa(12, seed=9)
    cfg = TrainConfig(backbone="tiny-bert", model_path=str(model), output_dir=str(out), batch_size=batch_size,
                      grad_accum=grad_accum, epochs=1, learning_rate=1e-3, warmup_ratio=0.1, save_steps=SAVE_STEPS,
                      logging_steps=1, experiment_log=str(out / "experiments.jsonl"))
    recorder = Recorder(QACollator(tok))
    train_fold(valid, cfg, valid_df=valid, train_dataset=dataset, sequential=True, data_collator=recorder,
               resume=resume, callbacks=[StopAt(stop_at)])
    (out / f"batches{os.environ.get('RANK', '0')}.json").write_text(json.dumps([b["order"] for b in recorder.batches]))


def main(out: Path) -> None:
    model = dropout_free(ensure_tiny(MODELS)["tiny-bert"], out / "tiny-bert-no-dropout")
    ds = recipe_dataset(AutoTokenizer.from_pretrained(model))
    ds = ds.select(range(len(ds) - len(ds) % GLOBAL_BATCH))  # whole steps only: no short last batch to even out
    launch(run, (out / "two", model, ds, GLOBAL_BATCH, 1), 2)
    launch(run, (out / "resumed", model, ds, GLOBAL_BATCH, 1, False, SAVE_STEPS), 2)
    launch(run, (out / "resumed", model, ds, GLOBAL_BATCH, 1, True), 2)
    run(out / "one", model, ds, GLOBAL_BATCH // 2, 2)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
