"""Kernel building: each planned kernel as a folder Kaggle runs offline (notebook + kernel-metadata.json).

An offline kernel cannot import this repo, so its notebook inlines `src/` and the recipe it trains with (one
`%%writefile` cell per file, readable in Kaggle's viewer) after the wheels install, and carries its parameters in
papermill's injected-parameters cell. Every kernel's metadata is checked before the first folder is written.
"""
from __future__ import annotations

from pathlib import Path

from src.common.io import write_json, write_text
from src.common.paths import REPO_ROOT
from src.kaggle.extras import add_extra_kernels
from src.kaggle.metadata import (
    DEFAULT_MACHINE,
    ROOT_METADATA,
    USER_PLACEHOLDER,
    USER_RE,
    MetadataError,
    check_metadata,
    read_template,
)
from src.kaggle.plan import (
    DATASETS_CONFIG,
    RECIPE,
    WHEELS_SLUG,
    recipe_file,
    refuse_unfit,
    size_table,
)
from src.kaggle.winner_kernels import plan_for
from src.notebooks.run import NOTEBOOK_DIR

KERNELS_DIR = REPO_ROOT / "kernels"


# ---------------------------------------------------------------- wheels: the only calls into src/kaggle/wheels.py
def install_cell(wheels_slug: str) -> str:
    from src.kaggle.install import install_cell_source

    return install_cell_source(wheels_slug)


def wheels_dataset(dest: Path, user: str) -> Path:
    from src.kaggle.wheels import build_wheels

    return build_wheels(dest, user)


# ---------------------------------------------------------------- notebooks
def kernel_files(recipe: str | Path | None = None, src_dir: Path = REPO_ROOT / "src") -> dict[str, str]:
    """What a kernel writes beside its notebook: every `src/**/*.py` and, with `recipe`, `configs/<recipe>.yaml`."""
    files = {f"src/{p.relative_to(src_dir).as_posix()}": p.read_text(encoding="utf-8")
             for p in sorted(Path(src_dir).rglob("*.py")) if "__pycache__" not in p.parts}
    if recipe:
        path = recipe_file(recipe)
        files[f"configs/{path.stem}.yaml"] = path.read_text(encoding="utf-8")
    return files


