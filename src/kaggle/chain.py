"""The kernels that fetch their own inputs (`make reproduce`): nothing is uploaded by hand.

From the plan of `src.kaggle.plan` (training kernels + the submit kernel) to the chain Kaggle runs:

1. the wheels kernel and the data kernels the recipes need (no GPU, internet on; `src.kaggle.data_kernels`);
2. the training kernels, with internet on: each takes its backbone from the model hub by hub id at the registry's
   revision and each folder its recipe reads as `configs/kaggle_sources.yaml` says (a public data set attached by
   slug, a data kernel's output, or downloads), checked on arrival (`src.kaggle.fetch`); they attach the wheels
   kernel's output for the same offline install as the submit kernel;
3. the submit kernel, internet off (a code competition's rule), reading only attached outputs: the wheels kernel's
   and the training kernels'.

Each kernel lists the kernels it reads (`needs`); `src.kaggle.reproduce` pushes a kernel once those have finished.
No kernel attaches a data set of the user's own. Pure: plans in, plans out.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field

from src.kaggle.data_kernels import DATA_KERNELS, data_kernel_source, wheels_kernel_source
from src.kaggle.metadata import kernel_metadata
from src.kaggle.plan import KernelPlan
from src.kaggle.sources import Catalogue, SourcesError, recipe_routes, routes_spec
from src.kaggle.wheels import WHEELS_SLUG
from src.train.backbones import family_base, get_backbone
from src.train.recipe import load_recipe

# Relative to /kaggle/working (the kernel's working directory): /tmp on Kaggle, which is not kept as output, and
# the same place under a simulated tree's root.
MODELS_DIR = "../../tmp/chaii-models"
EXTERNAL_DIR = "../../tmp/chaii-sources"


@dataclass
class ChainKernel(KernelPlan):
    """A kernel of the chain: the plan's fields, plus the code cells run after `src/` is written (`setup`), whether
    the kernel installs the wheels first (`install`) and whether it needs a GPU."""
    setup: list[str] = field(default_factory=list)
    install: bool = True
    gpu: bool = True
    reads: list[str] = field(default_factory=list)    # what it reads, in words (the dry run's table)


def cpu_metadata(user: str, slug: str, competitions: list[str], kernel_sources: list[str] | None = None) -> dict:
    """A kernel without GPU, with internet: no machine_shape (it names a GPU)."""
    meta = kernel_metadata(user, slug, f"{slug}.ipynb", [], kernel_sources or [])
    meta.update(enable_gpu=False, enable_internet=True, competition_sources=list(competitions))
    meta.pop("machine_shape", None)
    return meta


def generated_notebook(parameters: str, source: str):
    """A kernel notebook of two cells: its `parameters` (papermill's tag) and the code that does its job."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def wheels_kernel(user: str) -> ChainKernel:
    nb = generated_notebook('requirements = ""   # empty: the pinned Hugging Face stack of requirements.txt',
                            wheels_kernel_source(user))
    return ChainKernel(WHEELS_SLUG, nb, {}, cpu_metadata(user, WHEELS_SLUG, []), install=False, gpu=False,
                       reads=["PyPI: pip download of the pinned Hugging Face stack"])


def data_kernel(user: str, name: str, catalogue: Catalogue) -> ChainKernel:
    if name not in DATA_KERNELS:
        raise SourcesError(f"{catalogue.path}: kernel {name!r} is not a data kernel of src/kaggle/data_kernels.py "
                           f"(known: {', '.join(DATA_KERNELS)})")
    kernel = DATA_KERNELS[name]
    missing = [n for n in kernel.inputs if n not in catalogue.files]
    if missing:
        raise SourcesError(f"{catalogue.path}: data kernel {name!r} reads {', '.join(missing)}, not under files:")
    nb = generated_notebook("# no parameters: the inputs are fixed by configs/kaggle_sources.yaml",
                            data_kernel_source(name, catalogue.files, user))
    meta = cpu_metadata(user, kernel.slug, kernel.competitions(catalogue.files))
    reads = [f"competition {f.competition}: {f.file}" if f.competition else f"download {f.name}"
             for f in (catalogue.files[n] for n in kernel.inputs)]
    return ChainKernel(kernel.slug, nb, {}, meta, install=False, gpu=False, reads=reads)


def fetch_source(backbone: str, recipe: str, routes: dict, user: str) -> str:
    """The training kernel's cell before notebook 03: its backbone and its recipe's folders, checked on arrival."""
    return ("import json\n\nfrom src.kaggle.fetch import prepare_training_inputs\n\n"
            "# the backbone from the model hub at the registry's revision, then every folder the recipe reads, each "
            "checked on arrival\n"
            f"inputs = prepare_training_inputs({backbone!r}, {recipe!r}, "
            f"json.loads({json.dumps(routes, ensure_ascii=False)!r}), user={user!r}, external_dir={EXTERNAL_DIR!r}, "
            f"models_dir={MODELS_DIR!r})")


def chain_plans(user: str, plans: list[KernelPlan], catalogue: Catalogue) -> list[ChainKernel]:
    """The wheels and data kernels, then `plans`' training kernels with internet (fetching their inputs), then its
    submit kernel reading the wheels kernel's output instead of an uploaded wheels data set."""
    wheels_id = f"{user}/{WHEELS_SLUG}"
    data_names: list[str] = []
    training: list[ChainKernel] = []
    for p in plans:
        if p.submit:
            continue
        backbone = get_backbone(p.parameters["backbone"])
        if not backbone.hub_id:
            raise SourcesError(f"kernel {p.slug}: backbone {backbone.name!r} has no hub id in the registry, so a "
                               "kernel cannot fetch it: build it with `make kernels` (weights attached) instead")
        recipe = load_recipe(str(p.recipe))
        routes = recipe_routes(recipe, catalogue)
        kernels = [r.kernel for r in routes if r.kernel]
        data_names += [k for k in kernels if k not in data_names]
        needs = [WHEELS_SLUG, *(DATA_KERNELS[k].slug if k in DATA_KERNELS else k for k in kernels)]
        meta = copy.deepcopy(p.metadata)
        meta.update(enable_internet=True, dataset_sources=[r.dataset for r in routes if r.dataset],
                    kernel_sources=[f"{user}/{slug}" for slug in needs] + [r.output for r in routes if r.output])
        params = dict(p.parameters, models_dir=MODELS_DIR, external_dir=EXTERNAL_DIR)
        setup = [fetch_source(family_base(p.parameters["backbone"]), p.parameters["recipe"],
                              routes_spec(recipe, catalogue), user)]
        reads = [f"hub {backbone.hub_id}@{backbone.revision}", f"outputs of {', '.join(needs)}"]
        reads += [f"data set {r.dataset}" if r.dataset else f"output {r.output}" if r.output else
                  f"download {', '.join(r.download)}" for r in routes if not r.kernel]
        training.append(ChainKernel(**{**{f.name: getattr(p, f.name) for f in dataclasses.fields(KernelPlan)},
                                       "parameters": params, "metadata": meta, "needs": needs, "setup": setup,
                                       "reads": reads}))
    prep = [wheels_kernel(user)] + [data_kernel(user, name, catalogue) for name in data_names]
    out = prep + training
    for p in plans:
        if p.submit:
            meta = copy.deepcopy(p.metadata)
            reads = [s for s in meta["kernel_sources"] if s != wheels_id]
            meta.update(dataset_sources=[s for s in meta["dataset_sources"] if s != wheels_id],
                        kernel_sources=[wheels_id, *reads], enable_internet=False)
            if meta["dataset_sources"]:
                raise SourcesError(f"submit kernel {p.slug}: attaches data set(s) {meta['dataset_sources']}; the "
                                   "chain's submit kernel reads only kernel outputs")
            out.append(ChainKernel(**{**{f.name: getattr(p, f.name) for f in dataclasses.fields(KernelPlan)},
                                      "metadata": meta, "needs": [WHEELS_SLUG, *p.needs],
                                      "reads": [f"outputs of {WHEELS_SLUG} and {len(p.needs)} training kernels"]}))
    return out


def order(plans: list[KernelPlan]) -> list[str]:
    """The slugs in an order where every kernel comes after those it needs (the plans' order where it already is);
    a cycle or a need outside the plans is an error naming it."""
    by_slug = {p.slug: p for p in plans}
    done: list[str] = []
    visiting: set[str] = set()

    def visit(slug: str, path: tuple[str, ...]) -> None:
        if slug in done:
            return
        if slug not in by_slug:
            raise SourcesError(f"kernel {path[-1]} needs {slug}, which is not a kernel of the chain")
        if slug in visiting:
            raise SourcesError(f"kernels need each other in a cycle: {' -> '.join((*path, slug))}")
        visiting.add(slug)
        for need in by_slug[slug].needs:
            visit(need, (*path, slug))
        visiting.discard(slug)
        done.append(slug)

    for p in plans:
        visit(p.slug, ())
    return done

