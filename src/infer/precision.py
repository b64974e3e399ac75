"""Mixed precision: whether bf16 autocast runs natively on this machine, and the choice for a training run."""
from __future__ import annotations

from pathlib import Path


def bf16_support(device=None) -> tuple[bool, str]:
    """(whether bf16 autocast runs natively on `device`, why not); default device: the GPU if any, else the CPU.
    On CPU: oneDNN with bf16 kernels and the processor's native bf16 (avx512_bf16 / amx_bf16); without it oneDNN
    emulates bf16, slower than fp32. On GPU: compute capability >= 8, not emulation."""
    import torch

    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        return ((True, "") if torch.cuda.is_bf16_supported(including_emulation=False)
                else (False, "this GPU has no native bf16 (needs Ampere or newer)"))
    if not torch.backends.mkldnn.is_available():
        return False, "this torch build has no oneDNN (mkldnn)"
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False, "oneDNN reports no bf16 support on this CPU"
    except (AttributeError, RuntimeError):
        return False, "this torch cannot report oneDNN bf16 support"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return True, ""   # not Linux: oneDNN's answer is all there is
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return True, ""
    return False, "the CPU has no native bf16 (avx512_bf16 / amx_bf16): emulated bf16 is slower than fp32"


def use_bf16(cfg, fallback: str = "fp32") -> bool:
    """Whether this run trains in bf16: asked for and supported; a refusal is printed with its reason and what the
    run trains in instead (`fallback`: fp16 on a GPU without bf16, such as Kaggle's T4 and P100)."""
    if not cfg.bf16:
        return False
    ok, why = bf16_support()
    if not ok:
        print(f"   bf16 asked for but not used: {why}; training in {fallback}", flush=True)
    return ok
