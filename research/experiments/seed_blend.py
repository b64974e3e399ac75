"""A grid variant's seeds averaged, against the seeds alone: the winner's average within a backbone, on each set.

Every run of the ablation grids keeps its evaluation windows' start/end logits (`oof_logits.npz` in its folder).
The seeds of one variant cut the same windows (same tokenizer and settings), so their logits average window by
window (`src.blend.combine.average_logits`), then decode as one model. Per evaluation set this reports the seeds'
mean and best Jaccard, the average's, and the paired gain of the average over the mean seed (per question: the
average's Jaccard minus the seeds' mean on it; 95% bootstrap over questions). Nothing trains: it reads the runs'
saved logits, so it needs the runs' folders on this machine, and logs one row of kind "seed-blend".

    python -m research.experiments.seed_blend --shape article --variant plain     # -> docs/seed_blend.md
    python -m research.experiments.seed_blend --variant plain --size hindi=925 --size tamil=658   # another grid

`--size`, `--train` and `--base` pick the grid's configuration as `research.experiments.ablate run` does; the
table's grid column names them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from research.experiments import ablate, grid_flags
from research.experiments.evalsets import combined
from src.blend.combine import blend_spans
from src.common.io import write_text
from src.common.paths import SHARED_DIR
from src.infer.metric import bootstrap_ci, paired_gain, score_rows
from src.infer.predict import WindowLogits
from src.infer.span_text import span_texts
from src.train import explog

KIND = "seed-blend"
TABLE = Path("docs/seed_blend.md")


def per_question(examples: pd.DataFrame, logits: list[WindowLogits]) -> np.ndarray:
    """Each example's Jaccard (best over its golds) of the answer decoded from these models' averaged logits."""
    spans = blend_spans(examples, [x.of_examples(examples["id"]) for x in logits])
    scored = examples.assign(prediction=span_texts(examples["context"], spans))
    return score_rows(scored)["jaccard"].to_numpy()


def blend_metrics(valid: pd.DataFrame, logits: list[WindowLogits], sets) -> dict:
    """Per evaluation set: the seeds' mean and best Jaccard, the average's with its interval, and the paired gain
    of the average over the mean seed."""
    out = {}
    for name in sets:
        ex = valid[valid["eval_set"] == name].reset_index(drop=True)
        singles = np.stack([per_question(ex, [x]) for x in logits])
        avg = per_question(ex, logits)
        gain, lo, hi = paired_gain(avg, singles.mean(axis=0))
        out[name] = {"seeds_mean": float(singles.mean()), "seeds_best": float(singles.mean(axis=1).max()),
                     "average": float(avg.mean()), "average_ci": list(bootstrap_ci(avg)),
                     "gain": gain, "gain_ci": [lo, hi]}
    return out


def markdown(rows: list[dict]) -> str:
    """One line per logged blend and evaluation set."""
    lines = ["Seeds of one grid variant averaged window by window (`research.experiments.seed_blend`), against the "
             "same seeds alone; gain = the average minus the seeds' mean, paired per question (95% bootstrap).", "",
             "| grid | variant | seeds | set | seeds' mean | best seed | average [95%] | gain [95%] |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name in r.get("sets", sorted(r["metrics"])):
            m = r["metrics"][name]
            grid = r["grid"] + (f" ({', '.join(r['overrides'])})" if r.get("overrides") else "")
            lines.append(f"| {grid} | {r['variant']} | {len(r['runs'])} | {name} | {m['seeds_mean']:.3f} | "
                         f"{m['seeds_best']:.3f} | {m['average']:.3f} [{m['average_ci'][0]:.3f}, "
                         f"{m['average_ci'][1]:.3f}] | {m['gain']:+.3f} [{m['gain_ci'][0]:+.3f}, "
                         f"{m['gain_ci'][1]:+.3f}] |")
    return "\n".join(lines) + "\n"


def run(shape: str, variant: str, log: Path, data_dir: Path, out_root: Path | None = None,
        overrides: list[str] = ()) -> dict:
    """Average the logged seeds of `variant` (the grid's current configuration, set beforehand by
    `grid_flags.apply_config_args`; `overrides` names it in the row), score, log and return the row."""
    g = ablate.grid_of(shape)
    rows = [r for r in ablate.ablation_rows(log, g) if r["variant"] == variant]
    if len(rows) < 2:
        raise SystemExit(f"{variant!r} has {len(rows)} logged run(s) in the {shape} grid's configuration: "
                         "averaging needs two or more seeds")
    root = out_root or g.OUT_ROOT
    missing = [str(root / r["run_id"] / "oof_logits.npz") for r in rows
               if not (root / r["run_id"] / "oof_logits.npz").exists()]
    if missing:
        raise SystemExit(f"no saved logits on this machine: {', '.join(missing)} (train or reproduce those runs)")
    logits = [WindowLogits.load(root / r["run_id"] / "oof_logits.npz") for r in rows]
    _, evals = g.load_data(data_dir)
    sets = rows[0]["config"]["eval"]
    metrics = blend_metrics(combined({n: evals[n] for n in sets}), logits, sets)
    runs = sorted(r["run_id"] for r in rows)
    row = {"run_id": f"seed-blend-{shape}-{variant}-{explog.config_hash(runs)}", "kind": KIND, "grid": shape,
           "variant": variant, "overrides": list(overrides), "runs": runs, "sets": sets, "metrics": metrics,
           "commit": explog.git_commit()}
    if row["run_id"] in explog.done_run_ids(log):
        explog.update_run(log, row["run_id"], **{k: v for k, v in row.items() if k != "run_id"})
    else:
        explog.append_run(log, row)
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=["paragraph", "article"], default="article")
    ap.add_argument("--variant", default="plain")
    ap.add_argument("--log", type=Path, default=explog.REPO_LOG)
    ap.add_argument("--data-dir", type=Path, default=SHARED_DIR / "data")
    ap.add_argument("--table", type=Path, default=TABLE)
    grid_flags.add_config_args(ap, ablate.SIZES)
    a = ap.parse_args(argv)
    grid_flags.apply_config_args(ablate.grid_of(a.shape), a, ablate.TRAIN)
    run(a.shape, a.variant, a.log, a.data_dir, overrides=[*a.size, *a.train, *a.base])
    text = markdown([r for r in explog.read_log(a.log) if r.get("kind") == KIND])
    write_text(text, a.table)
    print(text)


if __name__ == "__main__":
    main()
