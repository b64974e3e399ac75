"""Kernel planning: which Kaggle kernels the winner's scheme needs, with their parameters and attached sources.

One training kernel (notebook 03) per backbone x fold: a backbone with count n trains folds 0..n-1 of an n-fold
split, so every chaii training row gets one out-of-fold prediction per backbone. Each runs the recipe with its data
sets attached: the weights, the wheels, and every data set the recipe reads (its source paths' first folders, mapped
to Kaggle slugs by `configs/kaggle_datasets.yaml`). Then one submit kernel (notebook 05) over all training kernels'
outputs, which fits the blend on their out-of-fold predictions itself (`blend="oof"`).

A family (`<backbone>@<tag>`, `src.train.backbones`) is one backbone trained another way: its kernels may run their
own recipe (`recipes`), and its models vote as a backbone of their own in the submit kernel. Families the winner did not
train (`--with infoxlm`) join a plan in `src.kaggle.extras`.

Every kernel names its machine (`machine_shape`, default NvidiaTeslaT4) and is sized for it (`src.kaggle.sizing`):
a training kernel whose batch would not fit the GPU's memory gets a smaller per-device batch with more gradient
accumulation (the same optimizer batch); `refuse_unfit` stops a build whose kernels do not fit the limits.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from src.common.paths import COMPETITION
from src.kaggle import sizing, sizing_table
from src.kaggle.metadata import (
    DEFAULT_MACHINE,
    MACHINE_SHAPES,
    SLUG_MAX,
    kernel_metadata,
    read_template,
    template_slug,
)
from src.kaggle.sizing_facts import MACHINES
from src.kaggle.wheels import WHEELS_SLUG
from src.train.backbones import FAMILY_FORM, get_backbone
from src.train.recipe import CONFIG_DIR, Recipe, load_recipe, source_folders

WINNER_COUNTS = {"muril-large": 3, "rembert": 5, "xlm-roberta-large-squad2": 5}
RECIPE = "recipe_kaggle"
DATASETS_CONFIG = CONFIG_DIR / "kaggle_datasets.yaml"


class PlanError(ValueError):
    """A plan Kaggle could not run (unmapped recipe folder, bad counts); the message names the file or option."""


@dataclass
class KernelPlan:
    slug: str
    notebook: str
    parameters: dict
    metadata: dict
    submit: bool = False
    needs: list[str] = field(default_factory=list)  # kernels whose output this one reads
    size: sizing.KernelSize | None = None           # the estimate against Kaggle's limits (sized plans)
    recipe: Path | None = None                      # the recipe file a training kernel inlines
    models: list = field(default_factory=list)      # the winner's models it trains (src/kaggle/winner_kernels.py)


def parse_counts(text: str) -> dict[str, int]:
    """'muril-large=3,rembert=5' -> {'muril-large': 3, 'rembert': 5}; names (or families of them,
    'muril-large@short=3') are checked against the registry."""
    counts = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, n = part.partition("=")
        if not sep or not n.strip().isdigit() or int(n) < 2:  # an n-fold split needs n >= 2
            raise PlanError(f"--counts {part!r}: expected <backbone>[@<tag>]=<number of folds, at least 2>")
        get_backbone(name.strip())  # KeyError naming the registered backbones
        counts[name.strip()] = int(n)
    if not counts:
        raise PlanError(f"--counts {text!r}: no backbone given")
    return counts


def parse_recipes(pairs: list[str]) -> dict[str, str]:
    """['muril-large@short=recipe_short'] -> {'muril-large@short': 'recipe_short'} (--recipe-for, repeatable)."""
    recipes = {}
    for pair in pairs:
        name, sep, recipe = (x.strip() for x in pair.partition("="))
        if not (sep and name and recipe):
            raise PlanError(f"--recipe-for {pair!r}: expected <backbone>[@<tag>]=<recipe name or YAML path>")
        recipes[name] = recipe
    return recipes


def recipe_folders(recipe: Recipe) -> dict[str, list[str]]:
    """First folder of each source path (a data set under /kaggle/input) -> the names of the sources reading it."""
    try:
        folders = source_folders(recipe)
    except ValueError as e:
        raise PlanError(str(e)) from None
    return {folder: list(dict.fromkeys(src.name for src in srcs)) for folder, srcs in folders.items()}


def load_dataset_map(path: str | Path = DATASETS_CONFIG) -> dict[str, str]:
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise PlanError(f"{path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), dict):
        raise PlanError(f"{path}: expected a top-level 'datasets:' mapping of folder -> '<owner>/<name>'")
    return {str(k): str(v) for k, v in doc["datasets"].items()}


def recipe_dataset_sources(recipe: Recipe, user: str, mapping: dict[str, str],
                           where: str | Path = DATASETS_CONFIG) -> list[str]:
    """The Kaggle data sets a training kernel must attach for `recipe` (the competition is not one of them)."""
    slugs = []
    for folder, names in recipe_folders(recipe).items():
        if folder == COMPETITION:
            continue
        if folder not in mapping:
            raise PlanError(f"recipe {recipe.name!r}: source(s) {', '.join(names)} read {folder}/, which no Kaggle "
                            f"data set in {where} provides: add `{folder}: \"<owner>/{folder}\"` under datasets")
        slug = mapping[folder].format(user=user)
        if slug.split("/")[-1] != folder:
            raise PlanError(f"{where}: datasets.{folder}: {slug!r} would mount at /kaggle/input/"
                            f"{slug.split('/')[-1]}/, not at {folder}/ where recipe {recipe.name!r} reads it")
        slugs.append(slug)
    return slugs


def recipe_file(recipe: str | Path) -> Path:
    """The YAML file of a recipe given by path or by name (configs/<name>.yaml): the kernel gets a copy of it."""
    path = Path(recipe)
    return path if path.is_file() else CONFIG_DIR / f"{recipe}.yaml"


def training_slug(backbone: str, fold: int) -> str:
    """'e5-small-qa@plain', 0 -> 'chaii-recipes-03-e5-small-qa-plain-fold0': Kaggle slugs are [a-z0-9-] only."""
    return f"chaii-recipes-03-{re.sub(r'[^a-z0-9]+', '-', backbone.lower()).strip('-')}-fold{fold}"


def plan_kernels(user: str, counts: dict[str, int] | None = None, template: dict | None = None,
                 recipe: str = RECIPE, datasets_config: str | Path = DATASETS_CONFIG,
                 train_parameters: dict | None = None, machine: str = DEFAULT_MACHINE,
                 sized: bool = True, recipes: dict[str, str] | None = None) -> list[KernelPlan]:
    """Training kernels (notebook 03 per backbone x fold, with `recipe`), then the submit kernel (05) over them all.

    `recipes` gives some backbones (keys of `counts`, typically families) their own recipe, by name or path like
    `recipe`; their kernels attach that recipe's data sets and run it.

    `train_parameters` are extra notebook-03 parameters for every training kernel (e.g. `epochs`). Inputs are read
    relative to /kaggle/working (`../input/<slug>`), a kernel's working directory, so the same kernel runs in a
    simulated tree; data and output locations are left to `src.common.paths` detection. `machine` is every kernel's
    `machine_shape`; with `sized`, each plan carries its estimate (`size`) and a training kernel whose registry
    batch would not fit the GPU gets `batch_size`/`grad_accum` that do (unless `train_parameters` set batch_size).
    """
    counts = dict(WINNER_COUNTS if counts is None else counts)
    if machine not in MACHINE_SHAPES:
        raise PlanError(f"--machine {machine!r}: expected one of {', '.join(MACHINE_SHAPES)}")
    template = template if template is not None else read_template()
    wheels = f"{user}/{WHEELS_SLUG}"
    recipes = dict(recipes or {})
    unknown = sorted(set(recipes) - set(counts))
    if unknown:
        raise PlanError(f"--recipe-for {', '.join(unknown)}: not in the counts ({', '.join(counts)}); give each "
                        f"backbone or family its count too, e.g. --counts {unknown[0]}=2")
    mapping = load_dataset_map(datasets_config)
    loaded: dict[Path, tuple[Recipe, list[str]]] = {}  # each recipe file read and mapped once
    for ref in [recipes.get(name, recipe) for name in counts]:   # only the recipes some kernel runs
        if recipe_file(ref) not in loaded:
            try:
                the_recipe = load_recipe(ref)
            except FileNotFoundError as e:
                raise PlanError(f"{e}: give a recipe name from {CONFIG_DIR} or a YAML path") from None
            loaded[recipe_file(ref)] = the_recipe, recipe_dataset_sources(the_recipe, user, mapping, datasets_config)
    check_train_parameters(train_parameters or {})
    plans = []
    for name, n in counts.items():
        if n < 2:
            raise PlanError(f"backbone {name!r}: count {n}: a backbone trains folds 0..n-1 of an n-fold split, n >= 2")
        b = get_backbone(name)
        if not b.kaggle_dataset:
            raise PlanError(f"backbone {name!r} has no kaggle_dataset in the registry: it cannot run on Kaggle")
        path = recipe_file(recipes.get(name, recipe))
        the_recipe, data_sets = loaded[path]
        weights_set = b.kaggle_dataset.format(user=user)   # e5-small-qa's is the user's own upload
        for k in range(n):
            slug = training_slug(name, k)
            meta = kernel_metadata(user, slug, f"{slug}.ipynb", [weights_set, wheels, *data_sets], [], machine=machine)
            # by name: the kernel reads its inlined copy, configs/<name>.yaml (src.kaggle.build.kernel_files)
            params = dict(backbone=name, fold=k, n_folds=n, recipe=path.stem, **(train_parameters or {}))
            size = None
            if sized:
                params.update(fitted_batch(the_recipe, name, params, machine))
                size = sized_or_refused(sizing.size_training, slug, the_recipe, name, n, params, machine)
            plans.append(KernelPlan(slug, "03_recipe_training", params, meta, size=size, recipe=path))
    check_slugs(plans)
    slug = template_slug(template)
    model_dirs = [f"../input/{p.slug}/{p.parameters['backbone']}/fold{p.parameters['fold']}/model" for p in plans]
    meta = kernel_metadata(user, slug, f"{slug}.ipynb", [wheels], [f"{user}/{p.slug}" for p in plans], template,
                           machine=machine)
    size = sized_or_refused(sizing.size_submit, slug, counts, machine) if sized else None
    plans.append(KernelPlan(slug, "05_submit", dict(model_dirs=",".join(model_dirs), blend="oof"), meta,
                            submit=True, needs=[p.slug for p in plans], size=size))
    return plans


def check_slugs(plans: list[KernelPlan]) -> None:
    """Kaggle caps a slug at 50 characters (a long family name goes over), and two names that differ only in
    '@'/'_' (muril-large@a_b, muril-large@a-b) would push to one kernel."""
    too_long = {p.parameters["backbone"]: p.slug for p in plans if len(p.slug) > SLUG_MAX}  # its last fold's
    if too_long:
        raise PlanError(f"kernel slug over Kaggle's {SLUG_MAX}-character cap: " + "; ".join(
            f"{slug} ({len(slug)} characters, from {name!r}: {len(slug) - SLUG_MAX} too many)"
            for name, slug in too_long.items()) + f"; give the family a shorter tag ({FAMILY_FORM})")
    by_slug: dict[str, list[str]] = {}
    for p in plans:
        by_slug.setdefault(p.slug, []).append(p.parameters["backbone"])
    clashes = [f"{slug} ({' and '.join(sorted(set(names)))})" for slug, names in by_slug.items() if len(names) > 1]
    if clashes:
        raise PlanError(f"backbone names give the same kernel slug: {'; '.join(clashes)}; rename a family "
                        f"({FAMILY_FORM})")


def sized_or_refused(estimate, *args):
    """`estimate(*args)`; a kernel that cannot be sized stops the plan, saying what to add."""
    try:
        return estimate(*args)
    except sizing.SizingError as e:
        raise PlanError(f"{e} (or build with --no-limits)") from None


def fitted_batch(recipe: Recipe, backbone: str, params: dict, machine: str) -> dict:
    """batch_size/grad_accum for a kernel whose registry batch would not fit its GPU (the same optimizer batch);
    {} when it fits or the batch was set explicitly."""
    if "batch_size" in params:
        return {}
    b = get_backbone(backbone)
    accum = int(params.get("grad_accum") or b.grad_accum)
    longest = max((src.max_length or length) for stage, (length, _) in zip(recipe.stages, recipe.stage_lengths(),
                                                                             strict=True) for src in stage.sources)
    shape = sized_or_refused(sizing.backbone_shape, backbone)
    batch, accum = sizing.fit_batch(shape, b.batch_size, accum, longest, MACHINES[machine].gpu)
    return {} if batch == b.batch_size else {"batch_size": batch, "grad_accum": accum}


def refuse_unfit(plans: list[KernelPlan]) -> None:
    """PlanError naming every kernel that does not fit its limits, with the numbers."""
    bad = [f"{p.slug}: {'; '.join(p.size.problems())}" for p in plans if p.size and p.size.problems()]
    if bad:
        raise PlanError(f"{len(bad)} kernel(s) do not fit Kaggle's limits on {plans[0].metadata['machine_shape']} "
                        "(docs/kaggle.md, \"Sizing\": time: `limit:` on a recipe source, --set epochs=1; memory: a "
                        "smaller --set batch_size; or another --machine):\n  " + "\n  ".join(bad))


def size_table(plans: list[KernelPlan]) -> str:
    """The sizing table: per kernel, or for the winner's plan per model of his with his public LB."""
    rows = [(m, p.size) for p in plans if p.size for m in p.models]
    if not rows:
        return sizing_table.format_table([p.size for p in plans if p.size])
    submit = next((p for p in plans if p.submit), None)
    return sizing_table.format_models_table(
        rows, submit.size if submit else None, [p.size for p in plans if p.size and not p.models and not p.submit],
        len(submit.parameters["model_dirs"].split(",")) if submit else 0)


def check_train_parameters(params: dict) -> None:
    """Names must be notebook 03 parameters or TrainConfig fields (the notebook passes those to TrainConfig)."""
    from src.notebooks.batch import notebook_parameters
    from src.train.fold import TrainConfig

    allowed = set(notebook_parameters("03_recipe_training")) | {f.name for f in dataclasses.fields(TrainConfig)}
    fixed = {"backbone", "fold", "n_folds", "recipe"}  # set by the plan itself
    bad = sorted(set(params) - allowed) + sorted(set(params) & fixed)
    if bad:
        raise PlanError(f"training kernel parameter(s) {', '.join(bad)}: not settable (known: "
                        f"{', '.join(sorted(allowed - fixed))})")
