"""Where each data set a recipe reads comes from when the kernels fetch their own inputs: `configs/kaggle_sources.yaml`.

A recipe folder arrives in a training kernel in one of three ways: a public Kaggle data set attached by slug, the
output of a data-preparing kernel of this repository (`src.kaggle.data_kernels`), or files downloaded from where
they are published. Each file carries what it must be on arrival (size, checksum, the loader that must read it,
the number of records); `src.kaggle.fetch` checks them inside the kernel. Pure: reading and checking the catalogue,
and which routes a recipe takes.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from src.common.paths import COMPETITION
from src.train.recipe import CONFIG_DIR, Recipe, source_folders

SOURCES_CONFIG = CONFIG_DIR / "kaggle_sources.yaml"
# what a file can be checked with besides the recipe's source kinds (src.data.external.LOADERS): the NQ subset's
# reader and two plain layouts
EXTRA_KINDS = ("nq", "jsonl", "csv")


def kinds() -> tuple[str, ...]:
    from src.data.external import LOADERS

    return (*LOADERS, *EXTRA_KINDS)
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def data_kernel_slug(name: str) -> str:
    """A data-preparing kernel's slug (and the folder its output mounts at): 'nq' -> 'chaii-recipes-data-nq'."""
    return f"chaii-recipes-data-{name}"


class SourcesError(ValueError):
    """A catalogue that cannot be used, or a recipe folder it does not route; the message names the file and field."""


@dataclass(frozen=True)
class FileSpec:
    """One file: where it is published and what it must be on arrival."""
    name: str
    file: str                               # its name once arrived (inside its folder)
    url: str = ""                           # fetched from this address ...
    competition: str = ""                   # ... or read from this competition's attached files
    bytes: int | None = None
    sha256: str = ""
    member: str = ""                        # the file inside a .zip download: the member whose path ends with this
    kind: str = ""                          # the loader that must read it (kinds()); "" checks bytes/sha256 only
    language: str | None = None             # the loader's language (xquad, mlqa)
    records: int | None = None              # what the loader finds: kept + dropped records
    fields: tuple[str, ...] = ()            # jsonl: keys of every record; csv: columns
    check: str = ""                         # the source's own check in src.data.checks (CHECKS), run first


@dataclass(frozen=True)
class Route:
    """How one recipe folder arrives: exactly one of `dataset`, `output`, `kernel`, `download`."""
    folder: str
    dataset: str = ""                       # '<owner>/<name>': a public Kaggle data set, attached
    output: str = ""                        # '<owner>/<kernel>': a public kernel's output, attached
    kernel: str = ""                        # a data kernel's name (src.kaggle.data_kernels.DATA_KERNELS)
    download: tuple[str, ...] = ()          # names of `files` entries, fetched into the folder
    records: dict[str, int] = field(default_factory=dict)   # rows per file the recipe's loader must find
    checks: dict[str, str] = field(default_factory=dict)    # file -> its check in src.data.checks, on arrival


@dataclass(frozen=True)
class Catalogue:
    files: dict[str, FileSpec]
    folders: dict[str, Route]
    path: str = str(SOURCES_CONFIG)

    def to_json(self) -> dict:
        """Plain data, to embed in a kernel's cell (the kernel reads no YAML)."""
        return {"files": {k: dataclasses.asdict(v) for k, v in self.files.items()},
                "folders": {k: dataclasses.asdict(v) for k, v in self.folders.items()}, "path": self.path}

    @classmethod
    def from_json(cls, doc: dict) -> "Catalogue":
        files = {k: FileSpec(**{**v, "fields": tuple(v.get("fields") or ())}) for k, v in doc["files"].items()}
        folders = {k: Route(**{**v, "download": tuple(v.get("download") or ())}) for k, v in doc["folders"].items()}
        return cls(files, folders, doc.get("path", ""))


