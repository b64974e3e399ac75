"""`make gpu-check`: before spending Kaggle's GPU hours, the GPU path on any CUDA machine, in at most 8 minutes.

1. training: notebook 03 (papermill) on CUDA on the shipped sample (`input/`) for a few hundred optimizer steps, at the
   training config's precision on a GPU (fp16 autocast: `TrainConfig.fp16` None = on with a GPU; Kaggle's T4 has
   no bf16), with a MuRIL-large-shaped model (random init: its config, a tiny tokenizer's vocabulary; nothing is
   downloaded); checks that the loss fell and the run wrote its model;
2. the submit path: notebook 05 on CUDA over that model -> a checked `submission.csv`;
3. throughput: windows/s of MuRIL-large-, RemBERT- and XLM-R-large-shaped models (random init from their shapes in
   `src/kaggle/sizing_facts.py`, built offline) training (forward, backward, AdamW) at the batch the sizing fits to
   this GPU's memory, and predicting (batch 64), at length 384; the FLOPs per window of `sizing_windows` turn them
   into sustained TFLOPS, set against the sizing's assumption (`T4_TFLOPS` = 20 on a T4: 31% of its fp16 peak) as
   a share of this GPU's fp16 peak where it is known (NVIDIA's datasheets, `PEAKS`).

    python -m research.bench.gpu_check [--steps 300] [--out runs/gpu-check]

Without CUDA it says so and exits 2. The table goes to stdout and `<out>/gpu_check.json`. To use a measurement, set
`T4_TFLOPS` in `src/kaggle/sizing_facts.py` from a T4's training row (the sizing's hours follow).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from src.common.paths import REPO_ROOT
from src.kaggle.sizing_facts import SHAPES, T4, T4_TFLOPS, UTILISATION, Gpu, Shape
from src.kaggle.sizing_windows import flops_per_window

SHAPED = ("muril-large", "rembert", "xlm-roberta-large")
LENGTH = 384
# fp16 dense tensor peaks in TFLOPS, NVIDIA's datasheets (SXM/PCIe differ: the lower where unsure); matched on the
# name torch reports
PEAKS = {"T4": 65.0, "P100": 18.7, "V100": 125.0, "A10G": 125.0, "A10": 125.0, "L4": 121.0, "A100": 312.0,
         "L40S": 362.0, "H100": 756.0, "H200": 989.0, "RTX 4090": 165.0, "RTX 3090": 71.0}
NO_CUDA = ("no CUDA GPU here (torch.cuda.is_available() is False): make gpu-check measures the GPU path and needs "
           "one; run it on a machine with an NVIDIA GPU and a CUDA build of torch")


def peak_tflops(device_name: str) -> float | None:
    """The fp16 peak of the GPU torch names, the longest matching key (A10G before A10), or None."""
    keys = sorted((k for k in PEAKS if k.lower() in device_name.lower()), key=len, reverse=True)
    return PEAKS[keys[0]] if keys else None


def shaped_config(name: str, shape: Shape, vocab: int | None = None):
    """A transformers config of backbone `name`'s architecture at `shape` (vocab overridable: a tiny tokenizer's)."""
    from transformers import BertConfig, RemBertConfig, XLMRobertaConfig

    common = dict(num_hidden_layers=shape.layers, hidden_size=shape.hidden, intermediate_size=shape.ffn,
                  num_attention_heads=shape.heads, vocab_size=vocab or shape.vocab)
    if name == "rembert":
        return RemBertConfig(input_embedding_size=shape.embedding or shape.hidden,
                             max_position_embeddings=shape.positions, **common)
    if name.startswith("xlm-roberta"):
        return XLMRobertaConfig(max_position_embeddings=shape.positions, type_vocab_size=shape.types, **common)
    return BertConfig(max_position_embeddings=shape.positions, type_vocab_size=shape.types, **common)


def train_windows_per_s(config, device: str, batch: int, length: int = LENGTH, steps: int = 20,
                        warmup: int = 3, fp16: bool = True) -> float:
    """Training windows/s of a random-init QA model: forward, backward, AdamW step, under fp16 autocast with a grad
    scaler on CUDA (as the Trainer runs it), plain fp32 otherwise."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(0)
    model = AutoModelForQuestionAnswering.from_config(config).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    amp = fp16 and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    ids = torch.randint(5, config.vocab_size, (batch, length), device=device)
    labels = torch.randint(0, length, (batch,), device=device)

    def step():
        with torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.float16, enabled=amp):
            loss = model(input_ids=ids, start_positions=labels, end_positions=labels).loss
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return batch * steps / (time.perf_counter() - t0)


def predict_windows_per_s(config, device: str, batch: int = 64, length: int = LENGTH, repeats: int = 5) -> float:
    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_config(config).to(device).eval()
    ids = torch.randint(5, config.vocab_size, (batch, length), device=device)
    amp = device.startswith("cuda")
    sync = torch.cuda.synchronize if amp else (lambda: None)
    with torch.inference_mode(), torch.autocast("cuda" if amp else "cpu", dtype=torch.float16, enabled=amp):
        model(input_ids=ids)
        sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(input_ids=ids)
        sync()
    seconds = time.perf_counter() - t0
    del model
    return batch * repeats / seconds


