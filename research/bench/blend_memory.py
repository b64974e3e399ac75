"""Memory and time of blending the winner's 13 models (3 + 5 + 5 over three tokenizers) on simulated logits.

5,000 simulated test rows whose context lengths are drawn from real chaii test contexts; run in a worker process
so its peak memory is its own:

    python -m research.bench.blend_memory ROWS OUT.json
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from research.bench.workers import peak_rss_mb
from src.common.paths import SHARED_DIR
from src.kaggle.plan import WINNER_COUNTS
from src.kaggle.sizing_facts import SHAPES

CHAII_TEST = SHARED_DIR / "data" / "chaii_format" / "test_public_sample.csv"
# The winner's three backbones: (layers, hidden, ffn) and how many models of each went into the submission, from the
# kernel plan's counts and the sizing's shapes.
WINNER_MODELS = {name: ((SHAPES[name].layers, SHAPES[name].hidden, SHAPES[name].ffn), k)
                 for name, k in WINNER_COUNTS.items()}


def simulated_logits(n_rows: int, seed: int = 0):
    """5,000-row test set as the winner's 13 models would see it: context lengths drawn from real chaii test
    contexts; three tokenizers (4, 3 and 3 characters per token); windows of 384 tokens, stride 128;
    random float16 logits. Models of one backbone share their windows' offsets (one array, as `share_offsets`)."""
    from src.infer.predict import NO_OFFSET, WindowLogits

    rng = np.random.default_rng(seed)
    lengths = pd.read_csv(CHAII_TEST)["context"].str.len().to_numpy() if CHAII_TEST.exists() else np.array([11000])
    lengths = rng.choice(lengths, n_rows)
    ids = np.array([f"t{i:05d}" for i in range(n_rows)])
    contexts = [("xxx " * (int(n) // 4 + 1))[:int(n)] for n in lengths]
    logits, backbones = [], []
    # characters per token: XLM-R's tokenizer measures 3.4 on chaii contexts; MuRIL's Indic vocabulary is coarser
    for (name, (_, n_models)), chars_per_token in zip(WINNER_MODELS.items(), (4, 3, 3), strict=True):
        win_ids, offsets = [], []
        q, width, step = 20, 384, 384 - 20 - 3 - 128
        for eid, n in zip(ids, lengths, strict=True):
            starts = np.arange(0, int(n) - chars_per_token + 1, chars_per_token)
            for w0 in range(0, max(len(starts) - (width - q - 3), 0) + step, step):
                tok = starts[w0: w0 + width - q - 3]
                off = np.full((width, 2), NO_OFFSET, dtype=np.int32)
                off[q:q + len(tok), 0], off[q:q + len(tok), 1] = tok, tok + chars_per_token - 1
                win_ids.append(eid)
                offsets.append(off)
        offsets = np.stack(offsets)
        win_ids = np.array(win_ids)
        for _ in range(n_models):
            shape = offsets.shape[:2]
            logits.append(WindowLogits(win_ids, rng.normal(0, 2, shape).astype(np.float16),
                                       rng.normal(0, 2, shape).astype(np.float16), offsets))
            backbones.append(name)
    return pd.DataFrame({"id": ids, "context": contexts}), logits, backbones


def worker_blend(n_rows: int) -> dict:
    """Peak memory and time of the winner's combination (blend per backbone, vote 2 of 3) for 13 models."""
    from src.blend.combine import BlendConfig, char_blend_spans, ensemble_spans

    t0 = time.perf_counter()
    examples, logits, backbones = simulated_logits(n_rows)
    built = time.perf_counter() - t0
    rss_logits = peak_rss_mb()
    logit_mb = sum(x.start.nbytes + x.end.nbytes for x in logits) / 2**20
    offset_mb = sum({id(x.offsets): x.offsets.nbytes for x in logits}.values()) / 2**20
    t0 = time.perf_counter()
    spans = ensemble_spans(examples, logits, backbones, cfg=BlendConfig())
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    char_blend_spans(examples.head(500), logits)   # 13 models at character level, on a tenth of the rows
    char_seconds = (time.perf_counter() - t1) * n_rows / 500
    return dict(rows=n_rows, windows=[len(x) for x in logits], logit_mb=logit_mb, offset_mb=offset_mb,
                rss_with_logits_mb=rss_logits, peak_rss_mb=peak_rss_mb(), seconds=seconds,
                char_blend_seconds_est=char_seconds, build_seconds=built, answered=int((spans[:, 0] >= 0).sum()))


if __name__ == "__main__":
    rows, out = sys.argv[1:]
    Path(out).write_text(json.dumps(worker_blend(int(rows))))
