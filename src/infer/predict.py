"""Batched inference over all windows -> compact per-window start/end logits (`WindowLogits`).

Windows are sorted by length and padded per batch (dynamic padding), so short windows cost little; logits are kept
as float16 with the context offsets beside them, which is all post-processing and character-level blending need.
`precision` picks the arithmetic: fp32, bf16 autocast (CPU with AVX-512 BF16 / AMX, or a GPU with native bf16),
fp16 autocast (GPU), int8 (dynamic quantization of the Linear layers, CPU) or onnx-int8 (ONNX Runtime's int8
kernels, CPU; `src/infer/onnx_qa.py`); "auto" takes the measured default for the device (`AUTO_PRECISION`).
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from src.common.io import atomic_path

NO_OFFSET = -1  # offsets of non-context tokens and padding
MODEL_CONFIG = "chaii_config.json"  # window settings saved beside a fine-tuned model


@dataclass
class WindowLogits:
    """Per-window logits of one model over one set of examples (one row per window, padded to the widest)."""
    example_id: np.ndarray   # (n,) str: the example each window belongs to
    start: np.ndarray        # (n, L) float16
    end: np.ndarray          # (n, L) float16
    offsets: np.ndarray      # (n, L, 2) int32: character span of each context token, NO_OFFSET elsewhere

    def __len__(self) -> int:
        return len(self.example_id)

    def save(self, path: str | os.PathLike) -> Path:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, example_id=self.example_id, start=self.start, end=self.end, offsets=self.offsets)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WindowLogits":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["example_id"], z["start"], z["end"], z["offsets"])

    def with_logits(self, start: np.ndarray, end: np.ndarray) -> "WindowLogits":
        return WindowLogits(self.example_id, start.astype(np.float16), end.astype(np.float16), self.offsets)

    def of_examples(self, ids) -> "WindowLogits":
        """The windows of these examples only, in their order here."""
        keep = np.isin(self.example_id, np.asarray(ids))
        return WindowLogits(self.example_id[keep], self.start[keep], self.end[keep], self.offsets[keep])


def share_offsets(logits: list[WindowLogits]) -> list[WindowLogits]:
    """Models with the same tokenizer and windows hold one offsets array between them (the offsets take twice
    the memory of the float16 logits, so 13 models of 3 backbones need 3 arrays, not 13)."""
    seen: list[np.ndarray] = []
    out = []
    for x in logits:
        same = next((o for o in seen if o.shape == x.offsets.shape and np.array_equal(o, x.offsets)), None)
        if same is None:
            seen.append(x.offsets)
            same = x.offsets
        out.append(WindowLogits(x.example_id, x.start, x.end, same))
    return out


def offsets_array(offset_mapping: list[list], width: int) -> np.ndarray:
    """run_qa-style offset lists (None for non-context tokens) -> (n, width, 2) int32 with NO_OFFSET fill."""
    out = np.full((len(offset_mapping), width, 2), NO_OFFSET, dtype=np.int32)
    lengths = np.fromiter(map(len, offset_mapping), dtype=np.int64, count=len(offset_mapping))
    flat = [o for offs in offset_mapping for o in offs]
    present = np.fromiter((o is not None for o in flat), dtype=bool, count=len(flat))
    if present.any():
        # one conversion of all context offsets and one scatter, not a numpy assignment per token (20x faster)
        rows = np.repeat(np.arange(len(offset_mapping)), lengths)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[rows[present], cols[present]] = np.array([o for o in flat if o is not None], dtype=np.int32)
    return out


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------------------------------- precision

PRECISIONS = ("fp32", "bf16", "fp16", "int8", "onnx-int8")
# precision="auto" per device kind: the fastest precision whose answers equal fp32's on >= 99% of held-out
# questions with Jaccard within 0.005, measured by `make bench` (research/bench/run.py; the numbers are in
# docs/blend-and-submit.md, "Inference precision"). CUDA keeps the fp16 autocast this project always used on a
# GPU (not measured here: no GPU was lent; pass precision="fp32" to compare).
AUTO_PRECISION = {"cpu": "fp32", "cuda": "fp16"}
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def bf16_supported(device: torch.device) -> bool:
    """Native bf16 arithmetic on `device` (`precision.bf16_support`, the check training uses too)."""
    from src.infer.precision import bf16_support

    return bf16_support(device)[0]


def resolve_precision(precision: str = "auto", device: torch.device | None = None) -> str:
    """`precision` checked against the device; "auto" becomes the measured default for the device's kind."""
    device = torch.device(device) if device is not None else default_device()
    if precision == "auto":
        precision = AUTO_PRECISION.get(device.type, "fp32")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected 'auto' or one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision 'fp16' needs a CUDA GPU (device is {device}); on a CPU use bf16 or int8")
    if precision in ("int8", "onnx-int8") and device.type != "cpu":
        raise ValueError(f"precision {precision!r} runs on the CPU only (device is {device}); on a GPU use fp16")
    if precision == "bf16" and not bf16_supported(device):
        raise ValueError(f"precision 'bf16': {device} has no native bf16 arithmetic; use fp32"
                         + (" or fp16" if device.type == "cuda" else " or int8"))
    return precision


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` with every Linear layer dynamically quantized to int8 (weights int8, activations
    quantized per batch); oneDNN/FBGEMM run them with VNNI where the CPU has it."""
    if getattr(model, "chaii_int8", False):
        return model
    # torch.ao.quantization is deprecated in favour of torchao's quantize_, whose int8 path on CPU needs
    # torch.compile to be fast; the eager quantize_dynamic still exists in torch 2.13 and runs FBGEMM's kernels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        from torch.ao.quantization import quantize_dynamic
        quantized = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    quantized.chaii_int8 = True
    return quantized


# ---------------------------------------------------------------------------------------------- inference

@torch.inference_mode()
def predict_windows(model, features: dict[str, list], batch_size: int = 64, pad_token_id: int = 0,
                    device: torch.device | None = None, precision: str = "auto") -> WindowLogits:
    """Start/end logits for every window in `features` (from `prepare_eval_features`, unpadded).

    `model` is a transformers QA model or what `load_model` returned for `precision`; bf16/fp16 run under
    autocast, int8 quantizes a float model here (`load_model` does it once), onnx-int8 needs `load_model`'s
    ONNX session (it is exported from the model folder)."""
    device = torch.device(device) if device is not None else default_device()
    precision = resolve_precision(precision, device)
    if isinstance(model, torch.nn.Module):
        if precision == "onnx-int8":
            raise ValueError("precision 'onnx-int8' needs the ONNX model: load it with "
                             "load_model(model_dir, precision='onnx-int8')")
        # moved outside inference mode: a copy made under it (e.g. to "cpu:0" from "cpu", as a DDP process's
        # device is named) would turn the model's buffers into inference tensors, which the next DDP training step
        # cannot broadcast (an evaluation mid-training, `TrainConfig.eval_steps`)
        with torch.inference_mode(False):
            model = model.to(device).eval()
        if precision == "int8":
            model = quantize_int8(model)
    n = len(features["input_ids"])
    lengths = np.fromiter(map(len, features["input_ids"]), dtype=np.int64, count=n)
    width = int(lengths.max()) if n else 0
    start = np.full((n, width), -np.inf, dtype=np.float16)
    end = np.full((n, width), -np.inf, dtype=np.float16)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features]
    order = np.argsort(-lengths, kind="stable")  # longest first: a memory problem shows up on the first batch
    dtype = _AUTOCAST.get(precision)
    for b in range(0, n, batch_size):
        idx = order[b:b + batch_size]
        w = int(lengths[idx].max())
        batch = {}
        for k in keys:
            fill = pad_token_id if k == "input_ids" else 0
            arr = np.full((len(idx), w), fill, dtype=np.int64)
            for r, i in enumerate(idx):
                arr[r, :lengths[i]] = features[k][i]
            batch[k] = torch.from_numpy(arr).to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(**batch)
        s, e = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
        for r, i in enumerate(idx):
            start[i, :lengths[i]] = s[r, :lengths[i]]
            end[i, :lengths[i]] = e[r, :lengths[i]]
    return WindowLogits(np.asarray(features["example_id"]), start, end,
                        offsets_array(features["offset_mapping"], width))


@dataclass(frozen=True)
class WindowSettings:
    max_length: int = 384
    doc_stride: int = 128


class WindowSettingsWarning(UserWarning):
    """A model folder without the window settings it was trained with: inference guesses them."""


def window_settings(model_dir: str | os.PathLike, max_length: int | None = None,
                    doc_stride: int | None = None) -> WindowSettings:
    """The windows to cut at inference: the arguments where given, else the model's `chaii_config.json`, else
    384/128 with a `WindowSettingsWarning` naming the folder (a model trained elsewhere)."""
    model_dir = Path(model_dir)
    saved = {}
    if (model_dir / MODEL_CONFIG).exists():
        saved = json.loads((model_dir / MODEL_CONFIG).read_text(encoding="utf-8"))
    default = WindowSettings()
    missing = [k for k, v in (("max_length", max_length), ("doc_stride", doc_stride)) if v is None and k not in saved]
    settings = WindowSettings(max_length if max_length is not None else saved.get("max_length", default.max_length),
                              doc_stride if doc_stride is not None else saved.get("doc_stride", default.doc_stride))
    if missing:
        warnings.warn(f"{model_dir}: no {MODEL_CONFIG} with the window settings this model was trained with; "
                      f"using max_length={settings.max_length}, doc_stride={settings.doc_stride} ("
                      f"{', '.join(missing)} guessed). Pass max_length/doc_stride (notebook 05's parameters) "
                      "to set them.", WindowSettingsWarning, stacklevel=3)
    return settings


def _from_pretrained(model_dir: Path):
    """The QA model with SDPA attention where its architecture has it, else eager (with a note)."""
    from transformers import AutoModelForQuestionAnswering

    try:
        return AutoModelForQuestionAnswering.from_pretrained(model_dir, local_files_only=True,
                                                             attn_implementation="sdpa")
    except (ValueError, ImportError) as err:   # transformers raises ValueError for an architecture without SDPA
        warnings.warn(f"{model_dir}: SDPA attention not available ({err}); using eager attention", stacklevel=3)
        return AutoModelForQuestionAnswering.from_pretrained(model_dir, local_files_only=True,
                                                             attn_implementation="eager")


def load_model(model_dir: str | os.PathLike, precision: str = "fp32", device: torch.device | None = None,
               max_length: int | None = None, doc_stride: int | None = None,
               presplit_punctuation: bool | None = None):
    """(model, tokenizer, window settings) from a local fine-tuned model directory; never touches a hub.

    The model is on `device`, in eval mode, ready for `predict_windows(..., precision=precision)`: int8 is
    quantized here, onnx-int8 is an ONNX Runtime session exported once and cached (`src/infer/onnx_qa.py`).
    `max_length`/`doc_stride` override the saved window settings (see `window_settings`). The tokenizer pre-splits
    punctuation as the model was trained (its tokenizer_config.json); `presplit_punctuation` set to the other
    way raises (`src.data.presplit.configure`)."""
    from transformers import AutoTokenizer

    from src.data import presplit

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"model directory not found or incomplete (no config.json): {model_dir}")
    device = torch.device(device) if device is not None else default_device()
    precision = resolve_precision(precision, device)
    settings = window_settings(model_dir, max_length, doc_stride)
    tokenizer = presplit.configure(AutoTokenizer.from_pretrained(model_dir, local_files_only=True),
                                   presplit_punctuation, where=f"the model in {model_dir}")
    if precision == "onnx-int8":
        from src.infer.onnx_qa import load_onnx_int8
        return load_onnx_int8(model_dir, tokenizer), tokenizer, settings
    model = _from_pretrained(model_dir).to(device).eval()
    if precision == "int8":
        model = quantize_int8(model)
    return model, tokenizer, settings


def predict_examples(model_dir: str | os.PathLike, examples, batch_size: int = 64,
                     device: torch.device | None = None, precision: str = "auto", max_length: int | None = None,
                     doc_stride: int | None = None, presplit_punctuation: bool | None = None) -> WindowLogits:
    """Per-window logits of the model in `model_dir` over an examples frame (id, question, context)."""
    from src.data.features import frame_to_batch, prepare_eval_features

    device = torch.device(device) if device is not None else default_device()
    precision = resolve_precision(precision, device)
    model, tokenizer, settings = load_model(model_dir, precision, device, max_length, doc_stride,
                                            presplit_punctuation)
    feats = prepare_eval_features(frame_to_batch(examples[["id", "question", "context"]]), tokenizer,
                                  settings.max_length, settings.doc_stride)
    return predict_windows(model, feats, batch_size, tokenizer.pad_token_id, device, precision)
