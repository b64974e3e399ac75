"""Training on every GPU a kernel has: notebook 03 calls `launch_fold`, which trains one fold in this process or,
with several GPUs, in one process per GPU under DistributedDataParallel (DDP).

On Kaggle's T4 x2 a single process that sees both GPUs gets HF's `nn.DataParallel`: the batch silently doubles (so
the learning-rate schedule changes) and every step copies the weights to the second GPU over PCIe. Here each GPU
gets its own process instead, started from inside the notebook by accelerate's `notebook_launcher`, made for exactly
this (it forks the notebook's process, so nothing may have used CUDA before it). Outside a notebook the equivalent
is `torchrun --nproc_per_node N script.py`: the Trainer reads the same environment (RANK, WORLD_SIZE) under both,
and `fold.training_arguments` keeps one GPU's global batch either way (`partition.split_batch`).

What stays as on one GPU: batch_size x grad_accum windows per optimizer step and so the schedule; a recipe's order
(its sequential sampler's batches are dealt out to the processes in turn); fp16 on GPUs without bf16 (T4, P100).
Rank 0 alone scores the held-out fold and writes the model, oof.csv, metrics.json and the experiment-log row;
`notebook_launcher` returns nothing, so the result is read back from the run folder. Checkpoints resume as before.
One GPU or a CPU (num_processes 0 or 1): `train_fold` / `train_recipe_fold` in this process, no launcher.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pandas as pd

from src.infer.devices import gpu_count, process_count
from src.train.fold import TrainConfig, train_fold
from src.train.fold_outputs import FoldResult, last_complete_checkpoint, read_fold_result
from src.train.partition import split_batch


def train_here(train_df: pd.DataFrame, cfg: TrainConfig, recipe=None, data_dir: str | os.PathLike = "",
               resume: bool | str = False) -> FoldResult:
    """The fold's training in this process: `train_recipe_fold` with a recipe, else `train_fold`."""
    if recipe:
        from src.train.recipe import train_recipe_fold
        return train_recipe_fold(train_df, cfg, recipe, data_dir, resume=resume)
    return train_fold(train_df, cfg, resume=resume)


def free_port() -> str:
    """A free local port for the processes' rendezvous (the fixed default, 29500, may be taken by another run)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def describe(cfg: TrainConfig, n: int, gpus: int) -> str:
    per_device, accum = split_batch(cfg.batch_size, cfg.grad_accum, n)
    where = f"{n} GPUs (DDP, NCCL)" if gpus else f"{n} CPU processes (DDP, gloo)"
    return (f"training on {where}: per-device batch {per_device} x {accum} accumulation step(s) x {n} processes = "
            f"{per_device * accum * n} windows per optimizer step, as one GPU's {cfg.batch_size} x {cfg.grad_accum}")


def launch(function, args: tuple, n: int) -> None:
    """Run `function(*args)` in `n` processes with accelerate's `notebook_launcher` (fork: `function` and `args`
    need not be picklable). A process that fails fails the launch with its traceback (torch elastic's `record`)."""
    import torch
    from accelerate import notebook_launcher

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        raise RuntimeError("CUDA was already used in this process, so the training processes cannot be forked from "
                           "it: restart the kernel and run the notebook from the top (or set num_processes=1)")
    notebook_launcher(function, args=args, num_processes=n, use_port=free_port())


def launch_fold(train_df: pd.DataFrame, cfg: TrainConfig, recipe=None, data_dir: str | os.PathLike = "",
                resume: bool | str = False) -> FoldResult:
    """Train fold `cfg.fold` on `cfg.num_processes` processes (0: one per visible GPU) and return its result.

    One process: `train_here`, exactly as before. Several: `train_here` in each under DDP, then the result rank 0
    wrote into `cfg.output_dir` (`fold_outputs.read_fold_result`). `recipe`: a recipe name, path or `Recipe`
    (empty: plain fine-tuning on `train_df`); `data_dir`: where its external data sets are; `resume`: True = the last
    complete checkpoint in `<output_dir>/checkpoints` (looked up here, once, before the processes start)."""
    gpus = gpu_count()
    n = process_count(cfg.num_processes, gpus)
    if n == 1:
        if gpus > 1:
            print(f"num_processes=1 with {gpus} GPUs visible: the Trainer wraps the model in DataParallel (a batch "
                  f"per GPU, so the global batch is {gpus}x); num_processes=0 trains with DDP", flush=True)
        return train_here(train_df, cfg, recipe, data_dir, resume)
    cfg = cfg.resolved()
    print(describe(cfg, n, gpus), flush=True)
    if resume is True:
        resume = str(last_complete_checkpoint(Path(cfg.output_dir)) or "")
    launch(_train_rank, (train_df, cfg, recipe, data_dir, resume), n)
    return read_fold_result(cfg.output_dir)


def _train_rank(train_df: pd.DataFrame, cfg: TrainConfig, recipe, data_dir, resume) -> None:
    """One process of a launched run: its own GPU first (before anything asks CUDA), then the fold's training."""
    import torch
    from torch.distributed.elastic.multiprocessing.errors import record

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    record(train_here)(train_df, cfg, recipe, data_dir, resume)
