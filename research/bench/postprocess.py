"""Post-processing timed: `best_spans` (vectorized) vs the reference loop (HF utils_qa) on the same logits."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd


def postprocess_bench(examples: pd.DataFrame, npz: Path, max_answer_length: int, repeats: int = 7) -> dict:
    """Best-of-`repeats` seconds of both, and how many answers are identical (all of them, or it is a bug)."""
    from src.infer.postprocess import postprocess_qa_predictions, predict_texts
    from src.infer.predict import WindowLogits

    logits = WindowLogits.load(npz)
    t_ref, t_vec = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref = postprocess_qa_predictions(examples, logits, 20, max_answer_length)
        t_ref.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        vec = predict_texts(examples, logits, 20, max_answer_length)
        t_vec.append(time.perf_counter() - t0)
    same = sum(ref[i] == vec[i] for i in examples["id"])
    return dict(reference_s=min(t_ref), vectorized_s=min(t_vec), windows=len(logits), same=same, n=len(examples))
