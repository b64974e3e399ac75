"""Kaggle kernels: build each notebook x backbone as a self-contained offline GPU kernel, push, poll.

    python -m src.kaggle_kernels build [--user NAME] [--folds 0,1] [--no-wheels]   # -> kernels/<slug>/
    python -m src.kaggle_kernels push                                              # kaggle kernels push -p DIR
    python -m src.kaggle_kernels status [--wait]                                   # kaggle kernels status ID

An offline kernel cannot import this repo, so `build` inlines `src/` (one `%%writefile` cell per module, readable
in Kaggle's viewer) and sets the notebook's parameters (papermill's injected-parameters cell). Weights datasets come
from the backbone registry; the Hugging Face stack comes from a wheels dataset built beside the kernels. The submit
kernel's metadata starts from the repo root `kernel-metadata.json`. Pushing and polling call the real kaggle CLI.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .backbones import get_backbone
from .io import write_json, write_text
from .notebooks import NOTEBOOK_DIR
from .paths import COMPETITION, REPO_ROOT

ROOT_METADATA = REPO_ROOT / "kernel-metadata.json"
KERNELS_DIR = REPO_ROOT / "kernels"
WHEELS_SLUG = "chaii-recipes-wheels"
TRAIN_BACKBONES = ["muril-large", "rembert", "xlm-roberta-large-squad2"]
SUBMIT_BACKBONES = ["muril-large"]  # windows must match to average logits: one tokenizer per blend
USER_PLACEHOLDER = "your-kaggle-username"
# what `kaggle kernels pull -m` writes in front of source names, and push then rejects or misreads
SOURCE_PREFIXES = ("c/", "code/", "dataset/")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{3,48}[a-z0-9]$")   # Kaggle: 5-50 chars, lowercase, digits, hyphens
USER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# The Hugging Face stack in the versions src/ is written for; what Kaggle's image has compiled (CUDA torch,
# numpy, pandas, pyarrow, ...) stays as it is, because replacing it offline breaks the packages built against it.
WHEEL_ROOTS = ["transformers", "tokenizers", "accelerate", "datasets", "safetensors", "huggingface-hub"]
KAGGLE_IMAGE = {"torch", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "psutil", "pyyaml", "regex",
                "xxhash", "pydantic-core", "pydantic", "setuptools", "packaging", "typing-extensions"}
TERMINAL = ("complete", "error", "cancel")


class MetadataError(ValueError):
    """A kernel-metadata.json that Kaggle would reject or misread; the message names the file and field."""


# ---------------------------------------------------------------- metadata (pure)
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
                    template: dict | None = None) -> dict:
    """kernel-metadata.json for one kernel; `template` (the repo root file) supplies title and flags."""
    meta = dict(id=f"{user}/{slug}", title=slug.replace("-", " "), code_file=code_file, language="python",
                kernel_type="notebook", is_private=True, enable_gpu=True, enable_internet=False,
                dataset_sources=[], competition_sources=[COMPETITION], kernel_sources=[])
    meta.update({k: v for k, v in strip_source_prefixes(template or {}).items() if k not in ("id", "code_file")})
    meta["dataset_sources"] = list(dict.fromkeys([*meta["dataset_sources"], *dataset_sources]))
    meta["kernel_sources"] = list(dict.fromkeys([*meta["kernel_sources"], *kernel_sources]))
    return meta


@dataclass
class KernelPlan:
    slug: str
    notebook: str
    parameters: dict
    metadata: dict
    submit: bool = False
    needs: list[str] = field(default_factory=list)  # kernels whose output this one reads


def plan_kernels(user: str, backbones: list[str] = TRAIN_BACKBONES, folds: list[int] = (0,),
                 submit_backbones: list[str] = SUBMIT_BACKBONES, template: dict | None = None) -> list[KernelPlan]:
    """Training kernels (notebook 03 per backbone x fold), then the submit kernel (05) over the chosen backbones.

    Inputs are read relative to /kaggle/working (`../input/<slug>`), a kernel's working directory, so the same
    kernel runs in a simulated tree; data and output locations are left to `src.paths` detection.
    """
    template = template if template is not None else read_template()
    wheels = f"{user}/{WHEELS_SLUG}"
    plans = []
    for name in backbones:
        b = get_backbone(name)
        if not b.kaggle_dataset:
            raise ValueError(f"backbone {name!r} has no kaggle_dataset in the registry: it cannot run on Kaggle")
        for k in folds:
            slug = f"chaii-recipes-03-{name}-fold{k}"
            meta = kernel_metadata(user, slug, f"{slug}.ipynb", [b.kaggle_dataset, wheels], [])
            plans.append(KernelPlan(slug, "03_recipe_training", dict(backbone=name, fold=k), meta))
    trained = [p for p in plans if p.parameters["backbone"] in submit_backbones]
    slug = template_slug(template)
    model_dirs = [f"../input/{p.slug}/{p.parameters['backbone']}/fold{p.parameters['fold']}/model" for p in trained]
    meta = kernel_metadata(user, slug, f"{slug}.ipynb", [wheels], [f"{user}/{p.slug}" for p in trained], template)
    plans.append(KernelPlan(slug, "05_submit", dict(model_dirs=",".join(model_dirs)), meta, submit=True,
                            needs=[p.slug for p in trained]))
    return plans


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


# ---------------------------------------------------------------- notebooks
def src_files(src_dir: Path = REPO_ROOT / "src") -> dict[str, str]:
    return {f"src/{p.name}": p.read_text(encoding="utf-8") for p in sorted(Path(src_dir).glob("*.py"))}


def kernel_notebook(name: str, parameters: dict, files: dict[str, str], wheels_slug: str = WHEELS_SLUG):
    """notebooks/<name>.ipynb with the wheels install and `src` written first, and `parameters` injected."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    nb = parameterize_notebook(nb, parameters, kernel_name="python3", language="python")
    header = [
        nbformat.v4.new_markdown_cell(
            f"*Built by `make kernels` from `notebooks/{name}.ipynb` of chaii-recipes: edit the repo, not this "
            "kernel.* The next cells install the wheels dataset offline and write the `src` package beside it."),
        nbformat.v4.new_code_cell(
            "# Offline install: the wheels dataset holds the Hugging Face stack src/ is written for\n"
            "import subprocess, sys\nfrom pathlib import Path\n\n"
            f'WHEELS = Path("../input/{wheels_slug}")  # relative to /kaggle/working\n'
            'assert (WHEELS / "requirements.txt").is_file(), f"attach the dataset {WHEELS.name} (make kernels builds it)"\n'
            'subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--find-links",\n'
            '                str(WHEELS), "-r", str(WHEELS / "requirements.txt")], check=True)'),
        nbformat.v4.new_code_cell("import os\n\nos.makedirs(\"src\", exist_ok=True)"),
    ]
    header += [nbformat.v4.new_code_cell(f"%%writefile {path}\n{text}") for path, text in files.items()]
    nb.cells = header + nb.cells
    for cell in nb.cells:
        cell.pop("id", None)  # fresh ids: the inserted cells have none and duplicates are invalid
    nb.nbformat_minor = 4
    nbformat.validate(nb)
    return nb


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


