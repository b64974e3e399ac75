"""Batch reruns: registry parameters per backbone, a killed run resumes from its checkpoint, complete runs are
skipped, and a failing run is reported without stopping the others."""
import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from src.common.paths import REPO_ROOT
from src.data.synthetic import make_synthetic_qa
from src.notebooks import batch
from src.train.fold_outputs import last_complete_checkpoint


def test_real_parameter_sets_train_their_tiny_stand_ins(tmp_path):
    runs = batch.plan_runs(["muril-large", "rembert"], [0, 2], tmp_path, "data", "models", tiny=True,
                           overrides={"epochs": 1}, fail_run=True)
    assert [r.name for r in runs] == ["muril-large/fold0", "muril-large/fold2", "rembert/fold0", "rembert/fold2",
                                      "missing-weights/fold0"]
    muril, rembert = runs[1].parameters, runs[2].parameters
    assert muril["backbone"] == "muril-large" and muril["learning_rate"] == 3e-5 and muril["grad_accum"] == 4
    assert muril["model_path"] == os.path.join("models", "tiny-bert") and muril["fold"] == 2
    assert rembert["learning_rate"] == 1.5e-5 and rembert["model_path"] == os.path.join("models", "tiny-xlmr")
    assert muril["epochs"] == 1 and muril["output_dir"] == str(tmp_path / "muril-large" / "fold2")
    assert "model_path" not in runs[-1].parameters and runs[-1].parameters["models_dir"].endswith("empty")


