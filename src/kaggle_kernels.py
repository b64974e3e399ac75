"""Kaggle kernels: the command line, and (until src/wheels.py lands) the offline wheels dataset.

    python -m src.kaggle_kernels build [--user NAME] [--counts muril-large=3,rembert=5,xlm-roberta-large-squad2=5]
                                       [--set epochs=1] [--no-wheels]              # -> kernels/<slug>/
    python -m src.kaggle_kernels push                                              # kaggle kernels push -p DIR
    python -m src.kaggle_kernels status [--wait]                                   # kaggle kernels status ID

The work is in `kernel_metadata` (metadata checks), `kernel_plan` (which kernels, parameters, sources),
`kernel_build` (notebooks and folders) and `kaggle_cli` (credentials, push, status, this command line).
"""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .io import write_json, write_text
from .kernel_plan import WHEELS_SLUG

# The Hugging Face stack in the versions src/ is written for; what Kaggle's image has compiled (CUDA torch,
# numpy, pandas, pyarrow, ...) stays as it is, because replacing it offline breaks the packages built against it.
WHEEL_ROOTS = ["transformers", "tokenizers", "accelerate", "datasets", "safetensors", "huggingface-hub"]
KAGGLE_IMAGE = {"torch", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "psutil", "pyyaml", "regex",
                "xxhash", "pydantic-core", "pydantic", "setuptools", "packaging", "typing-extensions"}


# ---------------------------------------------------------------- wheels (side effects: pip)
def wheel_requirements(roots=WHEEL_ROOTS, exclude=KAGGLE_IMAGE) -> list[str]:
    """`name==version` for the installed closure of `roots`, minus what Kaggle's image provides."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen or name in exclude:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist.version
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return [f"{n}=={v}" for n, v in sorted(seen.items())]


def build_wheels(dest: Path, user: str, requirements: list[str], python_version: str = "3.11",
                 platform: str = "manylinux2014_x86_64") -> Path:
    """Download the wheels for Kaggle's platform into `dest`, with requirements.txt and dataset-metadata.json."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
           "--platform", platform, "--python-version", python_version, "--implementation", "cp", "-d", str(dest),
           *requirements]
    print(f"pip download {len(requirements)} wheels -> {dest}", flush=True)
    subprocess.run(cmd, check=True)
    write_text("\n".join(requirements) + "\n", dest / "requirements.txt")
    write_json({"title": "chaii-recipes wheels", "id": f"{user}/{WHEELS_SLUG}", "licenses": [{"name": "other"}]},
               dest / "dataset-metadata.json")
    return dest


def install_cell_source(wheels_slug: str = WHEELS_SLUG) -> str:
    """A kernel's first code cell: install the wheels dataset offline."""
    return ("# Offline install: the wheels dataset holds the Hugging Face stack src/ is written for\n"
            "import subprocess, sys\nfrom pathlib import Path\n\n"
            f'WHEELS = Path("../input/{wheels_slug}")  # relative to /kaggle/working\n'
            'assert (WHEELS / "requirements.txt").is_file(), f"attach the dataset {WHEELS.name} (make kernels builds it)"\n'
            'subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--find-links",\n'
            '                str(WHEELS), "-r", str(WHEELS / "requirements.txt")], check=True)')


def main(argv: list[str] | None = None) -> int:
    from .kaggle_cli import main as cli_main  # here, not at the top: kaggle_cli -> kernel_build imports the wheels

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
