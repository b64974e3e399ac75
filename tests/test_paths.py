
import dataclasses

import pytest

from src.common.paths import COMPETITION, default_paths, detect_env, require, resolve_paths
from src.train.backbones import resolve_model_path


def test_kaggle_layout_under_a_simulated_root(tmp_path):
    p = default_paths("kaggle", root=tmp_path)
    assert p.data_dir == tmp_path / "kaggle" / "input" / COMPETITION
    assert p.models_dir == tmp_path / "kaggle" / "input"
    assert p.work_dir == tmp_path / "kaggle" / "working"


def test_overrides_win_and_missing_files_are_named(tmp_path):
    p = resolve_paths(data_dir=tmp_path, work_dir=tmp_path / "out", env="local")
    assert p.data_dir == tmp_path and p.work_dir == tmp_path / "out" and p.env == "local"
    with pytest.raises(FileNotFoundError, match=r"competition file 'train.csv' not found: .*train.csv"):
        p.data_file("train.csv")
    with pytest.raises(FileNotFoundError, match="weights"):
        require(tmp_path / "nothing", "weights")


def test_detect_env(monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert detect_env() == "kaggle"
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release")
    assert detect_env() == "colab"


def test_model_lookup_local_dir_then_models_dir_then_clear_offline_error(tmp_path, monkeypatch, tiny_dirs):
    assert resolve_model_path(str(tiny_dirs["tiny-bert"])) == str(tiny_dirs["tiny-bert"])
    (tmp_path / "muril-large-cased").mkdir()
    (tmp_path / "muril-large-cased" / "config.json").write_text("{}")
    assert resolve_model_path("muril-large", tmp_path) == str(tmp_path / "muril-large-cased")
    assert resolve_model_path("rembert", tmp_path) == "google/rembert"    # online: the hub id
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"model directory for 'rembert' not found \(looked in: .*rembert"):
        resolve_model_path("rembert", tmp_path)


def test_kaggle_root_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setenv("CHAII_KAGGLE_ROOT", str(tmp_path))
    assert detect_env() != "kaggle"   # no simulated tree yet
    (tmp_path / "kaggle" / "input").mkdir(parents=True)
    assert detect_env() == "kaggle"
    assert resolve_paths().data_dir == tmp_path / "kaggle" / "input" / COMPETITION
    assert resolve_paths().work_dir == tmp_path / "kaggle" / "working"


def test_a_backbone_name_is_not_taken_for_the_runs_own_output_folder(tmp_path, monkeypatch):
    """On Kaggle the working directory holds <backbone>/fold<k>/ (the run's output, created before the model
    loads): the name must still find the weights dataset, not that half-written folder."""
    models = tmp_path / "input"
    (models / "rembert").mkdir(parents=True)
    (models / "rembert" / "config.json").write_text("{}")
    work = tmp_path / "working"
    (work / "rembert" / "fold0").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert resolve_model_path("rembert", models) == str(models / "rembert")
    (work / "my-model").mkdir()  # a directory that is not a registry name is still taken as given
    assert resolve_model_path("my-model", models) == "my-model"


def test_a_family_name_is_its_base_under_its_own_name(tmp_path, monkeypatch):
    """'<backbone>@<tag>': the base's hyperparameters and weights, its own name (its runs and vote are its own)."""
    from src.train.backbones import family_base, get_backbone

    family = get_backbone("rembert@short_ctx-2")
    assert family.name == "rembert@short_ctx-2" and family_base(family.name) == "rembert"
    assert family == dataclasses.replace(get_backbone("rembert"), name="rembert@short_ctx-2")
    models = tmp_path / "input"
    (models / "rembert").mkdir(parents=True)
    (models / "rembert" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rembert@short").mkdir()  # the family's own output folder is not its weights
    assert resolve_model_path("rembert@short", models) == resolve_model_path("rembert", models) == \
        str(models / "rembert")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"'muril-large@x' not found \(looked in: .*/muril-large, "
                                                r".*/muril-large-cased"):
        resolve_model_path("muril-large@x", models)
    for bad, error in [("rembert@Short", ValueError), ("rembert@", ValueError), ("rembert@a@b", ValueError),
                       ("rembert@a b", ValueError), ("bert-base@x", KeyError)]:
        with pytest.raises(error, match=r"registered: \[.*'rembert'.*<registered backbone>@<tag>|"
                                        r"<registered backbone>@<tag>.*registered: \[.*'rembert'"):
            get_backbone(bad)
