"""Worker for test_exports.py: a checkpoint exported from a run on 2 CPU processes (DDP, gloo), his split's fold 0.

    python tests/export_ddp_worker.py OUT_DIR

Its own interpreter: accelerate forks the training processes, which it refuses once a Trainer ran in the parent.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from src.data.synthetic import make_synthetic_qa  # noqa: E402
from src.train.fold import TrainConfig  # noqa: E402
from src.train.launch import launch_fold  # noqa: E402
from src.train.stand_ins import ensure_tiny  # noqa: E402
from tests.recipe_order_worker import MODELS  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1])
    os.environ["CHAII_EXPERIMENT_LOG"] = str(out / "experiments.jsonl")
    tiny = ensure_tiny(MODELS, ["tiny-bert"])["tiny-bert"]
    cfg = TrainConfig(backbone="tiny-bert", model_path=str(tiny), output_dir=str(out / "run"), epochs=1,
                      batch_size=8, max_length=128, doc_stride=48, save_steps=10_000, logging_steps=1, fold=0,
                      n_folds=3, split="winner", export_steps="2", eval_steps=2, num_processes=2)
    result = launch_fold(make_synthetic_qa(60, seed=0), cfg)
    print("processes", result.metrics["processes"], "n_valid", result.metrics["n_valid"])
