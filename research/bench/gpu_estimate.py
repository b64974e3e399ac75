"""GPU throughput (measured when a GPU is present) and the 13-model Kaggle submission time it implies.

Without a GPU the estimate is FLOPs per window (checked against the CPU's measured windows/s) over an assumed
sustained fp16 throughput; with one, `gpu_rows` measures forward passes of e5-small and of a randomly initialised
model of MuRIL-large's shape in fp16 and bf16, and the estimate uses the measured MuRIL-large windows/s.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from research.bench.blend_memory import WINNER_MODELS
from src.kaggle.sizing_facts import SHAPES
from src.kaggle.sizing_facts import T4_TFLOPS as GPU_TFLOPS
from src.kaggle.sizing_windows import flops_per_window

# Kaggle's T4: 65 TFLOPS fp16 tensor-core peak; encoder inference with autocast typically sustains 25-35% of it, so
# 20 TFLOPS is the assumption (printed with the estimate). It lives in src.kaggle.sizing_facts, beside Kaggle's limits.
GPU_NAME = "Kaggle T4, fp16"
_MURIL = SHAPES["muril-large"]
MURIL_LARGE = dict(num_hidden_layers=_MURIL.layers, hidden_size=_MURIL.hidden, intermediate_size=_MURIL.ffn,
                   num_attention_heads=_MURIL.heads, vocab_size=_MURIL.vocab,
                   max_position_embeddings=_MURIL.positions, type_vocab_size=_MURIL.types)


def model_shape(model_dir: str) -> tuple[int, int, int]:
    c = json.loads((Path(model_dir) / "config.json").read_text())
    return c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"]


def submission_seconds(windows_per_backbone: dict[str, int], length: int = 384,
                       tflops: float = GPU_TFLOPS) -> tuple[float, float]:
    """(FLOPs, seconds) of the winner's 13 models over `windows_per_backbone` windows at `tflops` sustained."""
    total = sum(flops_per_window(*shape, length) * windows_per_backbone[name] * k
                for name, (shape, k) in WINNER_MODELS.items())
    return total, total / (tflops * 1e12)


def gpu_windows_per_s(model, precision: str, length: int = 384, batch_size: int = 64, repeats: int = 3) -> float:
    """Forward windows/s of `model` on the GPU over random full windows, under fp16/bf16 autocast (or fp32)."""
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    model = model.cuda().eval()
    ids = torch.randint(5, 1000, (batch_size, length), device="cuda")
    mask = torch.ones_like(ids)
    best = float("inf")
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
        model(input_ids=ids, attention_mask=mask)                      # warm-up: kernels chosen, memory pooled
        for _ in range(repeats):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    return batch_size / best


def gpu_rows(e5_dir: str, length: int = 384) -> list[dict]:
    """One row per (model, precision) measured on this GPU: e5-small and a random MuRIL-large-shaped model."""
    import torch
    from transformers import AutoModelForQuestionAnswering, BertConfig, BertForQuestionAnswering

    from src.infer.predict import bf16_supported

    device = torch.device("cuda")
    precisions = ["fp32", "fp16"] + (["bf16"] if bf16_supported(device) else [])
    models = {"e5-small": lambda: AutoModelForQuestionAnswering.from_pretrained(e5_dir, attn_implementation="sdpa"),
              "MuRIL-large shape (random)": lambda: BertForQuestionAnswering(
                  BertConfig(**MURIL_LARGE, attn_implementation="sdpa"))}
    rows = []
    for name, make in models.items():
        model = make()
        for p in precisions:
            wps = gpu_windows_per_s(model, p, length)
            rows.append(dict(model=name, precision=p, windows_per_s=wps, gpu=torch.cuda.get_device_name(0)))
        del model
        torch.cuda.empty_cache()
    return rows
