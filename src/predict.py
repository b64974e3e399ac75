"""Batched inference over all windows -> compact per-window start/end logits (`WindowLogits`).

Windows are sorted by length and padded per batch (dynamic padding), so short windows cost little; logits are kept
as float16 with the context offsets beside them, which is all post-processing and character-level blending need.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .io import atomic_path

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
    for i, offs in enumerate(offset_mapping):
        for k, o in enumerate(offs):
            if o is not None:
                out[i, k] = o
    return out


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def predict_windows(model, features: dict[str, list], batch_size: int = 64, pad_token_id: int = 0,
                    device: torch.device | None = None, amp_dtype: torch.dtype | None = None) -> WindowLogits:
    """Start/end logits for every window in `features` (from `prepare_eval_features`, unpadded).

    `amp_dtype`: autocast dtype; None = float16 on a GPU, none on CPU (bf16 for a model trained in bf16)."""
    device = device or default_device()
    model = model.to(device).eval()
    n = len(features["input_ids"])
    lengths = np.array([len(x) for x in features["input_ids"]])
    width = int(lengths.max()) if n else 0
    start = np.full((n, width), -np.inf, dtype=np.float16)
    end = np.full((n, width), -np.inf, dtype=np.float16)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features]
    order = np.argsort(-lengths, kind="stable")  # longest first: a memory problem shows up on the first batch
    use_amp = amp_dtype is not None or device.type == "cuda"
    amp_dtype = amp_dtype or torch.float16
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
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
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


def load_model(model_dir: str | os.PathLike):
    """(model, tokenizer, window settings) from a local fine-tuned model directory; never touches a hub."""
    import json

    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"model directory not found or incomplete (no config.json): {model_dir}")
    settings = WindowSettings()
    if (model_dir / MODEL_CONFIG).exists():
        saved = json.loads((model_dir / MODEL_CONFIG).read_text())
        settings = WindowSettings(saved["max_length"], saved["doc_stride"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, local_files_only=True)
    return model, tokenizer, settings


def predict_examples(model_dir: str | os.PathLike, examples, batch_size: int = 64,
                     device: torch.device | None = None) -> WindowLogits:
    """Per-window logits of the model in `model_dir` over an examples frame (id, question, context)."""
    from .features import frame_to_batch, prepare_eval_features

    model, tokenizer, settings = load_model(model_dir)
    feats = prepare_eval_features(frame_to_batch(examples[["id", "question", "context"]]), tokenizer,
                                  settings.max_length, settings.doc_stride)
    return predict_windows(model, feats, batch_size, tokenizer.pad_token_id, device)