# ---------------------------------------------------------------- build
def build(out_dir: Path, user: str, backbones=TRAIN_BACKBONES, folds=(0,), submit_backbones=SUBMIT_BACKBONES,
          wheels: bool = True, template_path: Path = ROOT_METADATA) -> list[Path]:
    """Write one folder per kernel (notebook + kernel-metadata.json), checked, and the wheels dataset folder."""
    import nbformat

    if not USER_RE.match(user or "") or user == USER_PLACEHOLDER:
        raise MetadataError(f"kaggle user name {user!r} is invalid: pass --user NAME or configure the kaggle CLI")
    plans = plan_kernels(user, backbones, folds, submit_backbones, read_template(template_path))
    for plan in plans:  # every kernel is checked before the first folder is written
        check_metadata(plan.metadata, str(out_dir / plan.slug / "kernel-metadata.json"), plan.submit)
    files = src_files()
    folders = []
    for plan in plans:
        folder = out_dir / plan.slug
        nb = kernel_notebook(plan.notebook, plan.parameters, files)
        write_text(nbformat.writes(nb), folder / plan.metadata["code_file"])
        write_json(plan.metadata, folder / "kernel-metadata.json")
        check_metadata(plan.metadata, str(folder / "kernel-metadata.json"), plan.submit, folder)
        folders.append(folder)
        print(f"built {plan.metadata['id']}: {folder}", flush=True)
    if wheels:
        build_wheels(out_dir / WHEELS_SLUG, user, wheel_requirements())
    write_json({"order": [f.name for f in folders]}, out_dir / "kernels.json")
    return folders


