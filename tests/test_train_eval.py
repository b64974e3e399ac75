"""Evaluation during training, best-checkpoint choice, bf16 on CPU and the experiment-log row of `train_fold`."""

import os
import subprocess

import pytest

from src.common.paths import REPO_ROOT
from src.data.synthetic import make_synthetic_qa
from src.infer.precision import bf16_support
from src.train import explog
from src.train.fold import TrainConfig, train_fold


def cfg_for(tiny_dirs, tmp_path, **kw):
    base = dict(backbone="tiny-bert", model_path=str(tiny_dirs["tiny-bert"]), output_dir=str(tmp_path), epochs=2,
                batch_size=8, max_length=128, doc_stride=48, save_steps=10_000, logging_steps=2)
    return TrainConfig(**{**base, **kw})


def test_evaluation_every_n_steps_is_logged_with_the_loss_and_the_best_checkpoint_is_kept(qa_split, tiny_dirs, tmp_path,
                                                                                             experiment_log):
    train, valid = qa_split
    valid = valid.assign(answers=[[a, "extra gold"] for a in valid["answer_text"]])
    r = train_fold(train, cfg_for(tiny_dirs, tmp_path, eval_steps=4, metric_for_best="nonzero_all"),
                   valid_df=valid)
    evals = [h for h in r.log_history if "eval_jaccard_all" in h]
    assert [h["step"] for h in evals] == [4, 8, 12]                       # 48 rows / 8 x 2 epochs = 12 steps
    assert any("loss" in h for h in r.log_history)
    for h in evals:
        assert {"eval_em_all", "eval_f1_all", "eval_nonzero_all", "eval_jaccard_hindi"} <= set(h)
        assert 0 <= h["eval_jaccard_all"] <= 1
    best = max(evals, key=lambda h: h["eval_nonzero_all"])                # first maximum wins, as the Trainer's
    assert r.metrics["best_checkpoint"].endswith(f"checkpoint-{best['step']}")
    # the final scores are of the best checkpoint's weights, recomputed by the same post-processing
    assert r.metrics["nonzero_all"] == pytest.approx(best["eval_nonzero_all"], abs=1e-4)
    assert r.metrics["jaccard_all_lo"] <= r.metrics["jaccard_all"] <= r.metrics["jaccard_all_hi"]
    rows = explog.read_log(experiment_log)                                 # the conftest's temporary log
    assert len(rows) == 1 and rows[0]["metrics"]["jaccard_all"] == r.metrics["jaccard_all"]
    assert rows[0]["data"]["train"]["rows"] == 48 and rows[0]["data"]["valid"]["rows"] == 12
    assert rows[0]["config"]["eval_steps"] == 4 and rows[0]["machine"]["cpus"]
    assert isinstance(rows[0]["machine"]["cpu_bf16"], bool)               # runs from different CPUs share the log


def test_cpu_model_reads_the_model_name():
    info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2\n"
    assert explog.cpu_model(info) == "AMD EPYC 9B14"
    assert explog.cpu_model("processor\t: 0\nFeatures\t: neon\n") == ""   # e.g. some ARM kernels name none


def test_machine_names_the_malloc_settings_a_timing_ran_under(monkeypatch):
    """The Makefile's malloc settings halve a CPU step: a row's time means nothing without them."""
    for k in explog.MALLOC_ENV:
        monkeypatch.delenv(k, raising=False)
    assert "malloc" not in explog.machine()
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "17179869184")
    assert explog.machine()["malloc"] == {"MALLOC_TRIM_THRESHOLD_": "17179869184"}


def test_make_exports_the_malloc_settings():
    """Every target's commands (trainings among them) see them in their environment."""
    env = {k: v for k, v in os.environ.items() if k not in explog.MALLOC_ENV}
    show = "show-malloc: ; @echo $$MALLOC_MMAP_THRESHOLD_ $$MALLOC_TRIM_THRESHOLD_"
    out = subprocess.run(["make", "-s", "--eval", show, "show-malloc"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["33554432", "17179869184"]


def test_metric_for_best_needs_evaluation(tiny_dirs, tmp_path):
    from src.train.fold import training_arguments
    with pytest.raises(ValueError, match="eval_steps"):
        training_arguments(cfg_for(tiny_dirs, tmp_path, metric_for_best="jaccard_all").resolved())


def test_bf16_trains_a_few_steps_on_cpu_or_says_why_not(qa_split, tiny_dirs, tmp_path, capsys):
    train, valid = qa_split
    ok, why = bf16_support()
    r = train_fold(train, cfg_for(tiny_dirs, tmp_path, bf16=True, epochs=1, experiment_log=""), valid_df=valid)
    assert r.metrics["bf16"] is ok
    losses = [h["loss"] for h in r.log_history if "loss" in h]
    assert losses and all(loss == loss and loss < 20 for loss in losses)              # finite, not diverged
    if not ok:
        assert why in capsys.readouterr().out


def test_bf16_falls_back_to_fp32_with_its_reason(tiny_dirs, tmp_path, monkeypatch, capsys):
    from src.infer import precision
    from src.train.fold import training_arguments
    monkeypatch.setattr(precision, "bf16_support", lambda: (False, "no native bf16 on this test CPU"))
    args = training_arguments(cfg_for(tiny_dirs, tmp_path, bf16=True).resolved())
    assert not args.bf16 and "no native bf16 on this test CPU; training in fp32" in capsys.readouterr().out
    assert not training_arguments(cfg_for(tiny_dirs, tmp_path).resolved()).bf16     # off unless asked for


def test_log_setting_resolves_to_the_env_the_repo_or_nothing(tmp_path, monkeypatch):
    assert explog.resolve_log("") is None and explog.resolve_log("none") is None
    assert explog.resolve_log(tmp_path / "x.jsonl") == tmp_path / "x.jsonl"
    monkeypatch.setenv(explog.LOG_ENV, str(tmp_path / "env.jsonl"))
    assert explog.resolve_log("auto") == tmp_path / "env.jsonl"
    monkeypatch.delenv(explog.LOG_ENV)
    assert explog.resolve_log("auto") == explog.REPO_LOG                   # inside this git checkout


def test_report_to_maps_onto_the_trainer_and_notebook_03_exposes_the_options(tmp_path):
    import ast
    import dataclasses

    import nbformat

    from src.notebooks.batch import NOTEBOOK_DIR
    from src.train.fold import training_arguments
    cfg = TrainConfig(backbone="tiny-bert", output_dir=str(tmp_path)).resolved()
    assert training_arguments(cfg).report_to == []                                 # "none": no tracker
    assert training_arguments(dataclasses.replace(cfg, report_to="tensorboard, wandb")).report_to == [
        "tensorboard", "wandb"]
    nb = nbformat.read(NOTEBOOK_DIR / "03_recipe_training.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values = {t.id: ast.literal_eval(n.value) for n in ast.parse(cell.source).body if isinstance(n, ast.Assign)
              for t in n.targets}
    for name in ("report_to", "eval_steps", "metric_for_best", "bf16", "experiment_log"):
        assert values[name] == getattr(TrainConfig(), name), name                   # same default as the config


def test_a_grown_committed_log_does_not_make_the_commit_dirty(tmp_path):
    import subprocess
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "experiments.jsonl").write_text("")
    (repo / "code.py").write_text("x = 1\n")
    git = lambda *a: subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *a], cwd=repo, check=True,
                                    capture_output=True)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "init")
    explog.append_run(repo / "docs" / "experiments.jsonl", {"run_id": "a"})
    assert not explog.git_commit(repo).endswith("+dirty")
    (repo / "code.py").write_text("x = 2\n")
    assert explog.git_commit(repo).endswith("+dirty")


