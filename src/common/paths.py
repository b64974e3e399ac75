"""Where things are: on Kaggle, on Colab and locally, with explicit overrides.

Kaggle mounts the competition and every attached model dataset read-only under `/kaggle/input` and lets a
kernel write only to `/kaggle/working`; locally the repo's `input/` holds a small sample in the same format.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

COMPETITION = "chaii-hindi-and-tamil-question-answering"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Real public data and tools for benchmarks live beside the repo (read by path, never copied in).
SHARED_DIR = Path(os.environ.get("CHAII_SHARED", REPO_ROOT.parent / "shared"))
# Large things built outside the repo (e5-small, benchmark and ablation runs).
CACHE_DIR = Path(os.environ.get("CHAII_CACHE", Path.home() / ".cache" / "chaii-recipes"))
KAGGLE_INPUT = Path("/kaggle/input")
KAGGLE_WORKING = Path("/kaggle/working")
KAGGLE_ROOT_ENV = "CHAII_KAGGLE_ROOT"  # replaces `/` for Kaggle: a simulated /kaggle tree (tests of built kernels)


@dataclass(frozen=True)
class Paths:
    env: str          # "kaggle", "colab" or "local"
    data_dir: Path    # the competition CSVs (train.csv, test.csv, sample_submission.csv)
    models_dir: Path  # where backbone directories are looked up by name
    work_dir: Path    # where runs write models, predictions and submission.csv

    def data_file(self, name: str) -> Path:
        return require(self.data_dir / name, f"competition file {name!r}")


def detect_env() -> str:
    """'kaggle' inside a Kaggle kernel, 'colab' inside Colab, else 'local'."""
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or (kaggle_root() / "kaggle" / "input").is_dir():
        return "kaggle"
    if "google.colab" in sys.modules or os.environ.get("COLAB_RELEASE_TAG"):
        return "colab"
    return "local"


def kaggle_root() -> Path:
    """`/`, or the root of a simulated Kaggle tree named by $CHAII_KAGGLE_ROOT."""
    return Path(os.environ.get(KAGGLE_ROOT_ENV) or "/")


def default_paths(env: str, root: Path | None = None) -> Paths:
    """The conventional locations for `env`; `root` (default: `kaggle_root()`) replaces `/` for Kaggle."""
    if env == "kaggle":
        base = Path(root) if root else kaggle_root()
        kin, kout = base / "kaggle" / "input", base / "kaggle" / "working"
        return Paths(env, kin / COMPETITION, kin, kout)
    if env == "colab":
        return Paths(env, REPO_ROOT / "input", Path("/content/models"), Path("/content/runs"))
    if env == "local":
        models = Path(os.environ.get("CHAII_MODELS", REPO_ROOT / ".cache" / "backbones"))
        return Paths(env, REPO_ROOT / "input", models, REPO_ROOT / "runs")
    raise ValueError(f"unknown environment {env!r}: expected 'kaggle', 'colab' or 'local'")


def resolve_paths(
    data_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    env: str | None = None,
) -> Paths:
    """Detect the environment and apply explicit overrides (empty strings count as 'not given')."""
    env = env or detect_env()
    d = default_paths(env)
    return Paths(
        env,
        Path(data_dir) if data_dir else d.data_dir,
        Path(models_dir) if models_dir else d.models_dir,
        Path(work_dir) if work_dir else d.work_dir,
    )


def require(path: str | os.PathLike, what: str) -> Path:
    """Return `path` if it exists, else fail with a message that names it and says what it should be."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path} (pass its location explicitly or attach it)")
    return path
