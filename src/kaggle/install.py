"""The kernel's first code cell: check Kaggle's image against the wheels dataset's pins, then install it offline.

`install_cell_source` embeds `check_image` (and its exception) in the cell, so the check runs before anything is
installed and imports nothing from src/. The dataset itself is built by `src.kaggle.wheels`.
"""
from __future__ import annotations

import inspect

from src.kaggle.wheels import WHEELS_SLUG


class ImageMismatch(RuntimeError):
    """Kaggle's image lacks a package the kernel needs, or has it outside the range the wheels were built for."""


def check_image(pins: dict) -> None:
    """Raise `ImageMismatch` naming every package of the image that is missing or outside its pin; else silent.

    Runs inside the kernel before anything is installed, so it imports nothing from src/ (the cell embeds it).
    """
    from importlib import metadata
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # pip is always there and vendors packaging
        from pip._vendor.packaging.specifiers import SpecifierSet

    problems = []
    for name, pin in sorted(pins.items()):
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            found = None
        if found is None or not SpecifierSet(pin["specifier"]).contains(found, prereleases=True):
            problems.append(f"  {name}: {'not installed' if found is None else 'found ' + found}, needed "
                            f"{pin['specifier'] or 'any version'} (for {'; '.join(pin['needed_by'])})")
    if problems:
        raise ImageMismatch(
            "Kaggle's environment does not have what this kernel needs (nothing was installed or run):\n"
            + "\n".join(problems) + "\nWhat to do: in the notebook's Settings > Environment choose 'Always use latest "
            "environment' (or an image with these versions), or attach a wheels dataset built for this image "
            "(python -m src.kaggle.wheels build --out DIR --user NAME --python-version X.Y, "
            "then kaggle datasets version -p DIR).")


def install_cell_source(wheels_slug: str = WHEELS_SLUG) -> str:
    """The kernel's first code cell: check the image against the dataset's pins, then pip install it offline.

    Plain Python (no magics), reading `../input/<wheels_slug>` relative to /kaggle/working; it raises (stopping the
    kernel at once) if the dataset is not attached, the image is outside the pins, or pip refuses the install.
    """
    helpers = inspect.getsource(ImageMismatch) + "\n\n" + inspect.getsource(check_image)
    return f'''# Offline install of the wheels dataset (src/kaggle/wheels.py of chaii-recipes): check Kaggle's image,
# then pip install offline
import importlib, json, subprocess, sys
from pathlib import Path

WHEELS = Path("../input/{wheels_slug}")  # relative to /kaggle/working


{helpers}

for _name in ("requirements.txt", "image-pins.json"):
    if not (WHEELS / _name).is_file():
        raise FileNotFoundError(f"{{WHEELS / _name}} not found: attach the dataset {wheels_slug} to this kernel "
                                "(Add Input; built by `python -m src.kaggle.wheels build` / `make kernels`)")
check_image(json.loads((WHEELS / "image-pins.json").read_text()))
# dependencies are checked (no --no-deps): pip confirms offline that the image satisfies every shipped wheel
_pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                       "--find-links", str(WHEELS), "-r", str(WHEELS / "requirements.txt")],
                      capture_output=True, text=True)
if _pip.returncode != 0:
    raise RuntimeError(f"offline install from {{WHEELS}} failed (exit {{_pip.returncode}}):\\n"
                       f"{{_pip.stdout}}{{_pip.stderr}}")
importlib.invalidate_caches()
print(f"wheels: {{len((WHEELS / 'requirements.txt').read_text().split())}} packages installed offline from {{WHEELS}}")
'''
