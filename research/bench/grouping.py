"""`make bench-grouping`: training throughput of e5-small with length-grouped batches vs the Trainer's shuffled ones.

    python -m research.bench.grouping [--steps 20] [--repeats 2] [--windows base|finetune]

The reference is what a user gets from `Trainer` by default: shuffled batches, each padded (DataCollatorWithPadding)
to its longest window. `train_sampling_strategy="group_by_length"` (HF's LengthGroupedSampler, our
`TrainConfig.group_by_length`) sorts each megabatch of min(50, n / 4) batches by length. Both run the base's
training step (e5-small, bf16 autocast where the CPU has it, batch 16, frozen word embeddings) on the same 1,280 real
windows of 256/96: from the base's sources (TyDi-en train + SQuAD dev articles 0-35), or with `--windows finetune`
from the ablation's fine-tune (all 925 XQuAD-hi training-article questions + the 200 TyDi-en dev replay questions;
Hindi windows are longer, so grouping saves less), `--steps` steps each (20 = one whole megabatch,
so the grouped order is not measured on its long or its short end only), after 3 warm-up steps. A megabatch of 20
groups less tightly than the 50 of a full-size run. Prints windows/s, padded tokens per real token, and the ratio
to the reference; the spread over `--repeats` alternating repeats is the noise.
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

WINDOWS = 1_280   # 80 batches of 16: HF's megabatch is then 20 batches (~8 min for both orders, twice)


def timed_steps(dataset, model_dir: str, grouped: bool, steps: int, seed: int) -> dict:
    """Train `steps` (+3 warm-up) steps; windows/s over the timed ones and the padding they carried."""
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
    )

    from src.train.fold import TrainConfig, training_arguments

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir)
    model.get_input_embeddings().weight.requires_grad_(False)
    pad = DataCollatorWithPadding(tok)
    shapes: list[tuple[int, int]] = []   # (padded tokens, real tokens) per batch

    def collate(features):
        lengths = [len(f["input_ids"]) for f in features]
        shapes.append((max(lengths) * len(lengths), sum(lengths)))
        return pad(features)

    marks: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks[state.global_step] = time.perf_counter()

    cfg = TrainConfig(backbone="e5-small", output_dir="/tmp/bench-grouping", seed=seed, learning_rate=1e-4, epochs=1,
                      batch_size=16, grad_accum=1, max_length=256, doc_stride=96, warmup_ratio=0.1,
                      weight_decay=0.01, bf16=True, group_by_length=grouped)
    args = training_arguments(cfg, max_steps=steps + 3, save_strategy="no", logging_steps=10_000)
    Trainer(model=model, args=args, train_dataset=dataset, data_collator=collate, callbacks=[Clock()]).train()
    seconds = marks[steps + 3] - marks[3]
    timed = shapes[3:steps + 3]
    return {"windows_per_s": 16 * steps / seconds,
            "padding": sum(p for p, _ in timed) / sum(r for _, r in timed)}


SOURCES = {"base": ("tydi_en", "squad_dev"), "finetune": ("xquad_hi_train", "tydi_en_dev")}


def bench_windows(model_dir: str, n: int = WINDOWS, seed: int = 0, windows: str = "base"):
    """A seeded sample of `n` training windows of the base or of the fine-tune (model inputs and labels only)."""
    from transformers import AutoTokenizer

    from research.experiments import evalsets
    from research.experiments.base_qa import BaseQAConfig, train_windows

    trains = evalsets.train_sources()
    tok = AutoTokenizer.from_pretrained(model_dir)
    ds = train_windows({k: trains[k] for k in SOURCES[windows]}, tok,
                       BaseQAConfig(max_windows=n, seed=seed))
    return ds.select_columns(["input_ids", "attention_mask", "start_positions", "end_positions"])


def main(argv: list[str] | None = None) -> None:
    from src.common.paths import CACHE_DIR
    from src.infer.precision import bf16_support
    from src.train.stand_ins import ensure_e5_small

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--windows", choices=sorted(SOURCES), default="base",
                    help="whose training windows: the base's (English) or the fine-tune's (Hindi + English replay)")
    a = ap.parse_args(argv)
    ok, why = bf16_support()
    if not ok:
        print(f"note: {why}; both orders train in fp32")
    model_dir = str(ensure_e5_small(CACHE_DIR / "e5-small"))
    ds = bench_windows(model_dir, windows=a.windows)
    rows = []
    for r in range(a.repeats):
        for grouped in (False, True):   # alternating, so a drift in machine speed hits both
            res = timed_steps(ds, model_dir, grouped, a.steps, seed=r)
            rows.append({"order": "group_by_length" if grouped else "shuffled (Trainer default)", "repeat": r, **res})
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    t = df.groupby("order", sort=False).agg(windows_per_s=("windows_per_s", "mean"),
                                            spread=("windows_per_s", lambda x: x.max() - x.min()),
                                            padded_per_real_token=("padding", "mean"))
    t["ratio"] = t["windows_per_s"] / t["windows_per_s"].iloc[0]
    print(f"\ne5-small training step, {'bf16' if ok else 'fp32'}, batch 16, {WINDOWS} real {a.windows} windows "
          f"of <= 256 tokens ({', '.join(SOURCES[a.windows])}), "
          f"{a.steps} steps x {a.repeats} repeats (spread = max - min over repeats):")
    print(t.round(3).to_string())


if __name__ == "__main__":
    main()
