"""precision="onnx-int8": a QA model exported to ONNX once, its MatMuls quantized to int8 by ONNX Runtime, cached.

ONNX Runtime's dynamic int8 kernels (uint8 activations x int8 weights, VNNI on x86) are the usual fastest way to
run an encoder on a CPU. The export is cached next to the model (or under the user cache when the model folder is
read-only, as a Kaggle dataset is) and redone when the weights change. Needs `onnxruntime`, `onnx`, `onnxscript`.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from src.common.io import atomic_path, write_json
from src.common.paths import CACHE_DIR

ONNX_DIR = "onnx-int8"   # the cache folder's name beside the model


@dataclass
class QAOutput:
    start_logits: torch.Tensor
    end_logits: torch.Tensor


class OnnxQAModel:
    """An ONNX Runtime session that `predict_windows` calls like a transformers QA model (CPU only)."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, **batch: torch.Tensor) -> QAOutput:
        feed = {k: batch[k].cpu().numpy() for k in self.input_names}
        start, end = self.session.run(["start_logits", "end_logits"], feed)
        return QAOutput(torch.from_numpy(start), torch.from_numpy(end))


class _Logits(torch.nn.Module):
    """The QA model with tuple outputs and keyword inputs fixed by name, as the exporter wants them."""

    def __init__(self, model, input_names: list[str]):
        super().__init__()
        self.model, self.input_names = model, input_names

    def forward(self, *inputs):
        out = self.model(**dict(zip(self.input_names, inputs, strict=True)))
        return out.start_logits, out.end_logits


def cache_dir(model_dir: Path) -> Path:
    """`<model_dir>/onnx-int8` when the model folder is writable, else one under the user cache per folder."""
    if os.access(model_dir, os.W_OK):
        return model_dir / ONNX_DIR
    return CACHE_DIR / ONNX_DIR / hashlib.sha1(str(model_dir.resolve()).encode()).hexdigest()[:16]


def _weights_stamp(model_dir: Path) -> dict:
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(model_dir.glob("*.safetensors"))
            or sorted(model_dir.glob("*.bin"))}


def export_int8(model_dir: Path, input_names: list[str], out: Path) -> Path:
    """Export the fp32 model (eager attention: the exporter's plainest graph) and quantize its weights to int8."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, local_files_only=True,
                                                          attn_implementation="eager").eval()
    example = tuple(torch.ones((2, 16), dtype=torch.long) for _ in input_names)
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / "model-fp32.onnx"
    dims = {n: {0: "batch", 1: "sequence"} for n in input_names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Logits(model, input_names), example, str(fp32), input_names=input_names,
                          output_names=["start_logits", "end_logits"], dynamo=False, dynamic_axes=dims,
                          opset_version=17)
    # fuse attention, LayerNorm and GELU into ORT's transformer kernels first (its documented BERT int8 recipe)
    from onnxruntime.transformers.optimizer import optimize_model
    fused = out / "model-fused.onnx"
    optimize_model(str(fp32), model_type="bert", num_heads=0, hidden_size=0).save_model_to_file(str(fused))
    with atomic_path(out / "model-int8.onnx") as tmp:
        # the fused ops are com.microsoft ones, which ONNX shape inference cannot type: say their tensors are float
        quantize_dynamic(str(fused), str(tmp), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    fp32.unlink()
    fused.unlink()
    return out / "model-int8.onnx"


def load_onnx_int8(model_dir: str | os.PathLike, tokenizer, threads: int | None = None) -> OnnxQAModel:
    """The int8 ONNX session for the model in `model_dir`, exported on first use (and when the weights change)."""
    model_dir = Path(model_dir)
    out = cache_dir(model_dir)
    stamp = {"weights": _weights_stamp(model_dir), "inputs": [n for n in ("input_ids", "attention_mask",
                                                                           "token_type_ids")
                                                               if n in tokenizer.model_input_names]}
    meta = out / "export.json"
    fresh = meta.exists() and json.loads(meta.read_text()) == stamp and (out / "model-int8.onnx").exists()
    if not fresh:
        export_int8(model_dir, stamp["inputs"], out)
        write_json(stamp, meta)
    return OnnxQAModel(out / "model-int8.onnx", threads)