def load_catalogue(path: str | Path = SOURCES_CONFIG) -> Catalogue:
    """Read and check the catalogue; every mistake names the file and the field."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise SourcesError(f"{path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict) or not isinstance(doc.get("folders"), dict):
        raise SourcesError(f"{path}: expected top-level 'files:' and 'folders:' mappings")

    def bad(where: str, why: str):
        raise SourcesError(f"{path}: {where}: {why}")

    known = {f.name for f in dataclasses.fields(FileSpec)} - {"name"}
    files = {}
    for name, spec in doc["files"].items():
        if not isinstance(spec, dict):
            bad(f"files.{name}", "expected a mapping")
        unknown = sorted(set(spec) - known)
        if unknown:
            bad(f"files.{name}", f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if not spec.get("file") or "/" in str(spec["file"]):
            bad(f"files.{name}.file", f"{spec.get('file')!r}: a file name without folders")
        if bool(spec.get("url")) == bool(spec.get("competition")):
            bad(f"files.{name}", "give exactly one of url (where it is published) and competition")
        if spec.get("url") and not str(spec["url"]).startswith(("https://", "http://")):
            bad(f"files.{name}.url", f"{spec['url']!r} is not an http(s) address")
        if spec.get("kind", "") not in ("", *kinds()):
            bad(f"files.{name}.kind", f"{spec['kind']!r}: expected one of {', '.join(kinds())}")
        if spec.get("sha256") and not re.fullmatch(r"[0-9a-f]{64}", str(spec["sha256"])):
            bad(f"files.{name}.sha256", "expected 64 lowercase hex digits")
        for key in ("bytes", "records"):
            if spec.get(key) is not None and (not isinstance(spec[key], int) or spec[key] < 0):
                bad(f"files.{name}.{key}", f"{spec[key]!r}: expected a whole number")
        files[name] = FileSpec(name=str(name), **{**spec, "fields": tuple(spec.get("fields") or ())})
    folders = {}
    for folder, route in doc["folders"].items():
        if not isinstance(route, dict):
            bad(f"folders.{folder}", "expected a mapping")
        ways = ("dataset", "output", "kernel", "download")
        unknown = sorted(set(route) - {*ways, "records", "checks"})
        if unknown:
            bad(f"folders.{folder}", f"unknown field(s) {', '.join(unknown)}; known: {', '.join(ways)}, records, "
                                     "checks")
        given = [k for k in ways if route.get(k)]
        if len(given) != 1:
            bad(f"folders.{folder}", f"give exactly one of {', '.join(ways)} (got {', '.join(given) or 'none'})")
        for key in ("dataset", "output"):
            if route.get(key) and (not SLUG.match(str(route[key])) or "{user}" in str(route[key])):
                bad(f"folders.{folder}.{key}", f"{route[key]!r}: a public one, '<owner>/<name>' (nothing of your "
                                               "own: the kernels fetch what they need)")
        for name in route.get("download") or []:
            if name not in files:
                bad(f"folders.{folder}.download", f"{name!r} is not under files: (known: {', '.join(files)})")
            if files[name].competition:
                bad(f"folders.{folder}.download", f"{name!r} is a competition's file, not a download")
        records, checks = route.get("records") or {}, route.get("checks") or {}
        if not isinstance(records, dict) or not all(isinstance(v, int) for v in records.values()):
            bad(f"folders.{folder}.records", "expected a mapping of file name -> number of rows")
        if not isinstance(checks, dict) or not all(isinstance(v, str) for v in checks.values()):
            bad(f"folders.{folder}.checks", "expected a mapping of file name -> a check of src.data.checks")
        folders[str(folder)] = Route(str(folder), str(route.get("dataset") or ""), str(route.get("output") or ""),
                                     str(route.get("kernel") or ""), tuple(route.get("download") or ()),
                                     dict(records), dict(checks))
    return Catalogue(files, folders, str(path))


# ---------------------------------------------------------------- what a recipe needs
def recipe_folders(recipe: Recipe) -> dict[str, list]:
    """First folder of each source path -> the recipe's sources reading it, one per file (the competition's folder
    excluded)."""
    try:
        folders = source_folders(recipe)
    except ValueError as e:
        raise SourcesError(str(e)) from None
    first = {folder: {} for folder in folders}
    for folder, srcs in folders.items():
        for src in srcs:
            first[folder].setdefault(src.path, src)
    return {folder: list(by_path.values()) for folder, by_path in first.items() if folder != COMPETITION}


def recipe_routes(recipe: Recipe, catalogue: Catalogue) -> list[Route]:
    """The route of every folder the recipe reads; a folder the catalogue does not route stops with what to add."""
    folders = recipe_folders(recipe)
    missing = [f"{folder} (read by {', '.join(s.name for s in srcs)})" for folder, srcs in folders.items()
               if folder not in catalogue.folders]
    if missing:
        raise SourcesError(f"recipe {recipe.name!r} reads {'; '.join(missing)}, which {catalogue.path} does not say "
                           "how to fetch: add it under folders: (dataset, kernel or download)")
    return [catalogue.folders[folder] for folder in folders]


def routes_spec(recipe: Recipe, catalogue: Catalogue) -> dict:
    """What a training kernel's fetch cell needs for `recipe`: per folder its route and the files it downloads, as
    plain data (the kernel reads the recipe itself, inlined beside `src/`)."""
    return {route.folder: {"route": dataclasses.asdict(route),
                           "files": [dataclasses.asdict(catalogue.files[n]) for n in route.download]}
            for route in recipe_routes(recipe, catalogue)}
