"""`make blend-check`: held-out XQuAD-hi Jaccard of 3 e5-small models, their blends and their vote.

Each question sits beside its own paragraph, as the table's `shape` column says.

    python -m research.experiments.blend_check [MODEL_DIR | RUN_DIR ...]
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from research.bench.models import find_own_e5
from research.bench.questions import HELD_OUT, xquad_frame
from src.common.paths import CACHE_DIR, REPO_ROOT


def _has_held_out(run_dir: Path) -> bool:
    return (run_dir / "xquad_hi_logits.npz").exists() and (run_dir / "xquad_hi_examples.csv").exists()


def ablation_plain_runs() -> list[Path]:
    """The ablation's `plain` runs with saved held-out XQuAD-hi logits, one per seed: the grid from the QA base
    (its runs in the committed log), else the older 6-layer grid's cache (newest per seed)."""
    from research.experiments import ablate
    from src.train import explog
    base = [ablate.OUT_ROOT / r["run_id"] for r in ablate.ablation_rows(explog.REPO_LOG) if r["variant"] == "plain"]
    base = [d for d in base if _has_held_out(d)]
    if len(base) >= 3:
        return base
    by_seed: dict[str, Path] = {}
    for d in sorted((CACHE_DIR / "ablation").glob("plain-s*"), key=lambda p: p.stat().st_mtime):
        if _has_held_out(d):
            by_seed[d.name.split("-")[1]] = d
    return list(by_seed.values())


def saved_runs(model_dirs: list[str] | None) -> list[Path]:
    """Run folders to blend from their saved held-out logits (scored in the precision they were trained in):
    `model_dirs` when every one is such a folder, none when they are model folders, else the ablation's plain."""
    given = [Path(d) for d in model_dirs or []]
    if given:
        return given if all(_has_held_out(d) for d in given) else []
    return ablation_plain_runs()


def blend_check(model_dirs: list[str] | None = None, out: str = str(REPO_ROOT / "runs" / "bench" / "blend_check.csv"),
                batch_size: int = 16) -> pd.DataFrame:
    """Held-out XQuAD-hi: Jaccard of each of 3 e5-small models, of their character-level blend with equal and
    with tuned weights (cross-fitted over two halves of the articles), and of the word vote (2 of 3).

    The models, in order of preference: `model_dirs` (run folders with saved held-out logits, used as saved;
    else model folders, run here in fp32); the ablation's `plain` seeds (their saved
    held-out logits, `xquad_hi_logits.npz`); else the bench's own model under 3 window settings (384/128,
    256/64, 192/96) on XQuAD-hi articles 36-47 -- test-time windows, not seeds (the table says which)."""
    import torch

    from src.blend.combine import (
        average_logits,
        blend_char_scores,
        char_blend_spans,
        char_scores,
        decode_char_spans,
        same_windows,
        vote_spans,
    )
    from src.blend.fit import tune_weights
    from src.common.io import write_csv
    from src.data.features import frame_to_batch, prepare_eval_features
    from src.infer.answer_rules import answers_from_spans
    from src.infer.metric import jaccard_by_language
    from src.infer.postprocess import best_spans
    from src.infer.predict import WindowLogits, load_model, predict_windows

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    runs = saved_runs(model_dirs)
    if len(runs) >= 3:
        runs = runs[:3]
        held = pd.read_csv(runs[0] / "xquad_hi_examples.csv", dtype={"id": str}, keep_default_na=False)
        names = [f"{r.name} ({json.loads((r / 'metrics.json').read_text())['config']['model_path']})" for r in runs]
        logits = [WindowLogits.load(r / "xquad_hi_logits.npz") for r in runs]
        for r in runs[1:]:
            other = pd.read_csv(r / "xquad_hi_examples.csv", dtype={"id": str}, keep_default_na=False)
            if not other[["id", "context"]].equals(held[["id", "context"]]):
                raise ValueError(f"{r}: held-out examples differ from {runs[0]}'s; cannot blend them")
    else:
        held = xquad_frame(articles=HELD_OUT)
        if model_dirs:
            todo = [(Path(d).parent.name, d, None) for d in model_dirs]
        else:
            own = str(find_own_e5())
            todo = [(f"e5-small-qa @{m}/{d}", own, (m, d)) for m, d in ((384, 128), (256, 64), (192, 96))]
        names, logits = [], []
        for name, d, settings in todo:
            model, tok, saved = load_model(d, device="cpu")
            m, st = settings or (saved.max_length, saved.doc_stride)
            feats = prepare_eval_features(frame_to_batch(held[["id", "question", "context"]]), tok, m, st)
            logits.append(predict_windows(model, feats, batch_size, tok.pad_token_id, torch.device("cpu")))
            names.append(name)
    ids = held["id"].to_numpy()
    spans = {n: best_spans(ids, x) for n, x in zip(names, logits, strict=True)}
    spans["char-level blend, equal weights"] = char_blend_spans(held, logits)
    if all(same_windows(logits[0], x) for x in logits[1:]):
        spans["token-level blend, equal weights (same windows)"] = best_spans(ids, average_logits(logits))
    # weights tuned on half of the articles, applied to the other half, and the other way round (cross-fitted:
    # tuning and scoring on the same questions would flatter the tuned blend)
    titles = list(dict.fromkeys(held["title"]))
    halves = [held["title"].isin(titles[0::2]).to_numpy(), held["title"].isin(titles[1::2]).to_numpy()]
    tuned, found = np.full((len(held), 2), -1, dtype=np.int64), []
    for fit, use in (halves, halves[::-1]):
        f, u = held[fit], held[use]
        w, _ = tune_weights(f, [char_scores(f["id"], f["context"].str.len(), x) for x in logits], f["answer_text"])
        cs = [char_scores(u["id"], u["context"].str.len(), x) for x in logits]
        tuned[use] = decode_char_spans(blend_char_scores(cs, w))
        found.append(",".join(f"{x:.2f}" for x in w))
    spans[f"char-level blend, weights tuned on the other half of the articles ({' / '.join(found)})"] = tuned
    spans["vote 2 of 3"] = vote_spans(held, [spans[n] for n in names], 2)
    rows = []
    for name, sp in spans.items():
        answers = answers_from_spans(held, sp)
        j = jaccard_by_language(held.assign(prediction=held["id"].map(answers)))
        rows.append(dict(prediction=name, shape="paragraph", jaccard=round(j["all"], 4), questions=len(held)))
    table = pd.DataFrame(rows)
    write_csv(table, out)
    return table


if __name__ == "__main__":
    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        print(blend_check(sys.argv[1:] or None).to_string(index=False))
