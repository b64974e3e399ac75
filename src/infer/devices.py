"""One process per GPU: how many processes a run starts, and inference over many models spread across them.

Kaggle's T4 x2 gives a kernel two GPUs. The 13 models of a submission are independent, so each GPU's process loads
and runs a share of them (round robin, so every share mixes backbones) and the per-window logits are put back in
the models' order before the blend: the same logits as one process, in about 1/n of the time. Training uses
`process_count` too (`src/train/launch.py`).

The GPUs are counted with `torch.cuda.device_count()`, which asks NVML and does not initialise CUDA in this
process: a notebook may still fork its training processes afterwards (accelerate's `notebook_launcher`).
"""
from __future__ import annotations

import pandas as pd

from src.infer.predict import WindowLogits, predict_examples, share_offsets


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def process_count(requested: int = 0, gpus: int | None = None) -> int:
    """Processes to run: `requested` > 0 as given (n > 1 on a CPU-only machine: n CPU processes, as the tests and
    the Kaggle simulation run them), 0 = one per visible GPU (1 without a GPU). More processes than GPUs would
    share a GPU and fight over its memory, so that is refused."""
    gpus = gpu_count() if gpus is None else gpus
    if requested < 0:
        raise ValueError(f"num_processes={requested}: expected 0 (one per visible GPU) or a positive number")
    if requested == 0:
        return max(gpus, 1)
    if gpus and requested > gpus:
        raise ValueError(f"num_processes={requested}, but {gpus} GPU(s) are visible: give 0 (one per GPU) or at most "
                         f"{gpus}")
    return requested


def shares(n_items: int, n_processes: int) -> list[list[int]]:
    """Item indices per process, round robin: model folders come grouped by backbone, so every share mixes them
    (a share of only the largest backbone would finish last)."""
    return [list(range(p, n_items, n_processes)) for p in range(n_processes) if p < n_items]


def predict_share(model_dirs: list[str], examples: pd.DataFrame, batch_size: int, device: str, precision: str,
                  max_length: int | None, doc_stride: int | None) -> list[WindowLogits]:
    """One process's models, in order, on `device` (run in a spawned process: it must be importable)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    logits = [predict_examples(d, examples, batch_size, device=torch.device(device), precision=precision,
                               max_length=max_length, doc_stride=doc_stride) for d in model_dirs]
    return share_offsets(logits)  # models of one backbone send their offsets back once, not once each


def predict_models(model_dirs: list[str], examples: pd.DataFrame, batch_size: int = 64, precision: str = "auto",
                   max_length: int | None = None, doc_stride: int | None = None,
                   num_processes: int = 0) -> list[WindowLogits]:
    """Per-window logits of every model in `model_dirs` over `examples`, in the order of `model_dirs`.

    `num_processes` (`process_count`): 0 = one process per visible GPU, each with its share of the models; one
    process (one GPU, or a CPU) predicts here, model after model, as before. Processes are spawned (a fresh
    interpreter: safe whatever this process did with CUDA) and each loads only its own models."""
    n = min(process_count(num_processes), len(model_dirs))
    if n <= 1:
        return share_offsets([predict_examples(d, examples, batch_size, precision=precision, max_length=max_length,
                                               doc_stride=doc_stride) for d in model_dirs])
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    gpus = gpu_count()
    parts = shares(len(model_dirs), n)
    devices = [f"cuda:{p}" if gpus else "cpu" for p in range(n)]
    print(f"inference: {len(model_dirs)} models over {n} processes ({', '.join(devices)}), "
          f"{', '.join(str(len(p)) for p in parts)} models each", flush=True)
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(predict_share, [model_dirs[i] for i in part], examples, batch_size, device, precision,
                               max_length, doc_stride) for part, device in zip(parts, devices, strict=True)]
        results = [f.result() for f in futures]
    merged: list[WindowLogits | None] = [None] * len(model_dirs)
    for part, logits in zip(parts, results, strict=True):
        for i, x in zip(part, logits, strict=True):
            merged[i] = x
    return share_offsets(merged)
