"""`make bench`: our inference per precision against transformers' QA pipeline, post-processing, blend memory.

    python -m research.bench.run [--model DIR] [--questions 64]

Prints ONE table, measured in this run on the same models and inputs:
- inference, one row per precision (`research.bench.infer`): windows/s from examples to answer texts, the ratio
  against the faster of transformers' `pipeline("question-answering")` settings (its default batch_size and the
  best of a few; `research.bench.pipeline_ref`), the share of answers equal to fp32's and Jaccard on held-out questions
  (e5-small: XQuAD-hi articles 36-47, each question with its whole article as context; tiny-bert: synthetic);
- the fp32 and bf16 throughput as a fraction of this CPU's own matmul peak, measured in the same run;
- post-processing: `best_spans` vs the reference loop on the same logits (`research.bench.postprocess`);
- peak memory of blending 13 models' logits for 5,000 simulated test rows (`research.bench.blend_memory`);
- the 13-model submission time on a Kaggle GPU (`research.bench.gpu_estimate`; measured rows when a GPU is present).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from itertools import accumulate
from pathlib import Path

import pandas as pd

from research.bench.blend_memory import WINNER_MODELS
from research.bench.gpu_estimate import (
    GPU_NAME,
    GPU_TFLOPS,
    flops_per_window,
    gpu_rows,
    model_shape,
    submission_seconds,
)
from research.bench.infer import cpu_precisions
from research.bench.models import find_finetuned, tiny_qa_model
from research.bench.pipeline_ref import BATCH_SIZES, agreement, pipeline_env, pipeline_rule_answers
from research.bench.postprocess import postprocess_bench
from research.bench.questions import HELD_OUT, long_hindi_questions, synthetic_long_questions
from research.bench.workers import run_worker
from src.common.paths import CACHE_DIR, REPO_ROOT


@dataclass
class BenchConfig:
    model: str = ""              # fine-tuned QA model directory; "" = the best found (see `find_finetuned`)
    tiny: str = ""               # fine-tuned tiny QA model directory; "" = `tiny_qa_model()` (built once, cached)
    questions: int = 128         # 1 differing answer in 128 still meets ">= 99% equal"; in 64 it would not
    max_seq_len: int = 384
    doc_stride: int = 128
    max_answer_length: int = 30
    batch_size: int = 4          # ours: on 2 cores a batch of 4 beats 16 (8.2 vs 7.0 windows/s fp32, e5-small)
    threads: int = 2
    blend_rows: int = 5000
    precisions: str = ""         # comma-separated; "" = every one this CPU runs (`cpu_precisions`)
    pipeline_batch_sizes: str = ",".join(map(str, BATCH_SIZES))
    out: str = str(REPO_ROOT / "runs" / "bench" / "bench.json")


def _jaccard(answers: dict, gold: pd.Series) -> float:
    from src.infer.metric import mean_jaccard
    return mean_jaccard([answers[i].strip() for i in gold.index], gold.tolist())


def inference_rows(name: str, model_dir: str, df: pd.DataFrame, what: str, msl: int, ds: int, cfg: BenchConfig,
                   tmp: Path, record: dict) -> list[dict]:
    """Pipeline rows (each batch size), one row per precision of ours, the post-processing row."""
    from src.infer.predict import WindowLogits

    inputs = tmp / f"questions-{name.split()[0]}.json"
    df.to_json(inputs)
    gold = df.set_index("id")["answer_text"]
    tag = name.split()[0]
    precisions = cfg.precisions.split(",") if cfg.precisions else cpu_precisions()
    ours = {p: run_worker("research.bench.infer", ["ours", model_dir, inputs, p, cfg.batch_size, msl, ds,
                                                   cfg.max_answer_length], tmp / f"ours-{tag}-{p}.json", cfg.threads)
            for p in precisions}
    ref = {b: run_worker("research.bench.pipeline_ref", [model_dir, inputs, b, msl, ds, cfg.max_answer_length],
                         tmp / f"pipeline-{tag}-{b}.json", cfg.threads, pipeline_env())
           for b in map(int, cfg.pipeline_batch_sizes.split(","))}
    base = ours[precisions[0]]
    windows = base["windows"]
    fastest = min(ref, key=lambda b: ref[b]["seconds"])
    rows = []
    logits = WindowLogits.load(base["logits_path"])
    rule = pipeline_rule_answers(df, logits, cfg.max_answer_length)
    for b, r in ref.items():
        same, n = agreement(base["answers"], r["answers"])
        same_rule, _ = agreement(rule, r["answers"])
        rows.append(dict(row=f"pipeline batch_size={b}{' (default)' if b == 1 else ''} ({name})",
                         windows_per_s=f"{windows / r['seconds']:.1f}", ratio="", same_as_fp32="",
                         jaccard=f"{_jaccard(r['answers'], gold):.3f}",
                         note=f"{r['seconds']:.1f} s, {r['attention']} attention, peak {r['peak_rss_mb']:.0f} MB; "
                              f"same answer as ours fp32 {same / n:.1%} (pipeline's span rule on our logits: "
                              f"{same_rule / n:.1%})" + (" <- faster pipeline" if b == fastest else "")))
    for p, o in ours.items():
        same, n = agreement(o["answers"], base["answers"])
        rows.append(dict(row=f"ours {p} ({name})", windows_per_s=f"{o['windows'] / o['seconds']:.1f}",
                         ratio=f"{ref[fastest]['seconds'] / o['seconds']:.2f}x", same_as_fp32=f"{same / n:.1%}",
                         jaccard=f"{_jaccard(o['answers'], gold):.3f}",
                         note=f"{n} questions ({what}), {o['windows']} windows {msl}/{ds}, {o['seconds']:.1f} s, "
                              f"{o['attention']} attention, peak {o['peak_rss_mb']:.0f} MB"))
    pp = postprocess_bench(df, Path(base["logits_path"]), cfg.max_answer_length)
    rows.append(dict(row=f"post-processing ({name} logits)", windows_per_s=f"{pp['windows'] / pp['vectorized_s']:.0f}",
                     ratio=f"{pp['reference_s'] / pp['vectorized_s']:.1f}x", same_as_fp32="", jaccard="",
                     note=f"vs the reference loop (utils_qa): {pp['vectorized_s'] * 1000:.1f} vs "
                          f"{pp['reference_s'] * 1000:.0f} ms, {pp['windows']} windows, best of 7; identical answers "
                          f"{pp['same']}/{pp['n']}"))
    record[name] = dict(ours={p: {k: v for k, v in o.items() if k != "answers"} for p, o in ours.items()},
                        pipeline={b: {k: v for k, v in r.items() if k != "answers"} for b, r in ref.items()},
                        postprocess=pp)
    return rows


def peak_rows(name: str, model_dir: str, record: dict, peak: dict, length: int) -> list[dict]:
    """Our measured fp32 (and bf16) throughput as a fraction of the matmul peak of the same run."""
    flops = flops_per_window(*model_shape(model_dir), length)
    rows = []
    for p in ("fp32", "bf16"):
        o = record[name]["ours"].get(p)
        if o:
            gflops = o["windows"] / o["seconds"] * flops / 1e9
            rows.append(dict(row=f"ours {p} vs matmul peak ({name})", windows_per_s="", ratio="", same_as_fp32="",
                             jaccard="", note=f"{gflops:.0f} GFLOP/s = {gflops / peak[f'{p}_gflops']:.0%} of a "
                                              f"{peak['n']}^3 torch.matmul in {p} ({peak[f'{p}_gflops']:.0f} GFLOP/s, "
                                              f"{peak['threads']} threads; {flops / 1e9:.1f} GFLOP per window)"))
    return rows


def run(cfg: BenchConfig) -> pd.DataFrame:
    import torch

    from src.common.io import write_json

    model = cfg.model or str(find_finetuned() or "")
    if not model:
        raise FileNotFoundError(f"no fine-tuned e5-small QA model found under {CACHE_DIR}: run "
                                "`python -m research.bench.models e5` first (an untrained QA head gives near-uniform "
                                "logits, where comparing answers says nothing)")
    record = {"config": asdict(cfg), "model": model, "cpu": os.cpu_count(), "torch": torch.__version__}
    tiny = cfg.tiny or str(tiny_qa_model())
    e5_name = "e5-small fine-tuned"
    cases = [(e5_name, model, (cfg.max_seq_len, cfg.doc_stride),
              long_hindi_questions(cfg.questions, articles=HELD_OUT), "XQuAD-hi held-out articles, whole"),
             ("tiny-bert fine-tuned", tiny, (128, 48), synthetic_long_questions(cfg.questions),
              "synthetic hi/ta, 16 persons")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, mdir, (msl, ds), df, what in cases:
            rows += inference_rows(name, mdir, df, what, msl, ds, cfg, tmp, record)
        record["matmul_peak"] = peak = run_worker("research.bench.infer", ["peak"], tmp / "peak.json", cfg.threads)
        rows += peak_rows(e5_name, model, record, peak, cfg.max_seq_len)
        record["blend"] = bl = run_worker("research.bench.blend_memory", [cfg.blend_rows], tmp / "blend.json",
                                          cfg.threads)
    rows.append(dict(row=f"peak memory, blend 13 models x {bl['rows']} rows", windows_per_s="", ratio="",
                     same_as_fp32="", jaccard="",
                     note=f"{bl['peak_rss_mb']:.0f} MB: logits {bl['logit_mb']:.0f} MB fp16 + offsets "
                          f"{bl['offset_mb']:.0f} MB (shared per tokenizer), {sum(bl['windows']):,} windows; "
                          f"blend+vote {bl['seconds']:.0f} s; char-level blend of all 13 "
                          f"~{bl['char_blend_seconds_est']:.0f} s"))
    rows += estimate_rows(model, record, bl, cfg.max_seq_len)
    table = pd.DataFrame(rows)
    write_json(dict(record, table=rows), cfg.out)
    return table


def estimate_rows(model: str, record: dict, bl: dict, length: int) -> list[dict]:
    """The 13-model Kaggle GPU time: measured on this GPU when there is one, else from the assumed TFLOPS."""
    import torch

    first = list(accumulate((k for _, k in WINNER_MODELS.values()), initial=0))[:-1]   # each backbone's first model
    per_backbone = {name: bl["windows"][i] for name, i in zip(WINNER_MODELS, first, strict=True)}
    rows = []
    if torch.cuda.is_available():
        measured = gpu_rows(model, length)
        record["gpu"] = measured
        for r in measured:
            rows.append(dict(row=f"GPU {r['precision']} ({r['model']})", windows_per_s=f"{r['windows_per_s']:.0f}",
                             ratio="", same_as_fp32="", jaccard="", note=f"{r['gpu']}, forward only, windows of "
                                                                         f"{length}, batch 64"))
        large = max((r for r in measured if r["model"].startswith("MuRIL")), key=lambda r: r["windows_per_s"])
        tflops = large["windows_per_s"] * flops_per_window(*WINNER_MODELS["muril-large"][0], length) / 1e12
        source = f"{tflops:.0f} TFLOPS measured on {large['gpu']} ({large['precision']}, MuRIL-large shape)"
    else:
        tflops, source = GPU_TFLOPS, f"{GPU_TFLOPS:.0f} TFLOPS sustained, assumed ({GPU_NAME}); no GPU here"
    total, seconds = submission_seconds(per_backbone, length, tflops)
    o = record["e5-small fine-tuned"]["ours"]["fp32"]
    cpu_gflops = o["windows"] / o["seconds"] * flops_per_window(*model_shape(model), length) / 1e9
    rows.append(dict(row="GPU estimate, 13 models", windows_per_s="", ratio="", same_as_fp32="", jaccard="",
                     note=f"{seconds / 60:.0f} min: {total / 1e15:.0f} PFLOP for {bl['rows']} rows at {source}; "
                          f"CPU here, e5-small fp32: {cpu_gflops:.0f} GFLOP/s"))
    record["gpu_estimate"] = dict(total_flops=total, seconds=seconds, tflops=tflops, source=source)
    return rows


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m research.bench.run", description=__doc__.split("\n\n")[0])
    for f, v in asdict(BenchConfig()).items():
        ap.add_argument(f"--{f.replace('_', '-')}", type=type(v), default=v)
    cfg = BenchConfig(**vars(ap.parse_args(argv)))
    table = run(cfg)
    with pd.option_context("display.max_colwidth", 250, "display.width", 300):
        print(table.to_string(index=False))
    print(f"(written to {cfg.out})")


if __name__ == "__main__":
    main()