def test_a_kernel_in_a_simulated_kaggle_tree_logs_inside_it(tmp_path, monkeypatch):
    """Outside a git checkout on Kaggle the log goes to the working dir of the tree the kernel runs in; the e2e's
    simulated kernels used to write to the machine's real /kaggle/working."""
    sim = tmp_path / "sim"
    (sim / "kaggle" / "input").mkdir(parents=True)
    monkeypatch.setattr(explog, "REPO_LOG", tmp_path / "inlined" / "docs" / "experiments.jsonl")  # no .git here
    monkeypatch.delenv(explog.LOG_ENV, raising=False)
    monkeypatch.setenv("CHAII_KAGGLE_ROOT", str(sim))
    assert explog.default_log() == sim / "kaggle" / "working" / "experiments.jsonl"


def test_group_by_length_batches_windows_of_similar_length_and_refuses_a_designed_order(qa_split, tiny_dirs, tmp_path):
    from transformers import AutoTokenizer, DataCollatorWithPadding, TrainerCallback

    from src.train.augment import MODEL_KEYS
    train = make_synthetic_qa(320, seed=4)
    # contexts cut to very different lengths, so a shuffled batch mixes short and long windows
    train["context"] = [c[: 40 + (i * 37) % len(c)] if len(c) > 40 else c for i, c in enumerate(train["context"])]
    train = train[[s < len(c) for s, c in zip(train["answer_start"], train["context"], strict=True)]]
    train = train[[c[s:s + len(a)] == a for s, a, c in zip(train["answer_start"], train["answer_text"],
                                                             train["context"], strict=True)]]
    pad = DataCollatorWithPadding(AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"]))

    class StopAfter24(TrainerCallback):   # the order is what is tested: 24 batches show it
        def on_step_end(self, args, state, control, **kw):
            control.should_training_stop = state.global_step >= 24
    spreads = {}
    for grouped in (False, True):
        seen = []

        def collate(features, seen=seen):
            lengths = [len(f["input_ids"]) for f in features]
            seen.append((min(lengths), max(lengths)))
            keys = (*MODEL_KEYS, "start_positions", "end_positions")
            return pad([{k: f[k] for k in keys if k in f} for f in features])
        train_fold(train, cfg_for(tiny_dirs, tmp_path / str(grouped), epochs=1, group_by_length=grouped,
                                  experiment_log=""), valid_df=qa_split[1], data_collator=collate,
                   callbacks=[StopAfter24()])
        spreads[grouped] = sum(hi - lo for lo, hi in seen), max(hi for _, hi in seen) - min(lo for lo, _ in seen)
    # grouped, the batches are consecutive slices of megabatches sorted by length (HF: min(50, n / 4) batches
    # each, here ~12), so 24 batches' spreads add up to about twice the whole range; shuffled, to far more
    total, whole = spreads[True]
    assert total <= 3 * whole and spreads[False][0] > 3 * total, spreads
    with pytest.raises(ValueError, match="designed order"):
        train_fold(train, cfg_for(tiny_dirs, tmp_path / "seq", group_by_length=True, experiment_log=""),
                   valid_df=qa_split[1], sequential=True)


def test_a_bf16_refusal_names_what_the_run_trains_in(monkeypatch, capsys):
    """On a GPU without bf16 (Kaggle's T4) the run trains in fp16; the message used to say fp32."""
    from types import SimpleNamespace

    from src.infer import precision

    monkeypatch.setattr(precision, "bf16_support", lambda device=None: (False, "compute capability 7.5 < 8"))
    assert precision.use_bf16(SimpleNamespace(bf16=True), fallback="fp16") is False
    assert "training in fp16" in capsys.readouterr().out
    assert precision.use_bf16(SimpleNamespace(bf16=False)) is False and capsys.readouterr().out == ""
