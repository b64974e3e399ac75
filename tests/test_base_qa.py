"""The base-qa build with a tiny stand-in: trains through train_fold, resumes after an interruption, is cached."""
import json

import pytest

from research.experiments import base_qa
from src.data.synthetic import make_synthetic_qa
from src.train import explog
from src.train.backbones import get_backbone, resolve_model_path


class Interrupt(Exception):
    pass


def interrupt_after_first_save():
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            raise Interrupt(f"stopped at step {state.global_step}")
    return Stop()


def test_build_resumes_caches_and_logs_one_row(tiny_dirs, tmp_path, experiment_log, capsys):
    trains = {"en_a": make_synthetic_qa(40, seed=0), "en_b": make_synthetic_qa(24, seed=3)}
    evals = {"set_x": make_synthetic_qa(8, seed=1).assign(eval_set="set_x"),
             "set_y": make_synthetic_qa(6, seed=2).assign(eval_set="set_y")}
    cfg = base_qa.BaseQAConfig(model_dir=str(tiny_dirs["tiny-bert"]), backbone="tiny-bert", max_windows=48,
                               max_length=128, doc_stride=48, batch_size=8, learning_rate=1e-3, save_steps=2)
    out = tmp_path / "base-qa"
    with pytest.raises(Interrupt, match="step 2"):
        base_qa.build(cfg, out, trains, evals, callbacks=[interrupt_after_first_save()])
    assert (out / "checkpoints" / "checkpoint-2").is_dir() and not (out / base_qa.RESULT).exists()
    assert explog.read_log(experiment_log) == []                     # an unfinished run logs nothing
    capsys.readouterr()
    res = base_qa.build(cfg, out, trains, evals)
    assert "resuming from checkpoint-2" in capsys.readouterr().out
    assert res["data"]["train_windows"] == 48 and res["data"]["eval"] == {"set_x": 8, "set_y": 6}
    table = base_qa.score_table(res["metrics"], ["set_x", "set_y"])
    assert list(table["set"]) == ["set_x", "set_y"] and (table["lo"] <= table["jaccard"]).all()
    assert (table["jaccard"] <= table["hi"]).all() and {"em", "f1"} <= set(table)
    assert not (out / "checkpoints").exists() and (out / "model" / "config.json").exists()
    rows = explog.read_log(experiment_log)
    assert [r["kind"] for r in rows] == ["base-qa"] and rows[0]["data"]["train"] == {"en_a": 40, "en_b": 24}
    assert json.loads((out / "metrics.json").read_text())["metrics"]["n_train_windows"] == 48
    # cached: the same config is found without training; another config rebuilds
    assert base_qa.build(cfg, out, trains, evals)["metrics"] == res["metrics"]
    assert "found in" in capsys.readouterr().out and len(explog.read_log(experiment_log)) == 1


def test_registry_finds_the_base_in_the_cache_dir(tmp_path, monkeypatch):
    import dataclasses

    from src.train import backbones
    b = get_backbone("e5-small-qa")
    assert b.local_dir == str(base_qa.BASE_DIR / "model") and b.max_length == 256
    built = tmp_path / "base-qa" / "model"
    monkeypatch.setitem(backbones.REGISTRY, "e5-small-qa", dataclasses.replace(b, local_dir=str(built)))
    with pytest.raises(FileNotFoundError, match="e5-small-qa"):
        resolve_model_path("e5-small-qa", tmp_path / "models")
    built.mkdir(parents=True)
    (built / "config.json").write_text("{}")
    assert resolve_model_path("e5-small-qa", tmp_path / "models") == str(built)


def test_the_default_base_keeps_the_hash_the_committed_grid_ran_on():
    # every logged ablation row names its base by this hash: a new BaseQAConfig field must not change it
    assert explog.config_hash(base_qa.BaseQAConfig().to_dict()) == "8aacb1a3f9"
    other = base_qa.BaseQAConfig(group_by_length=True, max_windows=0)
    assert other.to_dict()["group_by_length"] is True
    assert base_qa.base_dir(base_qa.BaseQAConfig()) == base_qa.BASE_DIR
    assert base_qa.base_dir(other).name == f"base-qa-{explog.config_hash(other.to_dict())}"


def test_max_windows_zero_keeps_every_window(tiny_dirs):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"])
    frames = {"a": make_synthetic_qa(30, seed=0), "b": make_synthetic_qa(20, seed=1)}
    cfg = dict(max_length=128, doc_stride=48)
    every = base_qa.train_windows(frames, tok, base_qa.BaseQAConfig(max_windows=0, **cfg))
    assert len(base_qa.train_windows(frames, tok, base_qa.BaseQAConfig(max_windows=10, **cfg))) == 10
    assert len(every) >= 50
