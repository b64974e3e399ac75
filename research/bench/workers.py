"""Benchmark workers: one subprocess per measurement, so each is timed and its peak memory read alike."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from src.common.paths import REPO_ROOT


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(module: str, args: list, out: Path, threads: int, env: dict | None = None) -> dict:
    """`python -m module *args` with `threads` threads and offline hubs; returns the JSON it wrote to `out`."""
    full_env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
                    TRANSFORMERS_VERBOSITY="error", **(env or {}))
    cmd = [sys.executable, "-m", module, *map(str, args), str(out)]
    p = subprocess.run(cmd, env=full_env, cwd=REPO_ROOT, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"worker {module} {' '.join(map(str, args))} failed:\n{p.stderr[-3000:]}")
    return json.loads(Path(out).read_text())
