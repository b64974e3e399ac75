"""The offline wheels dataset: pip resolves the Hugging Face stack for Kaggle's interpreter; kernels check the image.

    python -m src.kaggle.wheels build --out kernels/chaii-recipes-wheels --user NAME [--python-version 3.11]
                               [--platform manylinux_2_35_x86_64]

A Kaggle kernel without internet installs the stack `src/` is written for from this dataset, but keeps what Kaggle's
image has compiled (CUDA torch, numpy, pandas, pyarrow, ...). pip has no "already installed on the target" option,
so pip resolves the whole closure for the target (metadata only) under the image pins as constraints, and the
dataset keeps the part reachable from our roots without passing through an image package. The kernel installs it
with dependencies checked (no --no-deps), so pip itself confirms offline that the image satisfies what we ship;
before that, `kernel_install.check_image` stops at once, with one message, if the image is outside the pins.
"""
from __future__ import annotations

import argparse
import json
import platform as _platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from src.common.io import write_json, write_text
from src.common.paths import REPO_ROOT

WHEELS_SLUG = "chaii-recipes-wheels"
# Kaggle's GPU image: CPython 3.11 on Ubuntu 22.04 (glibc 2.35), x86_64
KAGGLE_PYTHON = "3.11"
KAGGLE_PLATFORM = "manylinux_2_35_x86_64"
# The roots: the Hugging Face stack, in the versions pinned in requirements.txt (what src/ is tested with)
HF_STACK = ("transformers", "tokenizers", "datasets", "accelerate", "safetensors")
# What src/ needs from Kaggle's image, in the ranges it is written for: torch 2 APIs (torch.amp, SDPA in
# transformers 5), numpy 2 and pandas 2+ semantics (copy-on-write, str dtype) used by data/postprocess.
IMAGE_PINS = {
    "torch": ">=2.4,<3",
    "numpy": ">=2.0,<3",
    "pandas": ">=2.2,<4",
}
# Left to Kaggle's image, never shipped: compiled packages other image packages are built against (CUDA torch and
# everything reached only through it, numpy, pandas, pyarrow, scipy, scikit-learn), compiled packages the image's
# own tools pin (psutil, pyyaml, regex, xxhash, pydantic) and setuptools (pip's). Pure-Python, backward-compatible
# packages (packaging, typing-extensions, filelock, ...) are shipped: one pin fewer that an image could miss.
IMAGE_PROVIDED = frozenset({
    "torch", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "psutil", "pyyaml", "regex", "xxhash",
    "pydantic", "pydantic-core", "setuptools",
})
SRC = "src/ of chaii-recipes"


def canonical(name: str) -> str:
    """PEP 503 name: 'PyYAML' -> 'pyyaml', 'typing_extensions' -> 'typing-extensions'."""
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- requirements and exclusions (pure)
def hf_requirements(path: Path = REPO_ROOT / "requirements.txt", names=HF_STACK) -> list[str]:
    """The `name==version` lines of requirements.txt for the roots; a root without a pin is an error."""
    from packaging.requirements import Requirement

    pins = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            pins[canonical(req.name)] = (n, str(req))
    missing = [name for name in names if canonical(name) not in pins]
    if missing:
        raise ValueError(f"{path}: no pinned line for {', '.join(missing)}: the wheels dataset ships pinned versions")
    return [pins[canonical(name)][1] for name in names]


@dataclass(frozen=True)
class Resolved:
    """One package of pip's installation report."""
    name: str                  # canonical
    version: str
    requires: tuple[str, ...]  # Requires-Dist
    extras: tuple[str, ...] = ()  # requested extras (roots)
    requested: bool = False


def parse_report(report: dict) -> list[Resolved]:
    """pip's `--report` JSON -> one `Resolved` per package it would install."""
    return [Resolved(canonical(item["metadata"]["name"]), item["metadata"]["version"],
                     tuple(item["metadata"].get("requires_dist") or ()), tuple(item.get("requested_extras") or ()),
                     bool(item.get("requested"))) for item in report["install"]]


def split_closure(resolved: list[Resolved], environment: dict,
                  image: frozenset = IMAGE_PROVIDED) -> tuple[list[Resolved], dict[str, list[str]]]:
    """(what to ship, what the shipped packages need from the image: name -> ['>=1 (by pkg==v)', ...]).

    Walks pip's resolution from the requested packages along requirements whose markers hold in `environment`
    (the one pip evaluated them in) and stops at image packages: what only an image package needs (CUDA
    libraries under torch) is not shipped. This selects from pip's result; the versions are pip's.
    """
    from packaging.requirements import Requirement

    by_name = {r.name: r for r in resolved}
    ship: dict[str, Resolved] = {}
    needs: dict[str, list[str]] = {}
    todo = [(r.name, set(r.extras)) for r in resolved if r.requested]
    seen: set[tuple[str, frozenset]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        pkg = by_name[name]
        if name in image:
            continue
        ship[name] = pkg
        for line in pkg.requires:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({**environment, "extra": e}) for e in extras | {""}):
                continue
            dep = canonical(req.name)
            if dep in image:
                needs.setdefault(dep, []).append(f"{req.specifier or 'any'} (by {name}=={pkg.version})")
            elif dep not in by_name:
                raise ValueError(f"pip's report has no {dep!r}, which {name}=={pkg.version} requires ({line!r})")
            todo.append((dep, set(req.extras)))
    return sorted(ship.values(), key=lambda r: r.name), dict(sorted(needs.items()))