def kernel_notebook(name, parameters: dict, files: dict[str, str], wheels_slug: str = WHEELS_SLUG,
                    setup: list[str] | tuple = (), install: bool = True):
    """notebooks/<name>.ipynb (or a notebook given whole: a chain's generated kernel) with the wheels install and
    `files` written first, then the `setup` code cells, and `parameters` injected."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    generated = not isinstance(name, str)
    nb = nbformat.from_dict(name) if generated else load_notebook_node(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    if generated:  # what papermill's loader adds to a notebook it reads
        nb.metadata.setdefault("papermill", {})
        for cell in nb.cells:
            cell.metadata.setdefault("tags", [])
    nb = parameterize_notebook(nb, parameters, kernel_name="python3", language="python")
    folders = sorted({str(Path(p).parent) for p in files})
    source = "`src/kaggle/chain.py`" if generated else f"`notebooks/{name}.ipynb`"
    header = [
        nbformat.v4.new_markdown_cell(
            f"*Built by `make kernels` from {source} of chaii-recipes: edit the repo, not this kernel.* The next "
            f"cells {'install the wheels dataset offline and ' if install else ''}write the `src` package beside it."),
        *([nbformat.v4.new_code_cell(install_cell(wheels_slug))] if install else []),
        nbformat.v4.new_code_cell("import os\n\n" + "\n".join(f'os.makedirs("{d}", exist_ok=True)' for d in folders)),
    ]
    header += [nbformat.v4.new_code_cell(f"%%writefile {path}\n{text}") for path, text in files.items()]
    header += [nbformat.v4.new_code_cell(code) for code in setup]
    nb.cells = header + nb.cells
    for cell in nb.cells:
        cell.pop("id", None)  # fresh ids: the inserted cells have none and duplicates are invalid
    nb.nbformat_minor = 4
    nbformat.validate(nb)
    return nb


# ---------------------------------------------------------------- build (side effects: files)
def build(out_dir: Path, user: str, counts: dict[str, int] | None = None, wheels: bool = True,
          template_path: Path = ROOT_METADATA, recipe: str = RECIPE, datasets_config: Path = DATASETS_CONFIG,
          train_parameters: dict | None = None, machine: str = DEFAULT_MACHINE, limits: bool = True,
          recipes: dict[str, str] | None = None, extras: dict[str, int] | None = None,
          sources_config: Path | None = None, plan: str | None = None) -> list[Path]:
    """Write one folder per planned kernel, checked, `kernels.json` (the push order) and, with `wheels`, the wheels
    dataset folder. `plan` (`winner_kernels.plan_for`): "winner" (the default without `counts`: his 13 models of
    configs/winner_plan.csv, 12 training kernels + the submit kernel) or "folds" (`counts` folds per backbone).

    Every kernel runs on `machine`. With `limits` (the default) the kernels are sized first and a build whose
    kernels do not fit Kaggle's limits is refused with the numbers before anything is written; the sizing table is
    printed at the end. `limits=False` skips the sizing (tiny stand-ins in a simulation). `recipes` gives some
    backbones or families their own recipe (`plan_kernels`); each training kernel inlines the recipe it runs.
    `extras` ({backbone: n}, `extras.parse_extras`: `--with infoxlm`) adds those families' kernels to the plan.
    With `sources_config` (`configs/kaggle_sources.yaml`) the kernels fetch their own inputs (`src.kaggle.chain`):
    the wheels and data kernels come first, no wheels folder is written here, and `kernels.json` says what each
    kernel needs.
    """
    import nbformat

    out_dir = Path(out_dir)
    if not USER_RE.match(user or "") or user == USER_PLACEHOLDER:
        raise MetadataError(f"kaggle user name {user!r} is invalid: pass --user NAME or configure the kaggle CLI")
    plans = plan_for(plan, user, counts, read_template(template_path), recipe, datasets_config, train_parameters,
                     machine, sized=limits, recipes=recipes)
    plans = add_extra_kernels(plans, extras or {}, user, machine, limits, template=read_template(template_path),
                              recipe=recipe, datasets_config=datasets_config, train_parameters=train_parameters,
                              recipes=recipes)
    if limits:
        refuse_unfit(plans)
    if sources_config is not None:
        from src.kaggle.chain import chain_plans
        from src.kaggle.sources import load_catalogue

        plans, wheels = chain_plans(user, plans, load_catalogue(sources_config)), False
    for plan in plans:  # every kernel is checked before the first folder is written
        check_metadata(plan.metadata, str(out_dir / plan.slug / "kernel-metadata.json"), plan.submit)
    files: dict[Path | None, dict[str, str]] = {}  # per recipe file; None: the submit kernel trains nothing
    folders = []
    for plan in plans:
        folder = out_dir / plan.slug
        if plan.recipe not in files:
            files[plan.recipe] = kernel_files(plan.recipe)
        nb = kernel_notebook(plan.notebook, plan.parameters, files[plan.recipe], setup=getattr(plan, "setup", ()),
                             install=getattr(plan, "install", True))
        write_text(nbformat.writes(nb), folder / plan.metadata["code_file"])
        write_json(plan.metadata, folder / "kernel-metadata.json")
        check_metadata(plan.metadata, str(folder / "kernel-metadata.json"), plan.submit, folder)
        folders.append(folder)
        print(f"built {plan.metadata['id']}: {folder}", flush=True)
    if wheels:
        wheels_dataset(out_dir / WHEELS_SLUG, user)
    write_json({"order": [f.name for f in folders], "needs": {p.slug: list(p.needs) for p in plans}},
               out_dir / "kernels.json")
    if limits:
        print(size_table(plans), flush=True)
    return folders
