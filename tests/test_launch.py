"""Every GPU a kernel has: training on n processes (DDP) is one GPU's training; inference spread over n processes
gives the same submission. Checked here with 2 CPU processes (gloo), as no GPU is lent to the tests."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.common.paths import REPO_ROOT
from src.infer.devices import process_count, shares
from src.train.partition import split_batch

WORKER = REPO_ROOT / "tests" / "launch_worker.py"
LOSS_RTOL = 1e-4   # per logged step; the same windows and weights differ only in the order of float sums


def test_split_batch_keeps_one_gpus_global_batch():
    assert split_batch(16, 1, 1) == (16, 1)
    assert split_batch(16, 1, 2) == (8, 1)        # the batch divides
    assert split_batch(4, 4, 2) == (2, 4)         # muril-large's 4 x 4 on T4 x2
    assert split_batch(5, 4, 2) == (5, 2)         # else the accumulation
    assert split_batch(6, 2, 4) == (3, 1)         # else the largest per-device batch up to batch_size
    with pytest.raises(ValueError, match="does not split over 4"):
        split_batch(6, 1, 4)
    for batch in range(1, 9):
        for accum in range(1, 5):
            for n in range(1, 5):
                try:
                    per_device, steps = split_batch(batch, accum, n)
                except ValueError:
                    assert batch * accum % n
                    continue
                assert per_device * steps * n == batch * accum and per_device <= batch


def test_process_count_is_one_per_gpu_unless_told():
    assert process_count(0, gpus=0) == 1 and process_count(0, gpus=2) == 2
    assert process_count(1, gpus=2) == 1 and process_count(2, gpus=0) == 2     # CPU processes: tests, simulation
    with pytest.raises(ValueError, match="2 GPU"):
        process_count(3, gpus=2)
    with pytest.raises(ValueError):
        process_count(-1, gpus=0)


def test_shares_deal_models_round_robin():
    assert shares(13, 2) == [list(range(0, 13, 2)), list(range(1, 13, 2))]
    assert shares(1, 2) == [[0]]


def history(path: Path) -> list[dict]:
    return [h for h in json.loads(path.read_text()) if "loss" in h]


@pytest.mark.skipif(sys.platform != "linux", reason="the gloo launch test runs on Linux CI")
def test_two_processes_train_as_one_gpu_would(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, str(WORKER), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"

    # the same windows in the same order: process 0 trains micro-batches 0, 2, 4 ..., process 1 1, 3, 5 ..., and
    # one process with 8 x 2 trains 0, 1, 2, ... (every step the same 16 consecutive windows of the recipe)
    single = json.loads((one / "batches0.json").read_text())
    ranks = [json.loads((two / f"batches{r}.json").read_text()) for r in (0, 1)]
    assert len(single) >= 10 and [b for pair in zip(*ranks, strict=True) for b in pair] == single
    assert [o for b in single for o in b] == list(range(8 * len(single)))

    # the same loss curve and learning-rate schedule, step by step
    h1, h2 = history(one / "log_history.json"), history(two / "log_history.json")
    assert [h["step"] for h in h1] == [h["step"] for h in h2] == list(range(1, len(single) // 2 + 1))
    np.testing.assert_allclose([h["loss"] for h in h2], [h["loss"] for h in h1], rtol=LOSS_RTOL)
    np.testing.assert_allclose([h["learning_rate"] for h in h2], [h["learning_rate"] for h in h1], rtol=1e-9)
    m1, m2 = (json.loads((d / "metrics.json").read_text())["metrics"] for d in (one, two))
    assert (m1["processes"], m1["per_device_batch"], m1["grad_accum_steps"]) == (1, 8, 2)
    assert (m2["processes"], m2["per_device_batch"], m2["grad_accum_steps"]) == (2, 8, 1)

    # rank 0 alone scored and wrote: one experiment-log row, one model, one oof.csv over the held-out rows
    rows = (two / "experiments.jsonl").read_text().splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["metrics"]["processes"] == 2
    assert (two / "model" / "config.json").is_file() and len(pd.read_csv(two / "oof.csv")) == m2["n_valid"]

    # resumed on 2 processes from the checkpoint at step 4: the same steps 5.. as without the interruption
    h3 = history(resumed / "log_history.json")
    assert [h["step"] for h in h3] == [h["step"] for h in h2]
    np.testing.assert_allclose([h["loss"] for h in h3], [h["loss"] for h in h2], rtol=LOSS_RTOL)
    resumed_batches = json.loads((resumed / "batches0.json").read_text())
    assert resumed_batches == ranks[0][4:]                      # it trained only the batches after the checkpoint


@pytest.mark.skipif(sys.platform != "linux", reason="the gloo launch test runs on Linux CI")
def test_notebook_03_trains_through_the_launcher(tmp_path, tiny_dirs):
    """num_processes=2 in notebook 03: a recipe trained by 2 forked CPU processes; the notebook reads back the
    result rank 0 wrote."""
    from src.notebooks.run import run_notebook
    from src.train.recipe import Augment, Recipe, Source, Stage

    data = tmp_path / "data"
    data.mkdir()
    train = pd.read_csv(REPO_ROOT / "input" / "train.csv", dtype=str, keep_default_na=False)
    train.head(40).to_csv(data / "train.csv", index=False)
    chaii = Source("chaii", "chaii")
    recipe = Recipe("two-stage", [Stage("one", [chaii], 128, 48), Stage("two", [chaii], 128, 48)],
                    Augment(random_crop=True, progressive=False, negative_fraction=0.5))
    (tmp_path / "recipe.json").write_text(json.dumps(recipe.to_dict()))
    run = tmp_path / "run"
    log = tmp_path / "experiments.jsonl"
    executed = run_notebook("03_recipe_training", tmp_path, dict(
        data_dir=str(data), models_dir=str(tiny_dirs["tiny-bert"].parent), backbone="tiny-bert",
        output_dir=str(run), epochs=1, batch_size=8, save_steps=10_000, recipe=str(tmp_path / "recipe.json"),
        experiment_log=str(log), num_processes=2), progress=False)
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert (metrics["processes"], metrics["per_device_batch"], metrics["recipe"]) == (2, 4, "two-stage")
    assert len(log.read_text().splitlines()) == 1
    text = executed.read_text()
    assert "training on 2 CPU processes (DDP, gloo): per-device batch 4" in text
    assert "'processes': 2" in text                                # result.metrics, read back from the run folder


def test_submission_on_two_processes_is_byte_identical(tmp_path, tiny_dirs):
    """Models dealt out to 2 spawned processes and merged back in order: the same submission.csv, byte for byte."""
    from src.blend.ensemble import predict_answers
    from src.blend.submission import make_submission, write_submission

    test = pd.read_csv(REPO_ROOT / "input" / "test.csv", dtype=str, keep_default_na=False)
    bert, xlmr = str(tiny_dirs["tiny-bert"]), str(tiny_dirs["tiny-xlmr"])
    dirs = [bert, xlmr, bert]      # 2 models in one process, 1 in the other: the merge must restore the order
    written = {}
    for n in (1, 2):
        answers = predict_answers(test, dirs, weights=[1.0, 1.0, 0.5], num_processes=n)
        written[n] = write_submission(make_submission(test, answers), test["id"], tmp_path / f"sub{n}.csv")
    assert written[1].read_bytes() == written[2].read_bytes()
    assert len(pd.read_csv(written[2])) == len(test)


def test_the_simulation_sets_a_built_kernels_parameter(tmp_path):
    """`make e2e` runs one training kernel and the submit kernel with num_processes=2: the override is appended to
    the built kernel's injected parameters and wins over them, the others stay as built."""
    from research.kaggle_sim.sim import set_parameters
    from src.kaggle.build import build

    *training, submit = build(tmp_path, "e2e-user", {"muril-large": 2}, wheels=False)
    set_parameters(training[0], num_processes=2)

    def parameters(folder):
        nb = json.loads(next(folder.glob("*.ipynb")).read_text())
        cell = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
        scope = {}
        exec("".join(cell["source"]), scope)
        return scope

    first, second = parameters(training[0]), parameters(training[1])
    assert first["num_processes"] == 2 and "num_processes" not in second
    assert (first["backbone"], first["fold"]) == ("muril-large", 0) and first["recipe"] == second["recipe"]
