"""`make bf16-check`: does bf16 autocast train e5-small as well as fp32 on this CPU? (issue: before bf16 becomes the
default of the CPU experiments, its loss curve and scores must match fp32's within seed noise.)

    python -m research.bench.bf16_check [--windows 640] [--seeds 0,1]

Each run is `research.experiments.base_qa.build` (the base's own recipe: TyDi-en + SQuAD dev articles 0-35,
256/96 windows, lr 1e-4, batch 16, frozen word embeddings) on a seeded sample of `--windows` training windows, in fp32
and in bf16, per seed; scored on the held-out XQuAD-hi articles and TyDi-te dev (Jaccard with a 95% bootstrap interval).
Results go to docs/bf16_check.json (committed; a run found there is not run again) and docs/bf16_check.md.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from src.common.io import write_json, write_text
from src.common.paths import CACHE_DIR, REPO_ROOT

RESULTS = REPO_ROOT / "docs" / "bf16_check.json"
TABLE = REPO_ROOT / "docs" / "bf16_check.md"
SETS = ("xquad_hi", "tydi_te")


def run_one(windows: int, seed: int, bf16: bool) -> dict:
    from transformers import TrainerCallback

    from research.experiments import evalsets
    from research.experiments.base_qa import BaseQAConfig, build

    losses: list[tuple[int, float]] = []

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append((state.global_step, float(logs["loss"])))

    evals = {k: v for k, v in evalsets.eval_sets().items() if k in SETS}
    trains = {k: v for k, v in evalsets.train_sources().items() if k in ("tydi_en", "squad_dev")}
    name = f"{'bf16' if bf16 else 'fp32'}-s{seed}"
    t0 = time.time()
    res = build(BaseQAConfig(max_windows=windows, bf16=bf16, seed=seed, save_steps=10_000),
                CACHE_DIR / "bf16-check" / f"{name}-w{windows}", trains, evals, callbacks=[Losses()])
    m = res["metrics"]
    return {"name": name, "precision": "bf16" if bf16 else "fp32", "seed": seed, "windows": windows,
            "seconds": round(time.time() - t0, 1), "train_seconds": m.get("train_seconds"), "losses": losses,
            **{f"jaccard_{s}": m[f"jaccard_{s}"] for s in SETS},
            **{f"jaccard_{s}_{b}": m[f"jaccard_{s}_{b}"] for s in SETS for b in ("lo", "hi")},
            **{f"f1_{s}": m[f"f1_{s}"] for s in SETS}}


def report(runs: list[dict]) -> str:
    """Per run: train time, final loss, scores with intervals; then fp32 vs bf16 differences against seed spread."""
    df = pd.DataFrame(runs)
    lines = ["# bf16 autocast vs fp32 training on this CPU (e5-small, `make bf16-check`)", "",
             "| run | windows | train s | last loss | " + " | ".join(f"Jaccard {s} [95%]" for s in SETS) + " |",
             "|---|---|---|---|" + "---|" * len(SETS)]
    for r in runs:
        cells = [f"{r[f'jaccard_{s}']:.3f} [{r[f'jaccard_{s}_lo']:.3f}, {r[f'jaccard_{s}_hi']:.3f}]" for s in SETS]
        last = np.mean([v for _, v in r["losses"][-3:]]) if r["losses"] else float("nan")
        lines.append(f"| {r['name']} | {r['windows']} | {r['train_seconds']} | {last:.3f} | "
                     + " | ".join(cells) + " |")
    lines.append("")
    by = {p: df[df["precision"] == p] for p in ("fp32", "bf16")}
    if all(len(v) for v in by.values()):
        t = {p: by[p]["train_seconds"].astype(float).mean() for p in by}
        lines.append(f"Training speed: bf16 {t['fp32'] / t['bf16']:.2f}x fp32 "
                     f"({t['bf16']:.0f} s vs {t['fp32']:.0f} s a run).")
        for s in SETS:
            mean = {p: by[p][f"jaccard_{s}"].mean() for p in by}
            spread = [by[p][f"jaccard_{s}"].std(ddof=1) for p in by if len(by[p]) > 1]
            sd = float(np.sqrt(np.mean(np.square(spread)))) if spread else float("nan")
            diff = mean["bf16"] - mean["fp32"]
            verdict = (("within seed noise" if abs(diff) <= 2 * sd else "beyond seed noise") if sd == sd
                       else "no seed spread yet")
            lines.append(f"- {s}: bf16 {mean['bf16']:.3f} vs fp32 {mean['fp32']:.3f} (difference {diff:+.3f}; "
                         f"seed sd {sd:.3f}): {verdict}.")
        pairs = [(a, b) for a in runs for b in runs if a["precision"] == "fp32" and b["precision"] == "bf16"
                 and a["seed"] == b["seed"]]
        seeds = [(a, b) for a in runs for b in runs if a["precision"] == b["precision"] and a["seed"] < b["seed"]]

        def gap(a, b):
            la, lb = dict(a["losses"]), dict(b["losses"])
            steps = sorted(set(la) & set(lb))
            return float(np.mean([abs(la[k] - lb[k]) for k in steps])) if steps else float("nan")
        if pairs:
            lines.append(f"- Loss curves: mean |fp32 - bf16| at the same steps, same seed: "
                         f"{np.mean([gap(a, b) for a, b in pairs]):.3f}" + (
                             f"; between two seeds of one precision: {np.mean([gap(a, b) for a, b in seeds]):.3f}"
                             if seeds else "") + ".")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from research.experiments.grid_flags import parse_seeds  # the grids' --seeds: commas or spaces, a bad one named

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=640)
    ap.add_argument("--seeds", default="0,1")
    a = ap.parse_args(argv)
    runs = json.loads(RESULTS.read_text(encoding="utf-8"))["runs"] if RESULTS.exists() else []
    for seed in parse_seeds(a.seeds) or (0, 1):
        for bf16 in (False, True):
            name = f"{'bf16' if bf16 else 'fp32'}-s{seed}"
            if any(r["name"] == name and r["windows"] == a.windows for r in runs):
                continue
            runs.append(run_one(a.windows, seed, bf16))
            write_json({"runs": runs}, RESULTS)  # after every run: an interrupted check resumes
            write_text(report(runs), TABLE)
    text = report(runs)
    write_text(text, TABLE)
    print(text)


if __name__ == "__main__":
    main()