def throughput_row(name: str, shape: Shape, train_wps: float, predict_wps: float, batch: int,
                   peak: float | None, length: int = LENGTH) -> dict:
    """Measured windows/s as sustained TFLOPS (training: 3 x the forward FLOPs), against the sizing's assumption."""
    fwd = flops_per_window(shape.layers, shape.hidden, shape.ffn, length)
    train_tflops, predict_tflops = 3 * fwd * train_wps / 1e12, fwd * predict_wps / 1e12
    row = {"model": f"{name}-shaped", "batch": batch, "train windows/s": round(train_wps, 1),
           "train TFLOPS": round(train_tflops, 1), "predict windows/s": round(predict_wps, 1),
           "predict TFLOPS": round(predict_tflops, 1)}
    if peak:
        row["train % of peak"] = round(100 * train_tflops / peak, 1)
        row["sizing assumes %"] = round(100 * UTILISATION, 1)
        # what the sizing's windows/s would be on this GPU: its assumed share of this peak
        row["assumed train windows/s"] = round(UTILISATION * peak * 1e12 / (3 * fwd), 1)
    return row


def format_rows(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def shaped_model_dir(name: str, tokenizer_dir: Path, out: Path, shape: Shape | None = None) -> Path:
    """A model directory notebook 03 can load: `name`'s shape, random init, the tiny tokenizer (and its vocab)."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = AutoModelForQuestionAnswering.from_config(shaped_config(name, shape or SHAPES[name], vocab=len(tok)))
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out)
    model.save_pretrained(out)
    return out


def notebooks_on_cuda(out: Path, steps: int, models_dir: Path) -> dict:
    """Notebook 03 on CUDA with a MuRIL-large-shaped model for about `steps` optimizer steps, then notebook 05 over
    it: the seconds each took, the loss at the start and the end, and whether the submission passed its check."""
    import papermill as pm

    from src.notebooks.run import NOTEBOOK_DIR, kernel_config

    model = shaped_model_dir("muril-large", models_dir / "tiny-bert", out / "muril-large-shaped")
    batch = 8
    windows = 120   # the shipped sample: 181 windows at 384/128 with tiny-bert's tokenizer, 2/3 of them in fold 0's
    epochs = max(1, round(steps * batch / windows))
    run = out / "run"
    t0 = time.time()
    pm.execute_notebook(str(NOTEBOOK_DIR / "03_recipe_training.ipynb"), str(out / "03.ipynb"), cwd=str(REPO_ROOT),
                        parameters=dict(backbone="muril-large", model_path=str(model), output_dir=str(run), fold=0,
                                        n_folds=3, epochs=epochs, batch_size=batch, grad_accum=1, learning_rate=1e-5,
                                        max_length=LENGTH, doc_stride=128, save_steps=100_000, num_processes=1,
                                        experiment_log="none"),
                        kernel_name="python3", progress_bar=False, config=kernel_config())
    train_s = time.time() - t0
    history = json.loads((run / "log_history.json").read_text()) if (run / "log_history.json").is_file() else []
    losses = [h["loss"] for h in history if "loss" in h]
    t0 = time.time()
    pm.execute_notebook(str(NOTEBOOK_DIR / "05_submit.ipynb"), str(out / "05.ipynb"), cwd=str(REPO_ROOT),
                        parameters=dict(model_dirs=str(run / "model"), output=str(out / "submission.csv"),
                                        num_processes=1), kernel_name="python3", progress_bar=False,
                        config=kernel_config())
    return {"train seconds": round(train_s), "optimizer steps": max((h.get("step", 0) for h in history), default=0),
            "first loss": losses[0] if losses else None, "last loss": losses[-1] if losses else None,
            "submit seconds": round(time.time() - t0), "submission": str(out / "submission.csv")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m research.bench.gpu_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="notebook 03's optimizer steps, about")
    ap.add_argument("--out", default=str(REPO_ROOT / "runs" / "gpu-check"))
    ap.add_argument("--models-dir", default=str(REPO_ROOT / ".cache" / "backbones"))
    ap.add_argument("--skip-notebooks", action="store_true", help="the throughput table only")
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(f"error: {NO_CUDA}", file=sys.stderr)
        return 2
    from src.common.io import write_json
    from src.kaggle.sizing import fit_batch
    from src.train.backbones import get_backbone

    t_start, out = time.time(), Path(args.out)
    name = torch.cuda.get_device_name(0)
    memory = torch.cuda.get_device_properties(0).total_memory / 2**30
    peak = peak_tflops(name)
    here = Gpu(name, peak or T4.peak_tflops, memory)
    print(f"GPU: {name}, {memory:.1f} GiB, fp16 peak {peak or 'unknown'} TFLOPS; torch {torch.__version__}",
          flush=True)
    report = {"gpu": name, "memory_gib": round(memory, 1), "peak_tflops": peak, "torch": torch.__version__}
    if not args.skip_notebooks:
        report["notebooks"] = notebooks_on_cuda(out, args.steps, Path(args.models_dir))
        print(f"notebook 03 and 05 on CUDA: {report['notebooks']}", flush=True)
    rows = []
    for model in SHAPED:
        shape, b = SHAPES[model], get_backbone(model)
        batch, _ = fit_batch(shape, b.batch_size, b.grad_accum, LENGTH, here)
        config = shaped_config(model, shape)
        rows.append(throughput_row(model, shape, train_windows_per_s(config, "cuda", batch),
                                   predict_windows_per_s(config, "cuda"), batch, peak))
        torch.cuda.empty_cache()
        print(format_rows(rows[-1:]), flush=True)
    report["throughput"] = rows
    report["seconds"] = round(time.time() - t_start)
    print("\n" + format_rows(rows))
    print(f"\nThe sizing assumes {T4_TFLOPS:g} TFLOPS sustained on a T4 ({UTILISATION:.0%} of its fp16 peak) for "
          "training and inference alike (src/kaggle/sizing_facts.py). 'train % of peak' is what this GPU sustained; "
          "on a T4, set T4_TFLOPS from the training rows' TFLOPS. Total "
          f"{report['seconds']} s.")
    write_json(report, out / "gpu_check.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
