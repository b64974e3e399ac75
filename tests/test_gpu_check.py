"""`make gpu-check`'s pieces on the CPU with tiny shapes: each shaped model builds and trains, its windows/s become
TFLOPS against the sizing's assumption, the GPU's peak is read from its name, and without CUDA the script says so
and exits non-zero."""
import pytest

from research.bench import gpu_check as gc
from src.kaggle.sizing_facts import SHAPES, UTILISATION, Shape
from src.kaggle.sizing_windows import flops_per_window

TINY = Shape(2, 64, 128, 4, 500, positions=130)
TINY_REMBERT = Shape(2, 64, 128, 4, 500, embedding=32, positions=130)


@pytest.mark.parametrize("name", gc.SHAPED)
def test_each_shaped_model_builds_from_its_shape_and_trains_and_predicts(name):
    import torch

    torch.set_num_threads(1)
    shape = TINY_REMBERT if name == "rembert" else TINY
    config = gc.shaped_config(name, shape)
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size, config.vocab_size) == (2, 64, 128,
                                                                                                           500)
    assert type(config).__name__ == {"muril-large": "BertConfig", "rembert": "RemBertConfig",
                                     "xlm-roberta-large": "XLMRobertaConfig"}[name]
    if name == "rembert":
        assert config.input_embedding_size == 32
    assert gc.train_windows_per_s(config, "cpu", batch=2, length=16, steps=2, warmup=1) > 0
    assert gc.predict_windows_per_s(config, "cpu", batch=2, length=16, repeats=1) > 0
    # the large shapes are the sizing's own (the real configs' layers, widths and vocabularies)
    big = gc.shaped_config(name, SHAPES[name])
    assert (big.num_hidden_layers, big.hidden_size, big.vocab_size) == (SHAPES[name].layers, SHAPES[name].hidden,
                                                                        SHAPES[name].vocab)


def test_windows_per_s_become_tflops_against_the_sizings_assumption():
    shape = SHAPES["muril-large"]
    fwd = flops_per_window(shape.layers, shape.hidden, shape.ffn, 384)
    row = gc.throughput_row("muril-large", shape, train_wps=100.0, predict_wps=400.0, batch=8, peak=65.0)
    assert row["train TFLOPS"] == round(3 * fwd * 100 / 1e12, 1) and row["predict TFLOPS"] == round(fwd * 400 / 1e12, 1)
    assert row["train % of peak"] == round(100 * 3 * fwd * 100 / 1e12 / 65.0, 1)
    assert row["sizing assumes %"] == round(100 * UTILISATION, 1)
    # at the assumed share of a T4's peak, the windows/s the sizing's hours rest on
    assert row["assumed train windows/s"] == round(UTILISATION * 65e12 / (3 * fwd), 1)
    unknown = gc.throughput_row("muril-large", shape, 100.0, 400.0, 8, peak=None)
    assert "train % of peak" not in unknown and unknown["train windows/s"] == 100.0
    table = gc.format_rows([row, unknown])
    assert table.splitlines()[0].startswith("| model | batch | train windows/s") and "muril-large-shaped" in table


def test_the_gpu_peak_comes_from_the_name_torch_reports():
    assert gc.peak_tflops("Tesla T4") == 65.0 and gc.peak_tflops("Tesla P100-PCIE-16GB") == 18.7
    assert gc.peak_tflops("NVIDIA A10G") == 125.0 and gc.peak_tflops("NVIDIA H100 80GB HBM3") == 756.0
    assert gc.peak_tflops("Some Future GPU") is None


def test_a_shaped_model_directory_loads_with_the_tiny_tokenizer(tmp_path, tiny_dirs):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    out = gc.shaped_model_dir("muril-large", tiny_dirs["tiny-bert"], tmp_path / "m", shape=TINY)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForQuestionAnswering.from_pretrained(out)
    assert model.config.vocab_size == len(tok) and model.config.num_hidden_layers == 2


def test_without_cuda_it_says_so_and_exits_non_zero(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gc.main(["--skip-notebooks"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "no CUDA GPU here" in err and "needs one" in err
