"""Kaggle kernel metadata: `kernel-metadata.json` built and checked before anything is sent.

Each check names the file and the field, and catches what `kaggle kernels push` would send wrong or Kaggle would
misread: a placeholder owner, a title that resolves to another slug, a missing `enable_internet` (the CLI defaults it
to true), internet on a submission kernel, the `c/`, `code/`, `dataset/` prefixes that `kaggle kernels pull -m` writes,
a GPU kernel that does not name its machine (`machine_shape`) or names one Kaggle does not offer.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from src.common.paths import COMPETITION, REPO_ROOT

ROOT_METADATA = REPO_ROOT / "kernel-metadata.json"   # the submit kernel's template: title, flags, slug
USER_PLACEHOLDER = "your-kaggle-username"
# what `kaggle kernels pull -m` writes in front of source names, and push then rejects or misreads
SOURCE_PREFIXES = ("c/", "code/", "dataset/")
SLUG_MAX = 50               # Kaggle caps a kernel slug at 50 characters
SLUG_RE = re.compile(rf"^[a-z0-9][a-z0-9-]{{3,{SLUG_MAX - 2}}}[a-z0-9]$")   # 5-50 chars, lowercase, digits, hyphens
USER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# `machine_shape`: the accelerator `kaggle kernels push` asks for (kaggle CLI 2.2.4 sends it from the metadata, or
# `--accelerator`, which overrides it; without either Kaggle picks). kagglesdk 0.1.38's ApiSaveKernelRequest lists
# NvidiaTeslaT4, NvidiaTeslaP100 and Tpu1VmV38; these kernels run torch on CUDA, so only the two GPUs.
MACHINE_SHAPES = ("NvidiaTeslaT4", "NvidiaTeslaP100")
DEFAULT_MACHINE = "NvidiaTeslaT4"


class MetadataError(ValueError):
    """A kernel-metadata.json that Kaggle would reject or misread; the message names the file and field."""


def strip_source_prefixes(meta: dict) -> dict:
    """A copy with `c/`, `code/`, `dataset/` removed from source names (as `kaggle kernels pull -m` writes them)."""
    out = copy.deepcopy(meta)
    for key in ("dataset_sources", "kernel_sources", "competition_sources"):
        if key not in out:
            continue
        names = []
        for name in out[key] or []:
            for prefix in SOURCE_PREFIXES:
                if name.startswith(prefix):
                    name = name[len(prefix):]
            names.append(name)
        out[key] = names
    return out


def check_metadata(meta: dict, where: str, submit: bool = False, folder: Path | None = None) -> None:
    """Raise `MetadataError` naming `where` and the field for anything push would send wrong."""
    from slugify import slugify  # python-slugify, the kaggle CLI's own dependency

    def bad(field_: str, why: str):
        raise MetadataError(f"{where}: field {field_!r}: {why}")

    kid = meta.get("id")
    if not kid:
        bad("id", "missing; expected '<username>/<kernel-slug>'")
    parts = str(kid).split("/")
    if len(parts) != 2:
        bad("id", f"{kid!r} is not '<username>/<kernel-slug>'")
    user, slug = parts
    if user == USER_PLACEHOLDER:
        bad("id", f"owner is the placeholder {USER_PLACEHOLDER!r}: pass --user or configure the kaggle CLI")
    if not USER_RE.match(user):
        bad("id", f"user name {user!r} has invalid characters (lowercase letters, digits, '-', '_')")
    if not SLUG_RE.match(slug):
        bad("id", f"slug {slug!r} is invalid: 5-50 characters, lowercase letters, digits and '-' only")
    title = meta.get("title") or ""
    if len(title) < 5:
        bad("title", f"{title!r}: at least 5 characters")
    if slugify(title) != slug:
        bad("title", f"{title!r} resolves to slug {slugify(title)!r}, not {slug!r}: push would make a new kernel")
    code_file = meta.get("code_file")
    if not code_file:
        bad("code_file", "missing: the notebook to run")
    if folder is not None and not (Path(folder) / code_file).is_file():
        bad("code_file", f"{code_file!r} not found in {folder}")
    if meta.get("language") != "python":
        bad("language", f"{meta.get('language')!r}: expected 'python'")
    if meta.get("kernel_type") != "notebook":
        bad("kernel_type", f"{meta.get('kernel_type')!r}: expected 'notebook'")
    for key in ("is_private", "enable_gpu", "enable_internet"):
        if not isinstance(meta.get(key), bool):
            # the CLI defaults a missing enable_internet to true; say it explicitly
            bad(key, f"{meta.get(key)!r}: write true or false explicitly")
    shape = meta.get("machine_shape")
    if shape is None and meta["enable_gpu"]:
        bad("machine_shape", f"missing: name the GPU, one of {', '.join(MACHINE_SHAPES)} (else Kaggle picks one)")
    if shape is not None and shape not in MACHINE_SHAPES:
        bad("machine_shape", f"{shape!r}: expected one of {', '.join(MACHINE_SHAPES)}")
    if shape is not None and not meta["enable_gpu"]:
        bad("machine_shape", f"{shape!r} names a GPU but enable_gpu is false")
    if submit and meta["enable_internet"]:
        bad("enable_internet", "true on a submission kernel: code competitions reject kernels with internet")
    for key in ("dataset_sources", "kernel_sources"):
        for name in meta.get(key) or []:
            if name.startswith(SOURCE_PREFIXES):
                bad(key, f"{name!r} has a {name.split('/')[0]}/ prefix (from `kernels pull -m`): remove it")
            if len(name.split("/")) != 2 or not all(name.split("/")):
                bad(key, f"{name!r} is not '<owner>/<slug>'")
    for name in meta.get("competition_sources") or []:
        if "/" in name:
            bad("competition_sources", f"{name!r}: a competition is named by its slug alone")


def kernel_metadata(user: str, slug: str, code_file: str, dataset_sources: list[str], kernel_sources: list[str],
                    template: dict | None = None, machine: str = DEFAULT_MACHINE) -> dict:
    """kernel-metadata.json for one kernel; `template` (the repo root file) supplies title and flags, `machine` the
    `machine_shape` (the plan's choice, over the template's)."""
    meta = dict(id=f"{user}/{slug}", title=slug.replace("-", " "), code_file=code_file, language="python",
                kernel_type="notebook", is_private=True, enable_gpu=True, enable_internet=False,
                dataset_sources=[], competition_sources=[COMPETITION], kernel_sources=[])
    meta.update({k: v for k, v in strip_source_prefixes(template or {}).items() if k not in ("id", "code_file")})
    meta["machine_shape"] = machine
    meta["dataset_sources"] = list(dict.fromkeys([*meta["dataset_sources"], *dataset_sources]))
    meta["kernel_sources"] = list(dict.fromkeys([*meta["kernel_sources"], *kernel_sources]))
    return meta


def read_template(path: Path = ROOT_METADATA) -> dict:
    """The submit kernel's metadata (repo root), checked before anything is built from it."""
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MetadataError(f"{path}: {e}") from None
    code_file = meta.get("code_file")
    if not code_file:
        raise MetadataError(f"{path}: field 'code_file': missing: the notebook to run")
    if not (Path(path).parent / code_file).is_file():
        raise MetadataError(f"{path}: field 'code_file': {code_file!r} not found beside it")
    owner, _, slug = str(meta.get("id") or "").rpartition("/")
    # the owner is replaced by the user at build time, so the placeholder is fine here
    probe = dict(strip_source_prefixes(meta), id=f"{'owner' if owner in ('', USER_PLACEHOLDER) else owner}/{slug}"
                 if slug else None)
    check_metadata(probe, str(path), submit=True)
    return meta


def template_slug(template: dict) -> str:
    return str(template["id"]).split("/")[-1]
