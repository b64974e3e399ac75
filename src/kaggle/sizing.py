"""Sizing of the Kaggle kernels: windows, tokens, FLOPs, hours, host RAM and GPU memory, against Kaggle's limits.

Pure arithmetic over a recipe and the constants of `src/kaggle/sizing_facts.py` (Kaggle's limits, the GPUs, the
backbone shapes, each source's size in questions and tokens, each with where it came from); nothing reads a data set
(they are not on the machine that builds the kernels). The windows per example follow from a source's token lengths
at each stage's window length and stride (`src/kaggle/sizing_windows.py`). Training FLOPs are 3 x the forward pass
(6 x dense parameters x tokens, plus attention); hours are FLOPs over an assumed effective throughput. The tables
`python -m src.kaggle plan` prints from these sizes: `src/kaggle/sizing_table.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from src.kaggle.sizing_facts import (
    ARROW_BYTES_PER_TOKEN,
    ARROW_BYTES_PER_WINDOW,
    CHAII_TRAIN,
    DDP_SPEEDUP,
    FRAMES_GIB,
    GIB,
    GPU_OVERHEAD_GIB,
    HOST_BASE_GIB,
    HOST_RAM_GIB,
    MACHINES,
    MEMORY_MARGIN,
    RUN_HOURS,
    SETUP_HOURS,
    SHAPES,
    SOURCES,
    SUBMIT_HOURS,
    TEST_ROWS,
    TIME_MARGIN,
    Gpu,
    Machine,
    Shape,
    SourceSize,
)
from src.kaggle.sizing_windows import Histogram, flops_per_window, source_windows


# ---------------------------------------------------------------- one kernel
@dataclass
class Limits:
    hours: float
    host_gib: float
    gpu_gib: float


@dataclass
class KernelSize:
    """The estimate for one kernel, and what it is judged against."""
    slug: str
    backbone: str
    machine: Machine
    limits: Limits
    stage_windows: list[float]          # per recipe stage, summed over epochs (training); [test windows] (submit)
    epochs: int
    tokens: float
    flops: float
    setup_hours: float
    host_gib: float
    gpu_gib: float
    batch_size: int = 0                 # the per-device batch the GPU memory is computed at (training)
    submit: bool = False
    precision: str = "fp16"             # the training's: fp16 autocast, or fp32 (the winner's, on his own GPUs)
    grad_accum: int = 0                 # the accumulation that keeps the optimizer batch at `batch_size` (winner plan)
    note: str = ""                      # why the kernel runs as it does (e.g. fp16 where his fp32 would not fit)

    def hours(self, gpu: Gpu, gpus: int = 1) -> float:
        rate = gpu.fp32_tflops if self.precision == "fp32" else gpu.tflops
        return self.setup_hours + self.flops / (rate * 1e12 * (DDP_SPEEDUP if gpus == 2 else 1.0)) / 3600

    @property
    def estimate_hours(self) -> float:
        """On the kernel's machine, all its GPUs used."""
        return self.hours(self.machine.gpu, self.machine.gpus)

    def problems(self) -> list[str]:
        """What does not fit, with the numbers; empty when the kernel fits with the margins."""
        out, limit, gpu = [], self.limits.hours, self.machine.gpu
        what = f"the {limit:g} h {'rerun' if self.submit else 'run'} limit"
        if self.estimate_hours > TIME_MARGIN * limit:
            out.append(f"{self.estimate_hours:.1f} h on {self.machine} > {TIME_MARGIN:.0%} of {what}")
        elif self.hours(gpu) > limit:
            out.append(f"{self.hours(gpu):.1f} h on one {gpu.name} (if only one is used) > {what}")
        if self.host_gib > MEMORY_MARGIN * self.limits.host_gib:
            out.append(f"host RAM {self.host_gib:.1f} GiB > {MEMORY_MARGIN:.0%} of {self.limits.host_gib:g} GiB")
        if self.gpu_gib > MEMORY_MARGIN * self.limits.gpu_gib:
            at = f" at batch {self.batch_size}" if self.batch_size else ""
            out.append(f"GPU memory {self.gpu_gib:.1f} GiB{at} > {MEMORY_MARGIN:.0%} of the {gpu.name}'s "
                       f"{self.limits.gpu_gib:.1f} GiB")
        return out


# ---------------------------------------------------------------- memory
def training_gpu_gib(shape: Shape, batch: int, length: int, fp32: bool = False) -> float:
    """fp16 mixed precision with AdamW: fp32 weights, gradients and two Adam moments (16 bytes a parameter), fp16
    copies of the layer matrices (autocast's cache), activations kept for the backward pass (Korthikanti et al. 2022:
    34 x s x b x h bytes a layer, + 5 x heads x s^2 x b for the score matrices of eager attention), overhead.
    `fp32`: no fp16 copies, and activations of 4 bytes where those counts are of 2 (twice the bytes)."""
    s, h = length, shape.hidden
    per_layer = 34 * s * batch * h + (0 if shape.sdpa else 5 * shape.heads * s * s * batch)
    total = 16 * shape.params + (0 if fp32 else 2 * shape.dense_params) + shape.layers * per_layer * (2 if fp32 else 1)
    return total / GIB + GPU_OVERHEAD_GIB


