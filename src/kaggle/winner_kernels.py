"""The winner's plan as Kaggle kernels (`make kernels`' default): one training kernel per run of his
(configs/winner_plan.csv, `src.kaggle.winner_plan`: 12 runs for his 13 models, 79's step 1000 and final from one),
then one submit kernel over his 13 models.

Each training kernel runs notebook 03 with his recipe (configs/winner_*.yaml, inlined) and his settings for that
model: backbone, fold of his 3-fold split (`split="winner"`; fold -1 where he held nothing out), seed, lr, warm-up,
epochs, decay, batch and accumulation, windows, evaluation every `eval_steps` and the checkpoint he kept exported at
its step. It is sized from his own logged run (`sizing.size_winner`): his fp32 where it fits a kernel, else fp16, and
a batch the GPU holds (the same optimizer batch). The submit kernel blends his 13 as he did: the models of a backbone
averaged, the three backbones' answers voted word by word (notebook 05's default, `blend=""`); `blend="oof"` fits the
blend on the runs' out-of-fold rows instead, without 52 and 126, which have none (`src.blend.ensemble.resolve_blend`).
"""
from __future__ import annotations

from pathlib import Path

from src.kaggle import sizing
from src.kaggle.metadata import DEFAULT_MACHINE, MACHINE_SHAPES, kernel_metadata, read_template, template_slug
from src.kaggle.plan import (
    DATASETS_CONFIG,
    RECIPE,
    KernelPlan,
    PlanError,
    check_slugs,
    check_train_parameters,
    load_dataset_map,
    plan_kernels,
    recipe_dataset_sources,
    sized_or_refused,
)
from src.kaggle.wheels import WHEELS_SLUG
from src.kaggle.winner_plan import (
    WINNER_PLAN,
    WinnerModel,
    WinnerPlanError,
    by_kernel,
    kernel_parameters,
    load_winner_plan,
    model_subdir,
)
from src.train.backbones import get_backbone
from src.train.fold import fold_name
from src.train.recipe import CONFIG_DIR, load_recipe

PLANS = ("winner", "folds")     # make kernels PLAN=...: his 13 models (default), or k folds per backbone (COUNTS)


def winner_slug(kernel: str) -> str:
    """'126-s1' -> 'chaii-recipes-03-winner-126-s1'."""
    return f"chaii-recipes-03-winner-{kernel.lower()}"


def model_dir(slug: str, m: WinnerModel) -> str:
    """Where the submit kernel finds model `m` of training kernel `slug` (its output under ../input)."""
    return f"../input/{slug}/{m.backbone}/{fold_name(m.train_fold)}/{model_subdir(m)}"


def plan_winner_kernels(user: str, plan_file: str | Path = WINNER_PLAN, template: dict | None = None,
                        datasets_config: str | Path = DATASETS_CONFIG, train_parameters: dict | None = None,
                        machine: str = DEFAULT_MACHINE, sized: bool = True,
                        recipe_dir: str | Path = CONFIG_DIR) -> list[KernelPlan]:
    """A training kernel per run of `plan_file` (in its order), then the submit kernel over every model.

    `train_parameters` override his settings in every training kernel (e.g. `epochs`), as for the folds plan.
    `recipe_dir`: where each row's recipe is (`<recipe>.yaml`). With `sized`, each kernel carries its estimate
    and, where his fp32 or his batch would not fit the machine, the fp16 flag or the smaller per-device batch."""
    if machine not in MACHINE_SHAPES:
        raise PlanError(f"--machine {machine!r}: expected one of {', '.join(MACHINE_SHAPES)}")
    try:
        models = load_winner_plan(plan_file)
    except WinnerPlanError as e:
        raise PlanError(str(e)) from None
    template = template if template is not None else read_template()
    check_train_parameters(train_parameters or {})
    mapping = load_dataset_map(datasets_config)
    wheels = f"{user}/{WHEELS_SLUG}"
    recipes: dict[str, tuple[Path, list[str]]] = {}
    plans = []
    for kernel, group in by_kernel(models).items():
        m = group[0]
        if m.recipe not in recipes:
            path = Path(recipe_dir) / f"{m.recipe}.yaml"
            if not path.is_file():
                raise PlanError(f"{plan_file}: model {m.experiment}: recipe {m.recipe!r} not found ({path})")
            recipes[m.recipe] = path, recipe_dataset_sources(load_recipe(path), user, mapping, datasets_config)
        path, data_sets = recipes[m.recipe]
        b = get_backbone(m.backbone)
        if not b.kaggle_dataset:
            raise PlanError(f"backbone {m.backbone!r} has no kaggle_dataset in the registry: it cannot run on Kaggle")
        slug = winner_slug(kernel)
        size = sized_or_refused(sizing.size_winner, slug, group, machine) if sized else None
        params = kernel_parameters(group, fp16=None if size is None else size.precision == "fp16")
        if size is not None and size.batch_size != m.batch_size:
            params.update(batch_size=size.batch_size, grad_accum=size.grad_accum)
        params.update(train_parameters or {})
        meta = kernel_metadata(user, slug, f"{slug}.ipynb", [b.kaggle_dataset.format(user=user), wheels, *data_sets],
                               [], machine=machine)
        plans.append(KernelPlan(slug, "03_recipe_training", params, meta, size=size, recipe=path, models=group))
    check_slugs(plans)
    dirs = [model_dir(p.slug, m) for p in plans for m in p.models]
    counts: dict[str, int] = {}
    for m in models:
        counts[m.backbone] = counts.get(m.backbone, 0) + 1
    slug = template_slug(template)
    meta = kernel_metadata(user, slug, f"{slug}.ipynb", [wheels], [f"{user}/{p.slug}" for p in plans], template,
                           machine=machine)
    size = sized_or_refused(sizing.size_submit, slug, counts, machine) if sized else None
    plans.append(KernelPlan(slug, "05_submit", dict(model_dirs=",".join(dirs), blend=""), meta, submit=True,
                            needs=[p.slug for p in plans], size=size))
    return plans


def plan_for(plan: str | None, user: str, counts: dict[str, int] | None = None, template: dict | None = None,
             recipe: str = RECIPE, datasets_config: str | Path = DATASETS_CONFIG,
             train_parameters: dict | None = None, machine: str = DEFAULT_MACHINE, sized: bool = True,
             recipes: dict[str, str] | None = None) -> list[KernelPlan]:
    """`plan` "winner" (his 13 models, `plan_winner_kernels`) or "folds" (k folds of one recipe per backbone of
    `counts`, `plan.plan_kernels`); None: "folds" when `counts` are given, else "winner"."""
    plan = plan or ("folds" if counts else "winner")
    if plan not in PLANS:
        raise PlanError(f"--plan {plan!r}: expected one of {', '.join(PLANS)}")
    if plan == "folds":
        return plan_kernels(user, counts, template, recipe, datasets_config, train_parameters, machine, sized=sized,
                            recipes=recipes)
    if counts or recipes:
        raise PlanError("--counts and --recipe-for shape the folds plan: add --plan folds (make kernels PLAN=folds); "
                        f"the winner's plan is {WINNER_PLAN.relative_to(WINNER_PLAN.parents[1])}")
    return plan_winner_kernels(user, template=template, datasets_config=datasets_config,
                               train_parameters=train_parameters, machine=machine, sized=sized)