def test_overrides_are_checked_against_the_notebook():
    names = batch.notebook_parameters("03_recipe_training")
    assert {"backbone", "fold", "model_path", "output_dir", "resume"} <= set(names)
    allowed = set(names) | {"save_steps"}
    assert batch.parse_overrides(["epochs=1", "learning_rate=2e-5", "backbone=rembert", "save_steps=5"], allowed) == \
        {"epochs": 1, "learning_rate": 2e-5, "backbone": "rembert", "save_steps": 5}
    with pytest.raises(ValueError, match="lerning_rate: not a parameter of notebook 03"):
        batch.parse_overrides(["lerning_rate=1"], allowed)
    with pytest.raises(ValueError, match="expected key=value"):
        batch.parse_overrides(["epochs"], allowed)


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the batch process and what it started (the papermill kernel runs in its own session)."""
    parent = psutil.Process(proc.pid)
    procs = parent.children(recursive=True) + [parent]
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)


def test_killed_run_resumes_complete_run_is_skipped_failed_run_is_reported(tmp_path, tiny_dirs, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # batch.main sets it for --tiny; restored after the test
    data = tmp_path / "data"
    data.mkdir()
    make_synthetic_qa(40, seed=3).drop(columns="source").to_csv(data / "train.csv", index=False)
    runs_dir = tmp_path / "runs"
    args = ["--backbones", "tiny-bert", "--runs-dir", str(runs_dir), "--data-dir", str(data), "--tiny",
            "--models-dir", str(tiny_dirs["tiny-bert"].parent), "--no-progress",
            "--set", "epochs=12", "--set", "batch_size=2", "--set", "save_steps=8", "--set", "logging_steps=8"]
    run_dir = runs_dir / "tiny-bert" / "fold0"

    # 1. kill the run as soon as it has saved a complete checkpoint
    proc = subprocess.Popen([sys.executable, "-m", "src.notebooks.batch", *args], cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not list(run_dir.glob("checkpoints/checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, "batch ended before it saved a checkpoint"
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.2)
    finally:
        _kill_tree(proc)
    assert not (run_dir / "metrics.json").exists() and not (run_dir / batch.DONE).exists(), "run was not midway"
    ckpt = last_complete_checkpoint(run_dir)
    step = int(ckpt.name.split("-")[1])
    # tag the saved state: only a run that loads this checkpoint carries the tag to its final state
    state = json.loads((ckpt / "trainer_state.json").read_text())
    state["log_history"].append({"step": step, "resumed_marker": step})
    (ckpt / "trainer_state.json").write_text(json.dumps(state))

    # 2. rerun with a deliberately failing run: the killed run resumes and completes, the failure is reported
    # relative paths, as typed on a command line (papermill runs notebooks from notebooks/, so batch resolves them)
    rel = [os.path.relpath(a, REPO_ROOT) if a.startswith(str(tmp_path)) else a for a in args]
    out = subprocess.run([sys.executable, "-m", "src.notebooks.batch", *rel, "--fail-run"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"tiny-bert/fold0: resuming from checkpoint-{step}" in out.stdout
    final = last_complete_checkpoint(run_dir)
    assert int(final.name.split("-")[1]) > step
    final_log = json.loads((final / "trainer_state.json").read_text())["log_history"]
    assert {"step": step, "resumed_marker": step} in final_log, "training restarted instead of resuming"
    done = json.loads((run_dir / batch.DONE).read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert done["metric"] == metrics["jaccard_all"]
    table = out.stdout[out.stdout.index("failed_notebook"):]
    assert "tiny-bert/fold0" in table and " ok " in table
    failed_line = next(line for line in table.splitlines() if line.strip().startswith("missing-weights/fold0"))
    failed_nb = runs_dir / "missing-weights" / "fold0" / "03_recipe_training.ipynb"
    assert "failed" in failed_line and str(failed_nb) in failed_line
    assert "model directory for 'muril-large' not found" in failed_nb.read_text()
    assert "1 failed" in out.stdout
    # each executed notebook has its HTML report beside it; the runs folder's index links both, failure marked
    index = (runs_dir / "index.html").read_text(encoding="utf-8")
    for nb in (run_dir / "03_recipe_training.ipynb", failed_nb):
        assert nb.with_suffix(".html").exists()
        assert f'href="{nb.with_suffix(".html").relative_to(runs_dir).as_posix()}"' in index
    assert "model directory for 'muril-large' not found" in failed_nb.with_suffix(".html").read_text()
    assert ">failed<" in index and f"{metrics['jaccard_all']:.4f}" in index

    # 3. a third pass skips the complete run without starting a kernel
    mtime = (run_dir / batch.DONE).stat().st_mtime_ns
    t0 = time.time()
    assert batch.main(args) == 0
    assert time.time() - t0 < 30
    assert (run_dir / batch.DONE).stat().st_mtime_ns == mtime


def test_blend_and_submit_get_every_fold(tmp_path):
    """04 gets every training run folder, 05 every model and 04's blend.json (or fits one itself without 04)."""
    runs = batch.plan_runs(["muril-large", "rembert"], [0, 1], tmp_path, "data", "models", tiny=True,
                           notebooks=batch.NOTEBOOK_NAMES)
    blend, submit = runs[-2], runs[-1]
    folds = [tmp_path / b / f"fold{k}" for b in ("muril-large", "rembert") for k in (0, 1)]
    assert blend.parameters["run_dirs"].split(",") == [str(d) for d in folds]
    assert submit.parameters["model_dirs"].split(",") == [str(d / "model") for d in folds]
    assert submit.parameters["blend"] == str(tmp_path / "blend" / "blend.json") and "blend" in submit.after
    alone = batch.plan_runs(["rembert"], [0, 1], tmp_path, "data", "models",
                            notebooks=(batch.TRAIN_NOTEBOOK, batch.SUBMIT_NOTEBOOK))
    assert alone[-1].parameters["blend"] == "oof" and "blend" not in alone[-1].after


def test_stand_in_runs_never_log_to_the_committed_experiment_log(tmp_path):
    """Tiny stand-in runs (make batch --tiny, make demo) prove the path; their rows stay beside them."""
    from src.notebooks.run import demo_parameters
    from src.train.explog import REPO_LOG

    tiny = batch.plan_runs(["muril-large"], [0], tmp_path, "data", "models", tiny=True)[0].parameters
    real = batch.plan_runs(["muril-large"], [0], tmp_path, "data", "models", tiny=False)[0].parameters
    assert tiny["experiment_log"] == str(tmp_path / "experiments.jsonl")
    assert "experiment_log" not in real  # a real run logs where notebook 03's default says (docs/ in the repo)
    demo = demo_parameters(tmp_path, tmp_path / "models")["03_recipe_training"]
    assert {p["experiment_log"] for p in demo.values()} == {str(tmp_path / "experiments.jsonl")}
    assert str(REPO_LOG) not in {tiny["experiment_log"], *(p["experiment_log"] for p in demo.values())}