def inference_gpu_gib(shape: Shape, batch: int = 64, length: int = 384) -> float:
    """fp32 weights under fp16 autocast, one layer's activations at a time."""
    s, h = length, shape.hidden
    activations = 2 * batch * s * (4 * h + shape.ffn) + (0 if shape.sdpa else 2 * shape.heads * s * s * batch)
    return (4 * shape.params + 2 * activations) / GIB + GPU_OVERHEAD_GIB


def fit_batch(shape: Shape, batch: int, grad_accum: int, length: int, gpu: Gpu, fp32: bool = False) -> tuple[int, int]:
    """The registry's batch, halved (and the accumulation doubled: the same optimizer batch) until the estimate fits
    the GPU's memory with the margin; (1, ...) when even one window does not (the caller then refuses)."""
    while batch > 1 and training_gpu_gib(shape, batch, length, fp32) > MEMORY_MARGIN * gpu.memory_gib:
        half = batch // 2 if batch % 2 == 0 else 1
        batch, grad_accum = half, grad_accum * batch // half
    return batch, grad_accum


# ---------------------------------------------------------------- kernels
class SizingError(ValueError):
    """A kernel that cannot be sized (a source or backbone without constants); the message says what to add."""


def backbone_shape(name: str) -> Shape:
    """The shape of a backbone, or of a family's base (`muril-large@short` is muril-large's weights)."""
    from src.train.backbones import registered

    base = registered(name)
    name = base.name if base else name
    if name not in SHAPES:
        raise SizingError(f"backbone {name!r} has no shape in src/kaggle/sizing_facts.py SHAPES (layers, hidden, ffn, "
                          f"heads, vocab from its config.json): add it to size its kernels")
    return SHAPES[name]


def source_size(path: str) -> SourceSize | None:
    return SOURCES.get(PurePosixPath(path).name)


def source_questions(src, recipe_name: str, n_folds: int) -> tuple[SourceSize, float]:
    """A recipe source's constants and how many of its questions a training kernel reads."""
    size = source_size(src.path)
    if size is None:
        raise SizingError(f"recipe {recipe_name!r}, source {src.name!r}: no size known for "
                          f"{PurePosixPath(src.path).name!r}: add its questions and token lengths to SOURCES in "
                          "src/kaggle/sizing_facts.py (python -m research.bench.source_tokens measures them)")
    n = float(size.questions)
    if src.kind == "chaii":         # the fold's training rows only
        n *= (n_folds - 1) / n_folds
    if src.articles != "all":
        n *= src.test_fraction if src.articles == "test" else 1 - src.test_fraction
    if src.limit is not None:
        n = min(n, float(src.limit))
    return size, n


def size_training(slug: str, recipe, backbone: str, n_folds: int, params: dict, machine: str) -> KernelSize:
    """One training kernel: `recipe` (a `src.train.recipe.Recipe`) over `epochs` with the backbone's batch."""
    from src.train.backbones import get_backbone

    b, shape, m = get_backbone(backbone), backbone_shape(backbone), MACHINES[machine]
    epochs = int(params.get("epochs") or b.epochs)
    batch = int(params.get("batch_size") or b.batch_size)
    aug = recipe.augment
    stage_windows, tokens, flops, longest, stage_bytes = [], 0.0, 0.0, 0, 0.0
    for stage, (length, stride) in zip(recipe.stages, recipe.stage_lengths(), strict=True):
        hist = Histogram()
        for src in stage.sources:
            size, n = source_questions(src, recipe.name, n_folds)
            src_len, src_stride = src.max_length or length, src.doc_stride or stride
            # a source's own keep probability (the winner's per-source draw) keeps that fraction in expectation
            keep = aug.negative_fraction if src.negative_keep is None else src.negative_keep
            one = source_windows(size, n, src_len, src_stride, aug.random_crop, keep)
            for _ in range(src.repeats):
                hist.lengths += one.lengths
                hist.weights += one.weights
            longest = max(longest, src_len)
        mean, mean_sq = hist.batch_max(batch)
        stage_windows.append(hist.windows * epochs)
        tokens += hist.windows * mean * epochs
        flops += 3 * hist.windows * flops_per_window(shape.layers, shape.hidden, shape.ffn, mean, mean_sq) * epochs
        stage_bytes = max(stage_bytes, hist.windows * (mean * ARROW_BYTES_PER_TOKEN + ARROW_BYTES_PER_WINDOW))
    # the held-out fold, scored once at the end (windows sorted by length: no padding)
    valid = source_windows(SOURCES["train.csv"], CHAII_TRAIN / n_folds, int(params.get("max_length") or b.max_length),
                           int(params.get("doc_stride") or b.doc_stride), False)
    mean, mean_sq = valid.batch_max(1)
    flops += valid.windows * flops_per_window(shape.layers, shape.hidden, shape.ffn, mean, mean_sq)
    # windows are built before the model loads (train_recipe_fold): the larger of the two phases
    host = HOST_BASE_GIB + FRAMES_GIB + max(stage_bytes, 4 * shape.params) / GIB
    return KernelSize(slug, backbone, m, Limits(RUN_HOURS, HOST_RAM_GIB, m.gpu.memory_gib), stage_windows, epochs,
                      tokens, flops, SETUP_HOURS, host, training_gpu_gib(shape, batch, longest), batch)


