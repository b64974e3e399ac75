"""Checkpoints kept as models (`TrainConfig.export_steps`, src/train/exports.py) and runs that hold no row out
(fold -1), trained on the tiny backbone: the exported model is the model of that step, scored on the held-out rows as
a run folder of its own; a step past the run stops it before training; a run without out-of-fold rows is left out of
the blend's fit and averaged into its backbone at inference."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from src.blend.ensemble import predict_answers, resolve_blend, use_blend, without_oof
from src.common.paths import REPO_ROOT
from src.train import exports
from src.train.fold import train_fold
from src.train.fold_outputs import read_fold_result
from tests.test_train_eval import cfg_for


def test_steps_are_parsed_and_scaled_to_the_runs_length():
    assert exports.parse_steps("7000") == [7000] and exports.parse_steps(" 4000, 1000,") == [1000, 4000]
    assert exports.parse_steps("") == []
    with pytest.raises(ValueError, match=r"export_steps 'x': \['x'\] is not a positive whole number"):
        exports.parse_steps("x")
    # his 71 kept step 7000 of 7261: a run of 6900 steps keeps the same point of its schedule
    assert exports.scaled_steps([7000], 7261, 6900) == {7000: round(7000 * 6900 / 7261)}
    assert exports.scaled_steps([1000], 0, 1949) == {1000: 1000}
    with pytest.raises(ValueError, match=r"export_steps \[7000\]: past this run's 6900 optimizer steps"):
        exports.scaled_steps([7000], 0, 6900)


def test_an_exported_checkpoint_keeps_its_runs_fold_in_the_blend():
    from src.blend.oof import run_fold

    assert [run_fold(r) for r in ("rembert/fold2", "fold2/step1000", "kernel-fold9/rembert/fold1", "rembert/all",
                               "x/fold1x")] == [2, 2, 1, -1, -1]


@pytest.fixture(scope="module")
def exported(qa_split, tiny_dirs, tmp_path_factory):
    """48 rows / batch 8 x 2 epochs = 12 steps; step 4 named as step 400 of a planned run of 1,200 steps."""
    from transformers import TrainerCallback

    seen = {}

    class Weights(TrainerCallback):     # the model's weights as they are at step 4
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step == 4:
                seen.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    out = tmp_path_factory.mktemp("run") / "tiny-bert" / "fold0"
    train, valid = qa_split
    result = train_fold(train, cfg_for(tiny_dirs, out, export_steps="400", export_steps_of=1200), valid_df=valid,
                        callbacks=[Weights()])
    return result, out, seen


def test_a_named_step_is_exported_as_a_scored_run_folder(exported, qa_split):
    from transformers import AutoModelForQuestionAnswering

    result, out, at_step_4 = exported
    step = out / "step400"
    for name in ("model/config.json", "model/chaii_config.json", "oof.csv", "oof_logits.npz", "metrics.json"):
        assert (step / name).is_file() and (out / name).is_file(), name
    metrics = json.loads((step / "metrics.json").read_text())
    assert (metrics["metrics"]["step"], metrics["metrics"]["named_step"], metrics["metrics"]["n_valid"]) == (4, 400, 12)
    assert metrics["config"]["output_dir"] == str(step) and metrics["config"]["backbone"] == "tiny-bert"
    assert 0 <= metrics["metrics"]["jaccard_all"] <= 1 and len(pd.read_csv(step / "oof.csv")) == 12
    exported_model = AutoModelForQuestionAnswering.from_pretrained(step / "model").state_dict()
    final = AutoModelForQuestionAnswering.from_pretrained(out / "model").state_dict()
    name = "qa_outputs.weight"
    assert np.allclose(exported_model[name].numpy(), at_step_4[name].numpy())    # the weights of step 4 ...
    assert not np.allclose(exported_model[name].numpy(), final[name].numpy())    # ... not the final ones
    assert result.metrics["n_valid"] == 12 and not without_oof(step) and not without_oof(out)


def test_a_step_past_the_run_stops_it_before_training(qa_split, tiny_dirs, tmp_path):
    train, valid = qa_split
    with pytest.raises(ValueError, match=r"export_steps \[50\]: past this run's 12 optimizer steps"):
        train_fold(train, cfg_for(tiny_dirs, tmp_path, export_steps="50"), valid_df=valid)
    assert not (tmp_path / "model").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="the gloo launch test runs on Linux CI")
def test_a_checkpoint_is_exported_from_a_run_on_two_processes(tmp_path):
    """Every process scores at the export step (as at an evaluation), the first alone writes: no process waits."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "export_ddp_worker.py"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    final, step = (json.loads((d / "metrics.json").read_text())["metrics"] for d in (run, run / "step2"))
    assert final["processes"] == 2 and step["step"] == 2 and step["n_valid"] == final["n_valid"] == 20
    assert len(pd.read_csv(run / "step2" / "oof.csv")) == 20 and (run / "step2" / "model" / "config.json").is_file()
    history = json.loads((run / "log_history.json").read_text())
    assert [h["step"] for h in history if "eval_jaccard_all" in h][:1] == [2]


@pytest.fixture(scope="module")
def all_rows(qa_split, tiny_dirs, tmp_path_factory):
    """fold -1 of his split: every row trains, none is scored (his 126); its step 4 is exported too."""
    out = tmp_path_factory.mktemp("all") / "tiny-bert" / "all"
    train, _ = qa_split
    cfg = cfg_for(tiny_dirs, out, fold=-1, n_folds=3, split="winner", export_steps="4", seed=3)
    return train_fold(train, cfg), out


def test_a_run_that_holds_no_row_out_saves_its_models_without_oof(all_rows, qa_split, tiny_dirs, tmp_path):
    result, out = all_rows
    assert result.metrics["n_valid"] == 0 and "jaccard_all" not in result.metrics
    assert result.metrics["n_train_windows"] >= len(qa_split[0])                # every row trained
    for run in (out, out / "step4"):
        assert (run / "model" / "config.json").is_file() and not (run / "oof.csv").exists()
        assert not (run / "oof_logits.npz").exists() and without_oof(run)
    assert read_fold_result(out).oof.empty
    with pytest.raises(ValueError, match="fold -1 holds no row out, so eval_steps/metric_for_best have nothing"):
        train_fold(qa_split[0], cfg_for(tiny_dirs, tmp_path, fold=-1, n_folds=3, split="winner", eval_steps=2))


def test_the_fitted_blend_leaves_a_run_without_oof_out_and_averages_its_model_in(exported, all_rows, qa_split,
                                                                                  tmp_path, capsys):
    (_, scored, _), (_, unscored) = exported, all_rows
    train = pd.concat(qa_split).drop(columns="source")
    train.to_csv(tmp_path / "train.csv", index=False)
    dirs = [str(scored / "model"), str(unscored / "model")]
    settings = resolve_blend("oof", dirs, tmp_path / "train.csv", tmp_path / "work")
    assert settings.cv["without_oof"] == [str(unscored)] and "not in the fit" in capsys.readouterr().out
    assert settings.runs == {"tiny-bert": ["tiny-bert/fold0"]}
    assert use_blend(dirs, settings) == dirs                               # both models of the backbone are used
    questions = qa_split[1].head(4)
    # with the blend: the two models averaged with equal weights, as without one (the winner's average)
    assert predict_answers(questions, dirs, blend=settings) == predict_answers(questions, dirs)
    with pytest.raises(FileNotFoundError, match="no out-of-fold logits"):      # a run that should have them
        resolve_blend("oof", [str(tmp_path / "missing" / "fold0" / "model")], tmp_path / "train.csv", tmp_path)
