"""Inside a kernel with internet: the backbone from the model hub and each recipe folder from where it is published,
every file checked on arrival (size, checksum, the layout its loader expects, the record count:
`src.kaggle.arrival`).

A training kernel's first cells after `src/` call `prepare_training_inputs`: the backbone goes to `models_dir/<name>`
(`huggingface_hub.snapshot_download` at the registry's revision; `HF_ENDPOINT` names another hub), each folder the
recipe reads to `external_dir/<folder>` (a link to an attached data set or kernel output, or the downloaded files),
and `sources.json` in the working directory says what arrived (the commit the revision resolved to, sizes, rows).
Anything that is not what it should be raises `SourceError` naming the source. `CHAII_DOWNLOAD_MIRROR=<base>`
fetches every download from `<base>/<host>/<path>` instead (a local mirror; the offline tests' loopback server).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from src.common.io import atomic_path, write_json
from src.kaggle.arrival import SourceError, check_file, where_from
from src.kaggle.sources import FileSpec, data_kernel_slug

MIRROR_ENV = "CHAII_DOWNLOAD_MIRROR"
CHUNK = 1 << 20
# The files of a hub repository a QA fine-tune needs: the config and tokenizer files, and the PyTorch weights
# (safetensors when the repository has them); TF, Flax, ONNX and Rust weights are left on the hub.
HUB_TEXT_FILES = (".json", ".txt", ".model")


def mirrored(url: str) -> str:
    """`url`, or its copy under $CHAII_DOWNLOAD_MIRROR (<mirror>/<host>/<path>)."""
    mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
    if not mirror:
        return url
    parts = urlsplit(url)
    return f"{mirror}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


# ---------------------------------------------------------------- downloads
def download(spec: FileSpec, folder: Path, timeout_s: float = 120.0) -> tuple[Path, dict]:
    """Fetch `spec` into `folder/<spec.file>` (a .zip's member extracted), checked; a file already there that
    passes the checks is kept (a rerun of the cell downloads nothing twice)."""
    import urllib.request

    folder = Path(folder)
    dest = folder / spec.file
    if dest.is_file():
        try:
            return dest, check_file(spec, dest)
        except SourceError:
            dest.unlink()
    if not spec.url:
        raise SourceError(f"{where_from(spec)}: not a download (a competition file is attached, not fetched)")
    url = mirrored(spec.url)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        raw = Path(tmp) / ("archive.zip" if spec.member else spec.file)   # .gz is read by its suffix
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r, open(raw, "wb") as f:
                shutil.copyfileobj(r, f, CHUNK)
        except OSError as e:  # URLError, HTTPError, timeouts and refused connections are OSErrors
            raise SourceError(f"{where_from(spec)}: download from {url} failed: {e}") from None
        got = raw
        if spec.member:
            got = Path(tmp) / spec.file
            try:
                with zipfile.ZipFile(raw) as z:
                    names = [n for n in z.namelist() if n == spec.member or n.endswith("/" + spec.member)]
                    if len(names) != 1:
                        raise SourceError(f"{where_from(spec)}: the zip holds {len(names)} member(s) ending in "
                                          f"{spec.member!r}, expected one ({len(z.namelist())} members)")
                    with z.open(names[0]) as src, open(got, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
            except (zipfile.BadZipFile, EOFError) as e:
                raise SourceError(f"{where_from(spec)}: not a whole zip file ({e}): cut short?") from None
        measured = check_file(spec, got)
        with atomic_path(dest) as final:
            shutil.move(str(got), final)
    return dest, measured


# ---------------------------------------------------------------- the backbone from the hub
def hub_files(names: list[str]) -> list[str]:
    """The files of a hub repository to download: top-level config/tokenizer files and the PyTorch weights."""
    top = [n for n in names if "/" not in n]
    safetensors = [n for n in top if n.endswith(".safetensors") or n == "model.safetensors.index.json"]
    weights = safetensors or [n for n in top if n.startswith("pytorch_model") and n.endswith((".bin", ".json"))]
    return sorted(set([n for n in top if n.endswith(HUB_TEXT_FILES)] + weights))


def fetch_backbone(name: str, models_dir: Path) -> dict:
    """The registered backbone `name` at its registry revision, in `models_dir/<name>`; checked: a config that
    transformers reads, weights, tokenizer files. Returns {hub_id, revision, commit, files: {name: bytes}}."""
    from huggingface_hub import HfApi, snapshot_download

    from src.train.backbones import family_base, get_backbone

    b = get_backbone(family_base(name))
    where = f"backbone {b.name!r} ({b.hub_id}@{b.revision})"
    if not b.hub_id:
        raise SourceError(f"{where}: no hub id in the registry: attach its weights instead")
    try:
        # HF_ENDPOINT read now, not when huggingface_hub was imported (a process may import it before it is set)
        endpoint = os.environ.get("HF_ENDPOINT") or None
        info = HfApi(endpoint=endpoint).model_info(b.hub_id, revision=b.revision)
        files = hub_files([s.rfilename for s in info.siblings or []])
        local = Path(snapshot_download(b.hub_id, revision=info.sha, local_dir=Path(models_dir) / b.name,
                                       allow_patterns=files, endpoint=endpoint))
    except Exception as e:  # the hub's errors (not found, gated, network) come in many types: name the source
        raise SourceError(f"{where}: could not be fetched: {type(e).__name__}: {e}") from None
    weights = [f for f in files if f.endswith((".safetensors", ".bin"))]
    tokenizer = [f for f in files if f.startswith("tokenizer") or f.endswith((".model", "vocab.txt"))]
    missing = [what for what, ok in (("config.json", "config.json" in files), ("weights", weights),
                                     ("tokenizer files", tokenizer)) if not ok]
    if missing:
        raise SourceError(f"{where}: the repository lacks {', '.join(missing)} (has {', '.join(files) or 'nothing'})")
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(local)
    except (OSError, ValueError) as e:
        raise SourceError(f"{where}: its config.json is not one transformers reads: {e}") from None
    sizes = {f: (local / f).stat().st_size for f in files}
    empty = [f for f, n in sizes.items() if n == 0]
    if empty:
        raise SourceError(f"{where}: empty file(s) {', '.join(empty)}")
    return {"hub_id": b.hub_id, "revision": b.revision, "commit": info.sha, "files": sizes}


# ---------------------------------------------------------------- one training kernel's inputs
def find_mount(input_dir: Path, name: str) -> Path:
    """Where Kaggle mounted the data set or kernel output `name`: input/<name>, else the one folder of that name
    at most three levels down (Kaggle's newer layouts nest mounts by owner)."""
    direct = Path(input_dir) / name
    if direct.is_dir():
        return direct
    found = [p for depth in ("*/", "*/*/", "*/*/*/") for p in Path(input_dir).glob(f"{depth}{name}") if p.is_dir()]
    if len(found) != 1:
        seen = sorted(p.name for p in Path(input_dir).iterdir()) if Path(input_dir).is_dir() else []
        raise SourceError(f"{name} is not attached to this kernel ({len(found)} folders of that name under "
                          f"{input_dir}; it has {', '.join(seen) or 'nothing'}): add it to the kernel's inputs")
    return found[0]


def link_mount(mount: Path, dest: Path) -> None:
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(mount.resolve(), target_is_directory=True)


def assemble_folder(folder: str, spec: dict, input_dir: Path, external_dir: Path, user: str) -> dict:
    """Put one recipe folder at `external_dir/<folder>` by its route: a link to the attached data set or kernel
    output, or the files downloaded (each checked)."""
    route, dest = spec["route"], Path(external_dir) / folder
    if route["download"]:
        arrived = {"from": "download", "files": {}}
        for f in spec["files"]:
            fs = FileSpec(**{**f, "fields": tuple(f.get("fields") or ())})
            _, measured = download(fs, dest)
            arrived["files"][fs.name] = {"url": fs.url, **measured}
    else:
        attached = route["dataset"] or route["output"] or f"{user}/{data_kernel_slug(route['kernel'])}"
        mount = find_mount(input_dir, attached.split("/")[-1])
        link_mount(mount, dest)
        arrived = {"from": attached, "mount": str(mount)}
    for file, check in (route.get("checks") or {}).items():   # the file's published facts (src.data.checks)
        from src.data.checks import SourceCheckError, check_source

        try:
            arrived.setdefault("checked", {})[file] = check_source(check, dest / file)
        except (SourceCheckError, ValueError, FileNotFoundError) as e:
            raise SourceError(f"folder {folder}/ (from {arrived['from']}): {e}") from None
    return arrived


def recipe_rows(recipe, folders: dict, external_dir: Path, arrived: dict) -> dict:
    """Every source of `recipe` under the routed `folders`, read as notebook 03 will read it (`source_frame`):
    {source path: rows}; a source its loader cannot read, or with other row counts than the catalogue's, stops
    with an error naming the source and where it came from."""
    from src.data.load import DataError
    from src.train.recipe import source_frame

    rows, seen = {}, set()
    for stage in recipe.stages:
        for src in stage.sources:
            folder = src.path.split("/")[0]
            if folder not in folders or src.data_key() in seen:
                continue
            seen.add(src.data_key())
            where = f"source {src.name!r} ({src.path}, from {arrived[folder]['from']})"
            try:
                df = source_frame(src, external_dir)
            except (DataError, FileNotFoundError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
                have = sorted(p.name for p in (Path(external_dir) / folder).iterdir()) \
                    if (Path(external_dir) / folder).is_dir() else []
                raise SourceError(f"{where}: not what the recipe's {src.kind} loader reads: {e} ({folder}/ holds "
                                  f"{', '.join(have[:20]) or 'nothing'})") from None
            n = len(df) + int(df.attrs.get("n_dropped", 0))
            expected = folders[folder]["route"]["records"].get(Path(src.path).name)
            if expected is not None and n != expected:
                raise SourceError(f"{where}: {n:,} records, expected {expected:,}")
            rows[src.path] = {"rows": len(df), "dropped": int(df.attrs.get("n_dropped", 0))}
    return rows


def prepare_training_inputs(backbone: str, recipe: str, routes: dict, user: str, input_dir: str | Path = "../input",
                            external_dir: str | Path = "../../tmp/chaii-sources",
                            models_dir: str | Path = "../../tmp/chaii-models", work_dir: str | Path = ".") -> dict:
    """Everything a training kernel with internet reads before notebook 03 starts: the backbone, then each folder of
    `routes` (`src.kaggle.sources.routes_spec`), then every source of the recipe read once as notebook 03 reads it.
    Writes `<work_dir>/sources.json` (what arrived) and returns it."""
    from src.train.recipe import load_recipe

    report = {"backbone": fetch_backbone(backbone, Path(models_dir)), "recipe": recipe, "folders": {}}
    print(f"backbone {backbone}: {report['backbone']['hub_id']} at commit {report['backbone']['commit']}", flush=True)
    for folder, spec in routes.items():
        report["folders"][folder] = assemble_folder(folder, spec, Path(input_dir), Path(external_dir), user)
        print(f"{folder}/: from {report['folders'][folder]['from']}", flush=True)
    report["rows"] = recipe_rows(load_recipe(recipe), routes, Path(external_dir), report["folders"])
    for path, r in report["rows"].items():
        print(f"{path}: {r['rows']:,} rows ({r['dropped']} dropped by the loader)", flush=True)
    write_json(report, Path(work_dir) / "sources.json")
    return report
