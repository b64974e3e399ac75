"""Our inference, timed per precision from examples to answer texts, and this CPU's own matrix-multiply peak.

    python -m research.bench.infer ours MODEL_DIR INPUTS.json PRECISION BATCH MAX_SEQ_LEN DOC_STRIDE MAX_ANS OUT.json
    python -m research.bench.infer peak OUT.json
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from research.bench.workers import peak_rss_mb

MATMUL_N = 2048   # large enough that the multiply, not the call, is timed


def cpu_precisions() -> list[str]:
    """The precisions `make bench` times on this CPU: fp32 first (the others are compared with it)."""
    import torch

    from src.infer.predict import bf16_supported
    return ["fp32"] + (["bf16"] if bf16_supported(torch.device("cpu")) else []) + ["int8", "onnx-int8"]


def worker_ours(model_dir: str, inputs: str, precision: str, batch_size: int, max_seq_len: int, doc_stride: int,
                max_answer_length: int) -> dict:
    """Our path, timed from examples to answer texts (tokenize, predict, post-process); the logits are saved
    beside the output for the post-processing bench."""
    from src.data.features import frame_to_batch, prepare_eval_features
    from src.infer.postprocess import predict_texts
    from src.infer.predict import load_model, predict_windows

    df = pd.read_json(inputs)
    t0 = time.perf_counter()
    model, tok, _ = load_model(model_dir, precision, "cpu", max_seq_len, doc_stride)
    load_seconds = time.perf_counter() - t0     # includes a first onnx-int8 export
    rss_loaded = peak_rss_mb()
    t0 = time.perf_counter()
    feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), tok, max_seq_len, doc_stride)
    logits = predict_windows(model, feats, batch_size, tok.pad_token_id, "cpu", precision)
    answers = predict_texts(df, logits, 20, max_answer_length)
    seconds = time.perf_counter() - t0
    attention = getattr(getattr(model, "config", None), "_attn_implementation", "onnxruntime")
    return dict(seconds=seconds, windows=len(logits), answers=answers, precision=precision, attention=attention,
                load_seconds=load_seconds, peak_rss_mb=peak_rss_mb(), rss_after_load_mb=rss_loaded,
                logits=logits)


def matmul_peak(n: int = MATMUL_N, repeats: int = 5) -> dict:
    """GFLOP/s of an n x n x n torch.matmul in fp32 and bf16 (best of `repeats`), on this process's threads."""
    import torch

    out = {"n": n, "threads": torch.get_num_threads()}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.matmul(a, b)
        best = min(_timed(torch.matmul, a, b) for _ in range(repeats))
        out[f"{name}_gflops"] = 2 * n ** 3 / best / 1e9
    return out


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main(argv: list[str]) -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    kind, *args, out = argv
    if kind == "ours":
        model_dir, inputs, precision, *nums = args
        res = worker_ours(model_dir, inputs, precision, *map(int, nums))
        res["logits_path"] = str(res.pop("logits").save(Path(out).with_suffix(".npz")))
    elif kind == "peak":
        res = matmul_peak()
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    Path(out).write_text(json.dumps(res, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