# ---------------------------------------------------------------- kaggle CLI (side effects: network)
def kaggle_user(explicit: str | None = None) -> str | None:
    """--user, else $KAGGLE_USERNAME, else `username` in kaggle.json ($KAGGLE_CONFIG_DIR or ~/.kaggle)."""
    if explicit:
        return explicit
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    for path in kaggle_json_paths():
        try:
            return json.loads(path.read_text(encoding="utf-8"))["username"]
        except (OSError, ValueError, KeyError):
            continue
    return None


def kaggle_json_paths() -> list[Path]:
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return [Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"]
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path.home() / ".kaggle" / "kaggle.json", xdg / "kaggle" / "kaggle.json"]


def credentials_source() -> str | None:
    """Where the kaggle CLI will find a token (the places it reads, in its order), or None."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "$KAGGLE_API_TOKEN"
    for name in ("access_token", "access_token.txt", "credentials.json"):
        p = Path.home() / ".kaggle" / name
        if p.is_file() and p.read_text(encoding="utf-8").strip():
            return str(p)
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "$KAGGLE_USERNAME/$KAGGLE_KEY"
    for p in kaggle_json_paths():
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if data.get("username") and data.get("key"):
                return str(p)
        except (OSError, ValueError):
            continue
    return None


NO_CREDENTIALS = ("no Kaggle credentials found; nothing was pushed. Create a token at "
                  "https://www.kaggle.com/settings/api, then either export KAGGLE_API_TOKEN=<token>, save it to "
                  "~/.kaggle/access_token, or put kaggle.json (username, key) in ~/.kaggle/ or $KAGGLE_CONFIG_DIR "
                  "(chmod 600); or run `kaggle auth login`.")


def kaggle_cli() -> list[str]:
    """The kaggle CLI of this environment (beside this Python), else the one on PATH."""
    here = Path(sys.executable).with_name("kaggle")
    exe = str(here) if here.exists() else shutil.which("kaggle")
    if not exe:
        raise FileNotFoundError("kaggle CLI not found: pip install kaggle (see requirements.txt)")
    return [exe]


def built_folders(out_dir: Path) -> list[Path]:
    index = out_dir / "kernels.json"
    if not index.exists():
        raise FileNotFoundError(f"{index} not found: run `make kernels` (python -m src.kaggle_kernels build) first")
    return [out_dir / name for name in json.loads(index.read_text(encoding="utf-8"))["order"]]


def load_checked(folder: Path, template_slug_: str | None = None) -> dict:
    path = folder / "kernel-metadata.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    submit = str(meta.get("id", "")).endswith("/" + (template_slug_ or "\0"))
    check_metadata(meta, str(path), submit=submit, folder=folder)
    return meta


def push(out_dir: Path, timeout_s: int = 300) -> int:
    """`kaggle kernels push -p DIR` per built folder, training kernels first; 0 when all were accepted."""
    source = credentials_source()
    if source is None:
        print(f"error: {NO_CREDENTIALS}", file=sys.stderr)
        return 2
    folders = built_folders(out_dir)
    submit_slug = template_slug(read_template())
    try:  # every folder is checked before the first one is sent
        metas = [load_checked(f, submit_slug) for f in folders]
    except MetadataError as e:
        print(f"error: {e}; nothing was pushed", file=sys.stderr)
        return 1
    print(f"pushing {len(folders)} kernels with credentials from {source}", flush=True)
    failed: list[str] = []
    for folder, meta in zip(folders, metas):
        kid = meta["id"]
        missing = [s for s in meta.get("kernel_sources", []) if s in failed]
        if missing:
            print(f"{kid}: not pushed, its inputs failed: {', '.join(missing)}", file=sys.stderr)
            failed.append(kid)
            continue
        out = subprocess.run([*kaggle_cli(), "kernels", "push", "-p", str(folder)], capture_output=True,
                             text=True, timeout=timeout_s)
        text = (out.stdout + out.stderr).strip()
        # the CLI exits 0 after printing "Kernel push error: ..." when the API refuses a kernel
        if out.returncode != 0 or "push error" in text.lower() or "successfully pushed" not in text:
            print(f"{kid}: push FAILED ({folder}):\n  " + "\n  ".join(text.splitlines() or ["(no output)"]),
                  file=sys.stderr)
            failed.append(kid)
        else:
            print(f"{kid}: {text.splitlines()[-1]}", flush=True)
    print(f"{len(folders) - len(failed)}/{len(folders)} kernels pushed", flush=True)
    return 1 if failed else 0


def parse_status(text: str) -> str:
    """'owner/slug has status "KernelWorkerStatus.RUNNING"' -> 'running'."""
    m = re.search(r'has status "([^"]+)"', text)
    return m.group(1).split(".")[-1].lower() if m else ""


def status(out_dir: Path, wait: bool = False, interval_s: float = 60.0, timeout_s: float = 12 * 3600) -> int:
    """`kaggle kernels status ID` for each built kernel; with `wait`, poll until every one has finished."""
    if credentials_source() is None:
        print(f"error: {NO_CREDENTIALS}", file=sys.stderr)
        return 2
    ids = [json.loads((f / "kernel-metadata.json").read_text(encoding="utf-8"))["id"] for f in built_folders(out_dir)]
    deadline = time.time() + timeout_s
    while True:
        states = {}
        for kid in ids:
            out = subprocess.run([*kaggle_cli(), "kernels", "status", kid], capture_output=True, text=True, timeout=120)
            text = (out.stdout + out.stderr).strip()
            states[kid] = parse_status(text) or f"unknown ({text.splitlines()[-1] if text else 'no output'})"
            print(f"{kid}: {states[kid]}", flush=True)
        done = all(s.startswith(TERMINAL) for s in states.values())
        if not wait or done or time.time() > deadline:
            break
        time.sleep(interval_s)
    return 0 if all(s.startswith("complete") for s in states.values()) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.kaggle_kernels", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write kernels/<slug>/ folders and the wheels dataset folder")
    b.add_argument("--user", help="Kaggle user name (default: $KAGGLE_USERNAME or kaggle.json)")
    b.add_argument("--backbones", default=",".join(TRAIN_BACKBONES))
    b.add_argument("--folds", default="0", help="comma-separated folds: one training kernel per backbone x fold")
    b.add_argument("--submit-backbones", default=",".join(SUBMIT_BACKBONES),
                   help="backbones whose fold models the submit kernel averages (one tokenizer)")
    b.add_argument("--no-wheels", action="store_true", help="skip downloading the wheels dataset")
    for p in (b, sub.add_parser("push", help="kaggle kernels push -p DIR for each built kernel"),
              s := sub.add_parser("status", help="kaggle kernels status for each built kernel")):
        p.add_argument("--out", default=str(KERNELS_DIR), help="folder of the built kernels (default: kernels/)")
    s.add_argument("--wait", action="store_true", help="poll until every kernel has finished")
    s.add_argument("--interval", type=float, default=60.0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.cmd == "build":
        user = kaggle_user(args.user)
        if not user:
            print("error: no Kaggle user name: pass --user NAME, set KAGGLE_USERNAME, or put kaggle.json in "
                  "~/.kaggle/ (or $KAGGLE_CONFIG_DIR)", file=sys.stderr)
            return 2
        try:
            build(out, user, args.backbones.split(","), [int(k) for k in args.folds.split(",")],
                  args.submit_backbones.split(","), wheels=not args.no_wheels)
        except MetadataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "push":
        return push(out)
    return status(out, wait=args.wait, interval_s=args.interval)


if __name__ == "__main__":
    sys.exit(main())