def size_winner(slug: str, models: list, machine: str, n_folds: int = 3) -> KernelSize:
    """One training kernel of the winner's plan (`src.kaggle.winner_plan`: `models` are the rows it trains), sized
    from his run as his notebook logged it rather than from a recipe's sources: his windows (`train_windows` x
    `epochs`), each padded to his window length (his prepare_train_features pads to max_length: XLMR_pretraining68
    cell 4; a run with progressive resizing is counted at its longest length, an upper bound), his batch (halved,
    with the accumulation doubled, where the GPU's memory needs it), and the held-out fold scored every `eval_steps`,
    at each kept checkpoint and at the end. In his precision (fp32, on his own GPUs) when that fits the kernel's
    limits, else in fp16 autocast, and `note` says why."""
    m = models[0]
    shape, mach = backbone_shape(m.backbone), MACHINES[machine]
    windows, length = float(m.train_windows * m.epochs), m.longest
    flops = 3 * windows * flops_per_window(shape.layers, shape.hidden, shape.ffn, length)
    if m.held_out:
        kept = {x.checkpoint_step for x in models} - {None}
        scorings = 1 + len(kept) + (m.total_steps // m.eval_steps if m.eval_steps else 0)
        valid = source_windows(SOURCES["train.csv"], CHAII_TRAIN / n_folds, m.max_length, m.doc_stride, False)
        mean, mean_sq = valid.batch_max(1)
        flops += scorings * valid.windows * flops_per_window(shape.layers, shape.hidden, shape.ffn, mean, mean_sq)
    stage_bytes = m.train_windows * (length * ARROW_BYTES_PER_TOKEN + ARROW_BYTES_PER_WINDOW)
    host = HOST_BASE_GIB + FRAMES_GIB + max(stage_bytes, 4 * shape.params) / GIB

    def at(precision: str) -> KernelSize:
        fp32 = precision == "fp32"
        batch, accum = fit_batch(shape, m.batch_size, m.grad_accum, length, mach.gpu, fp32)
        return KernelSize(slug, m.backbone, mach, Limits(RUN_HOURS, HOST_RAM_GIB, mach.gpu.memory_gib), [windows],
                          m.epochs, windows * length, flops, SETUP_HOURS, host,
                          training_gpu_gib(shape, batch, length, fp32), batch, precision=precision, grad_accum=accum)

    his = at(m.precision)
    if m.precision != "fp32" or not his.problems():
        return his
    size = at("fp16")
    size.note = f"fp16: in his fp32, {'; '.join(his.problems())}"
    return size


def size_submit(slug: str, counts: dict[str, int], machine: str, test_rows: int = TEST_ROWS) -> KernelSize:
    """The submit kernel: every trained model over the hidden test set (chaii-like contexts), then the blend."""
    from src.train.backbones import get_backbone

    m = MACHINES[machine]
    windows, tokens, flops, logits, offsets, load, gpu_gib = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    for name, k in counts.items():
        b, shape = get_backbone(name), backbone_shape(name)
        hist = source_windows(SOURCES["train.csv"], test_rows, b.max_length, b.doc_stride, False)
        mean, mean_sq = hist.batch_max(1)
        windows += k * hist.windows
        tokens += k * hist.windows * mean
        flops += k * hist.windows * flops_per_window(shape.layers, shape.hidden, shape.ffn, mean, mean_sq)
        logits += k * hist.windows * b.max_length * 2 * 2      # fp16 start and end logits per token, kept per model
        offsets += hist.windows * b.max_length * 2 * 4         # int32 offsets, shared by a backbone's models
        load = max(load, 4 * shape.params)                     # one model loaded at a time
        gpu_gib = max(gpu_gib, inference_gpu_gib(shape, length=b.max_length))
    host = HOST_BASE_GIB + FRAMES_GIB + (load + logits + offsets) / GIB
    return KernelSize(slug, "+".join(f"{k}x {n}" for n, k in counts.items()), m,
                      Limits(SUBMIT_HOURS, HOST_RAM_GIB, m.gpu.memory_gib), [windows], 1, tokens, flops, SETUP_HOURS,
                      host, gpu_gib, submit=True)
