"""The sizing tables `python -m src.kaggle plan` prints: one row per kernel (the folds plan) or per model of his
ensemble (his plan), each against its limits, then the GPU hours against the weekly quota and what they assume.

Pure formatting of `src.kaggle.sizing.KernelSize`s.
"""
from __future__ import annotations

from src.kaggle.sizing import KernelSize
from src.kaggle.sizing_facts import (
    DDP_SPEEDUP,
    MACHINES,
    MEMORY_MARGIN,
    P100,
    SETUP_HOURS,
    T4,
    TIME_MARGIN,
    UTILISATION,
    WEEKLY_GPU_HOURS,
)


def fits(size: KernelSize) -> str:
    return "yes" if not size.problems() else "NO: " + "; ".join(size.problems())


def aligned(head: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell under a dashed rule (a terminal table; no markdown needed here)."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(sizes: list[KernelSize]) -> str:
    """One row per kernel, then the total GPU time against the weekly quota."""
    head = ["kernel", "windows per stage (k)", "epochs", "tokens (M)", "PFLOP", "h P100", "h 1xT4", "h 2xT4",
            "host GiB", "GPU GiB (batch)", "limit", "fits"]
    rows = []
    for s in sizes:
        limit = (f"{s.limits.hours:g} h {'rerun' if s.submit else 'run'}, "
                 f"{s.limits.host_gib:g}/{s.limits.gpu_gib:.0f} GiB")
        rows.append([s.slug, " / ".join(f"{w / 1e3:,.1f}" for w in s.stage_windows), str(s.epochs),
                     f"{s.tokens / 1e6:,.1f}", f"{s.flops / 1e15:,.0f}", f"{s.hours(P100):.1f}", f"{s.hours(T4):.1f}",
                     f"{s.hours(T4, 2):.1f}", f"{s.host_gib:.1f}",
                     f"{s.gpu_gib:.1f}" + (f" ({s.batch_size})" if s.batch_size else ""), limit,
                     fits(s)])
    return "\n".join([aligned(head, rows), totals_line(sizes)])


def format_models_table(rows: list[tuple], submit: KernelSize | None = None, others: list[KernelSize] = (),
                        submit_models: int = 0) -> str:
    """The winner's plan: one row per model of his ensemble (`rows`: (WinnerModel, its kernel's KernelSize)) with his
    public LB and the checkpoint he kept, then its kernel's estimate; a kernel that trains two of his models (79's
    step 1000 and final) is counted on its first row. Then `others` (kernels of families beyond his, one row each),
    the submit kernel (over `submit_models` models), why a kernel deviates from his run (fp16), and the total
    against the weekly quota."""
    head = ["model", "backbone", "fold", "kept", "his LB", "windows (k)", "length", "batch", "precision", "PFLOP",
            "h 1xT4", "h 2xT4", "GPU GiB", "fits"]
    out, seen, notes = [], {}, []
    for m, size in rows:
        first = size.slug not in seen
        seen.setdefault(size.slug, m.experiment)
        cost = ([f"{size.flops / 1e15:,.0f}", f"{size.hours(T4):.1f}", f"{size.hours(T4, 2):.1f}"] if first
                else ["", f"(run of {seen[size.slug]})", ""])
        out.append([m.experiment, m.backbone, m.fold, m.checkpoint, f"{m.public_lb:.3f}",
                    f"{size.stage_windows[0] / 1e3:,.1f}", m.seq_len, f"{size.batch_size} x {size.grad_accum}",
                    size.precision, *cost, f"{size.gpu_gib:.1f}",
                    fits(size)])
        if first and size.note:
            notes.append(f"{m.kernel}: {size.note}")
    for size in others:
        out.append([size.slug, size.backbone, "", "", "", f"{sum(size.stage_windows) / 1e3:,.1f}", "",
                    f"{size.batch_size}", size.precision, f"{size.flops / 1e15:,.0f}", f"{size.hours(T4):.1f}",
                    f"{size.hours(T4, 2):.1f}", f"{size.gpu_gib:.1f}",
                    fits(size)])
    sizes = [size for _, size in {s.slug: (m, s) for m, s in rows}.values()] + list(others)
    if submit is not None:
        out.append(["submit", f"{submit_models or len(rows)} models", "", "", "",
                    f"{submit.stage_windows[0] / 1e3:,.1f}", "", "", "fp16", f"{submit.flops / 1e15:,.0f}",
                    f"{submit.hours(T4):.1f}", f"{submit.hours(T4, 2):.1f}", f"{submit.gpu_gib:.1f}",
                    fits(submit)])
        sizes.append(submit)
    return "\n".join([aligned(head, out), *notes, totals_line(sizes)])


def totals_line(sizes: list[KernelSize]) -> str:
    """The GPU hours all kernels take on their machine against the weekly quota (a notebook counts its hours,
    whatever the number of GPUs), and the assumptions the hours rest on."""
    machine = sizes[0].machine if sizes else MACHINES["NvidiaTeslaT4"]
    total = sum(s.estimate_hours for s in sizes)
    one = sum(s.hours(machine.gpu) for s in sizes)
    alone = f" ({one:.1f} h if one {machine.gpu.name} each)" if machine.gpus > 1 else ""
    return (f"total: {total:.1f} GPU hours on {machine}{alone} = "
            f"{total / WEEKLY_GPU_HOURS:.2f} of a {WEEKLY_GPU_HOURS:g} h weekly GPU quota (an assumption).\n"
            f"assumed: {T4.tflops:.0f} TFLOPS sustained on a T4 and {P100.tflops:.1f} on a P100 in fp16 "
            f"({UTILISATION:.0%} of peak), {DDP_SPEEDUP}x one T4 on 2 x T4, {SETUP_HOURS:g} h setup a kernel; a "
            f"kernel fits under {TIME_MARGIN:.0%} of its time limit on its machine (and inside it on one GPU) and "
            f"{MEMORY_MARGIN:.0%} of its memory.")
