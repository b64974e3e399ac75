"""Families beyond the winner's (`--with NAME[=N]`, `make kernels EXTRA=infoxlm`): their training kernels join any
plan (the folds plan or his 13), and the submit kernel reads, sizes and votes over their models too.

Pure: plans in, plans out (`src.kaggle.plan` builds the kernels).
"""
from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

from src.kaggle import sizing
from src.kaggle.metadata import DEFAULT_MACHINE
from src.kaggle.plan import KernelPlan, PlanError, check_slugs, plan_kernels, sized_or_refused

# name -> (backbone, kernels when the plan has no split of its own). InfoXLM-large: a fourth family the winner did
# not train (his talk). On a plan whose kernels share one split (the winner's plan: his 3-fold split), its kernels
# train that split's folds: 3, on the rows his models held out, and the submit kernel over his 13 models and these 3
# takes 4.9 h on one T4, inside the 5 h rerun (4 would take 5.1 h). On the folds plan, 5 kernels, the folds of a
# 5-fold split, as the 4th place trained it (Zacchaeus00/chaii-4th-place-solution @76ae1d7, train-cv.py:58:
# `folds = 5`): 3.2 h each on 2 x T4 at its 3 epochs over recipe_kaggle, the submit kernel with 18 models 4.9 h on
# one T4. `python -m src.kaggle plan --with infoxlm` prints them; `--with infoxlm=N` trains N folds of its own
# N-fold split (or of the plan's split when that has N folds).
EXTRAS = {"infoxlm": ("infoxlm-large", 5)}


def parse_extras(values: list[str]) -> dict[str, int | None]:
    """['infoxlm', 'infoxlm=3'] -> {'infoxlm-large': 3} (`--with`, repeatable; the last count of a name wins);
    no count: None, the plan's own (`add_extra_kernels`)."""
    out: dict[str, int | None] = {}
    for value in values:
        name, sep, n = (x.strip() for x in value.partition("="))
        if name not in EXTRAS:
            raise PlanError(f"--with {value!r}: unknown family {name!r}; known: {', '.join(sorted(EXTRAS))}")
        if sep and (not n.isdigit() or int(n) < 2):
            raise PlanError(f"--with {value!r}: expected {name} or {name}=<number of folds, at least 2>")
        out[EXTRAS[name][0]] = int(n) if sep else None
    return out


def model_backbone_dir(model_dir: str) -> str:
    """'../input/<kernel slug>/<backbone>/fold<k>/...' -> '<backbone>' (the submit kernel's model_dirs)."""
    parts = PurePosixPath(model_dir).parts
    if len(parts) < 5 or parts[:2] != ("..", "input"):
        raise PlanError(f"submit kernel model dir {model_dir!r}: expected ../input/<kernel>/<backbone>/fold<k>/...")
    return parts[3]


def plan_split(training: list[KernelPlan]) -> tuple[str, int] | None:
    """(split, n_folds) when every training kernel of a plan names the same split (the winner's plan: his 3-fold
    split), else None (the folds plan: each backbone its own n-fold split)."""
    shared = {(p.parameters.get("split"), p.parameters.get("n_folds")) for p in training}
    (split, n), = shared if len(shared) == 1 else {(None, None)}
    return (split, int(n)) if split else None


def add_extra_kernels(plans: list[KernelPlan], extras: dict[str, int | None], user: str,
                      machine: str = DEFAULT_MACHINE, sized: bool = True, **plan_args) -> list[KernelPlan]:
    """`plans` (any plan ending with its submit kernel: the folds plan or the winner's) with the training kernels of
    `extras` ({backbone: n}: folds 0..n-1 of an n-fold split, planned by `plan_kernels` with `plan_args`) added
    before the submit kernel, which reads their models too: its model_dirs, kernel_sources and sizing follow.

    When the plan's kernels share a split (`plan_split`), an extra with n None or equal to its folds trains that
    split's folds (its held-out rows are those of the plan's models); otherwise its own n-fold split, n None being
    its `EXTRAS` default."""
    if not extras:
        return plans
    *training, submit = plans
    if not submit.submit:
        raise PlanError(f"the plan's last kernel {submit.slug} is not its submit kernel")
    dirs = submit.parameters["model_dirs"].split(",")
    there = sorted(set(extras) & {model_backbone_dir(d) for d in dirs})
    if there:
        raise PlanError(f"--with: {', '.join(there)} is in the plan already; give its count once")
    recipes = {k: v for k, v in (plan_args.pop("recipes", None) or {}).items() if k in extras}
    params = dict(plan_args.pop("train_parameters", None) or {})
    split = plan_split(training)
    default = {b: n for b, n in EXTRAS.values()}
    extra = []
    for name, n in extras.items():
        follow = split is not None and n in (None, split[1])
        n = split[1] if follow else (n or default.get(name))
        if n is None:
            raise PlanError(f"--with: {name!r} has no default number of kernels ({', '.join(default)} have); give one")
        extra += [p for p in plan_kernels(user, {name: n}, machine=machine, sized=sized, recipes={
            k: v for k, v in recipes.items() if k == name}, train_parameters={**params, "split": split[0]} if follow
            else params, **plan_args) if not p.submit]
    training += extra
    check_slugs(training)
    dirs += [f"../input/{p.slug}/{p.parameters['backbone']}/fold{p.parameters['fold']}/model" for p in extra]
    sources = [*submit.metadata["kernel_sources"], *(f"{user}/{p.slug}" for p in extra)]
    counts: dict[str, int] = {}
    for d in dirs:
        counts[model_backbone_dir(d)] = counts.get(model_backbone_dir(d), 0) + 1
    size = sized_or_refused(sizing.size_submit, submit.slug, counts, machine) if sized else None
    return [*training, dataclasses.replace(
        submit, parameters={**submit.parameters, "model_dirs": ",".join(dirs)},
        metadata={**submit.metadata, "kernel_sources": sources}, needs=[*submit.needs, *(p.slug for p in extra)],
        size=size)]