def image_pins(needs: dict[str, list[str]] | None = None, own: dict[str, str] = IMAGE_PINS) -> dict[str, dict]:
    """What the kernel needs from Kaggle's image: our own ranges plus those of the shipped wheels.

    {name: {"specifier": ">=2.4,<3", "needed_by": ["src/ (chaii-recipes)", "accelerate==1.15.0"]}}
    """
    from packaging.specifiers import SpecifierSet

    pins: dict[str, dict] = {name: {"specifier": SpecifierSet(spec), "needed_by": [f"{spec} (by {SRC})"]}
                             for name, spec in own.items()}
    for name, reasons in (needs or {}).items():
        pin = pins.setdefault(name, {"specifier": SpecifierSet(), "needed_by": []})
        for reason in reasons:
            spec = reason.split(" (by ", 1)[0]
            pin["specifier"] &= SpecifierSet("" if spec == "any" else spec)
            pin["needed_by"].append(reason)
    return {name: {"specifier": str(p["specifier"]), "needed_by": p["needed_by"]} for name, p in sorted(pins.items())}


def platform_tags(platform: str) -> list[str]:
    """`manylinux_2_35_x86_64` -> itself and every older glibc level and legacy alias it runs.

    pip 23 takes --platform literally (it widens only manylinux2014/2010), so the target's levels are listed here.
    """
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if not m or m.group(1) != "2":
        return [platform]
    minor, arch = int(m.group(2)), m.group(3)
    tags = [f"manylinux_2_{k}_{arch}" for k in range(minor, 4, -1)]
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{alias}_{arch}" for k, alias in aliases.items() if k <= minor]


def target_args(python_version: str, platform: str) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp"]
    for tag in platform_tags(platform):
        args += ["--platform", tag]
    return args


def local_target() -> tuple[str, str]:
    """(python version, manylinux platform) of this interpreter: the same code path, tested here."""
    libc, version = _platform.libc_ver()
    if libc != "glibc":
        raise RuntimeError(f"not a glibc Linux ({libc or 'unknown libc'}): no manylinux platform for this machine")
    major, minor = version.split(".")[:2]
    return f"{sys.version_info.major}.{sys.version_info.minor}", f"manylinux_{major}_{minor}_{_platform.machine()}"


# ---------------------------------------------------------------- building the dataset (side effects: pip)
def resolve(requirements: list[str], python_version: str, platform: str,
            constraints: dict[str, str] = IMAGE_PINS) -> tuple[list[Resolved], dict]:
    """pip's resolution of `requirements` for the target, metadata only: (packages, marker environment)."""
    with tempfile.TemporaryDirectory() as tmp:
        cons = Path(tmp) / "constraints.txt"
        cons.write_text("".join(f"{name}{spec}\n" for name, spec in constraints.items()), encoding="utf-8")
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--report", str(report), "--target", str(Path(tmp) / "t"),
               *target_args(python_version, platform), "-c", str(cons), *requirements]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"pip could not resolve {' '.join(requirements)} for CPython {python_version} on "
                               f"{platform}:\n{out.stderr.strip()}")
        data = json.loads(report.read_text(encoding="utf-8"))
    return parse_report(data), data["environment"]


def build_wheels(dest: Path, user: str, requirements: list[str] | None = None, python_version: str = KAGGLE_PYTHON,
                 platform: str = KAGGLE_PLATFORM, image: frozenset = IMAGE_PROVIDED,
                 slug: str = WHEELS_SLUG) -> Path:
    """The wheels dataset in `dest`: the shipped wheels, requirements.txt, image-pins.json, dataset-metadata.json.

    `requirements` default to the HF stack's pins in requirements.txt; pip resolves them for CPython
    `python_version` on `platform`; wheels of an earlier build that are no longer shipped are removed.
    """
    dest = Path(dest)
    requirements = hf_requirements() if requirements is None else list(requirements)
    if sys.version_info[:2] != tuple(int(x) for x in python_version.split(".")[:2]):
        # pip evaluates environment markers with the running interpreter, whatever --python-version says
        print(f"warning: building for Python {python_version} with Python {sys.version.split()[0]}: "
              "markers are evaluated for the latter", file=sys.stderr)
    resolved, environment = resolve(requirements, python_version, platform)
    ship, needs = split_closure(resolved, environment, image)
    pinned = [f"{r.name}=={r.version}" for r in ship]
    dest.mkdir(parents=True, exist_ok=True)
    print(f"pip download {len(pinned)} wheels for CPython {python_version} {platform} -> {dest}", flush=True)
    out = subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
                          "--no-deps", *target_args(python_version, platform), "-d", str(dest), *pinned],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pip download into {dest} failed:\n{out.stderr.strip()}")
    from packaging.utils import parse_wheel_filename

    for wheel in dest.glob("*.whl"):
        name, version, *_ = parse_wheel_filename(wheel.name)
        if f"{canonical(name)}=={version}" not in pinned:
            wheel.unlink()
    write_text("".join(f"{line}\n" for line in pinned), dest / "requirements.txt")
    write_json(image_pins(needs), dest / "image-pins.json")
    write_json({"title": "chaii-recipes wheels", "id": f"{user}/{slug}", "licenses": [{"name": "other"}]},
               dest / "dataset-metadata.json")
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.kaggle.wheels", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="resolve and download the wheels dataset for Kaggle's interpreter")
    b.add_argument("--out", required=True, help="the dataset folder (e.g. kernels/chaii-recipes-wheels)")
    b.add_argument("--user", required=True, help="Kaggle user name: the dataset is <user>/" + WHEELS_SLUG)
    b.add_argument("--python-version", default=KAGGLE_PYTHON)
    b.add_argument("--platform", default=KAGGLE_PLATFORM, help="manylinux_2_<glibc>_<arch> of the image")
    args = ap.parse_args(argv)
    try:
        dest = build_wheels(Path(args.out), args.user, python_version=args.python_version, platform=args.platform)
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wheels dataset: {dest} ({len((dest / 'requirements.txt').read_text().split())} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
