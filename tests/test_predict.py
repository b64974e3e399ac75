"""Inference settings: every precision answers, "auto" resolves per device, window settings are never silent."""
import importlib.util
import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from src.data.synthetic import make_synthetic_qa
from src.infer import predict
from src.infer.postprocess import predict_texts
from src.infer.predict import (
    WindowSettings,
    WindowSettingsWarning,
    load_model,
    offsets_array,
    predict_examples,
    resolve_precision,
    window_settings,
)

CPU = torch.device("cpu")
needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
needs_bf16 = pytest.mark.skipif(not predict.bf16_supported(CPU), reason="this CPU has no native bf16")


@pytest.fixture()
def model_dir(tiny_dirs, tmp_path):
    """tiny-bert in a folder of its own (onnx-int8 caches its export beside the model), with window settings."""
    d = tmp_path / "tiny-bert"
    shutil.copytree(tiny_dirs["tiny-bert"], d)
    (d / predict.MODEL_CONFIG).write_text(json.dumps({"max_length": 64, "doc_stride": 16}))
    return d


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=needs_bf16), "int8",
                                       pytest.param("onnx-int8", marks=needs_ort)])
def test_every_cpu_precision_gives_answers(model_dir, precision):
    df = make_synthetic_qa(6, seed=3, people=8)
    logits = predict_examples(model_dir, df, 8, device="cpu", precision=precision)
    ref = predict_examples(model_dir, df, 8, device="cpu", precision="fp32")
    assert len(logits) == len(ref) > len(df) and np.array_equal(logits.offsets, ref.offsets)
    answers = predict_texts(df, logits)
    assert set(answers) == set(df["id"]) and all(answers.values())
    real = np.isfinite(ref.start.astype(np.float32))
    assert np.array_equal(np.isfinite(logits.start.astype(np.float32)), real)
    # the same model in another arithmetic: logits close to fp32's (an untrained tiny model: no answer test)
    assert np.abs(logits.start[real].astype(np.float32) - ref.start[real].astype(np.float32)).max() < 0.5


@needs_ort
def test_onnx_export_is_cached_and_redone_when_the_weights_change(model_dir):
    from src.infer.onnx_qa import cache_dir

    load_model(model_dir, "onnx-int8", "cpu")
    onnx = cache_dir(model_dir) / "model-int8.onnx"
    first = onnx.stat().st_mtime_ns
    load_model(model_dir, "onnx-int8", "cpu")
    assert onnx.stat().st_mtime_ns == first
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes())          # same bytes, new mtime: a re-saved model
    load_model(model_dir, "onnx-int8", "cpu")
    assert onnx.stat().st_mtime_ns != first


def test_auto_resolves_to_the_measured_table(monkeypatch):
    assert resolve_precision("auto", CPU) == predict.AUTO_PRECISION["cpu"]
    monkeypatch.setitem(predict.AUTO_PRECISION, "cpu", "int8")
    assert resolve_precision("auto", CPU) == "int8"
    assert resolve_precision("fp32", CPU) == "fp32"


def test_precisions_the_device_cannot_run_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="CPU only"):
        resolve_precision("int8", torch.device("cuda"))
    with pytest.raises(ValueError, match="expected 'auto' or one of"):
        resolve_precision("int4", CPU)
    monkeypatch.setattr(predict, "bf16_supported", lambda device: False)
    with pytest.raises(ValueError, match="no native bf16"):
        resolve_precision("bf16", CPU)


def test_missing_window_settings_warn_naming_the_folder(tiny_dirs):
    with pytest.warns(WindowSettingsWarning, match=str(tiny_dirs["tiny-bert"]) + ".*max_length=384, doc_stride=128"):
        _, _, settings = load_model(tiny_dirs["tiny-bert"], device="cpu")
    assert settings == WindowSettings(384, 128)
    with warnings.catch_warnings():
        warnings.simplefilter("error", WindowSettingsWarning)        # given explicitly: nothing to warn about
        assert load_model(tiny_dirs["tiny-bert"], device="cpu", max_length=256, doc_stride=64)[2] == \
            WindowSettings(256, 64)
    with pytest.warns(WindowSettingsWarning, match="doc_stride guessed"):
        assert window_settings(tiny_dirs["tiny-bert"], max_length=256) == WindowSettings(256, 128)


def test_explicit_window_settings_override_the_saved_ones(model_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error", WindowSettingsWarning)
        assert window_settings(model_dir) == WindowSettings(64, 16)
        assert window_settings(model_dir, 128, 32) == WindowSettings(128, 32)
    df = make_synthetic_qa(4, seed=1, people=8)
    assert len(predict_examples(model_dir, df, device="cpu", max_length=128, doc_stride=32)) < \
        len(predict_examples(model_dir, df, device="cpu"))


def _offsets_loop(offset_mapping, width):
    """The per-token loop `offsets_array` replaced (the behaviour it must keep)."""
    out = np.full((len(offset_mapping), width, 2), predict.NO_OFFSET, dtype=np.int32)
    for i, offs in enumerate(offset_mapping):
        for k, o in enumerate(offs):
            if o is not None:
                out[i, k] = o
    return out


@pytest.mark.parametrize("seed", range(3))
def test_offsets_array_equals_the_loop(seed):
    rng = np.random.default_rng(seed)
    mapping = [[None if rng.random() < 0.3 else tuple(map(int, rng.integers(0, 500, 2)))
                for _ in range(rng.integers(0, 40))] for _ in range(20)] + [[], [None, None]]
    assert np.array_equal(offsets_array(mapping, 45), _offsets_loop(mapping, 45))
    assert offsets_array([], 0).shape == (0, 0, 2)


def test_of_examples_keeps_the_windows_of_those_examples_in_their_order():
    from src.infer.predict import WindowLogits
    ids = np.array(["a", "b", "a", "c"])
    start = np.arange(8, dtype=np.float16).reshape(4, 2)
    x = WindowLogits(ids, start, -start, np.zeros((4, 2, 2), np.int32))
    y = x.of_examples(["c", "a"])
    assert y.example_id.tolist() == ["a", "a", "c"]
    assert y.start.tolist() == [[0, 1], [4, 5], [6, 7]] and y.end.tolist() == [[0, -1], [-4, -5], [-6, -7]]
