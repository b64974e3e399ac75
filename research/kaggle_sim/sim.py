"""A simulated Kaggle for built kernels: each kernel sees only what its kernel-metadata.json attaches.

Layout under `root`:
    store/<name>/                   data sets by the folder Kaggle mounts them at (competition, weights, wheels,
                                    the recipe's external data), written here in their real formats
    <slug>/kaggle/input/<name>      per kernel: links to the store entries its metadata attaches, and to the
                                    /kaggle/working of every kernel in its kernel_sources (as Kaggle mounts outputs)
    <slug>/kaggle/working/          the kernel's working directory and output
    <slug>/tmp/                     the kernel's /tmp (where a kernel with internet fetches its inputs to)
A kernel runs with papermill there, with `CHAII_KAGGLE_ROOT=<root>/<slug>` (src.common.paths treats it as `/`) and
outside connections refused by a `sitecustomize` socket guard; a kernel without internet has the hub offline, one
with internet gets `KaggleSim.internet` (the loopback server's addresses: research/kaggle_sim/loopback.py).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.common.io import write_json, write_text
from src.common.paths import COMPETITION, REPO_ROOT

# Loaded by every Python process started with this folder on PYTHONPATH (kernels, the kaggle CLI in tests).
SOCKET_GUARD = '''
import os, socket
if os.environ.get("CHAII_NO_NETWORK") == "1":
    _connect = socket.socket.connect
    def _guarded(self, address, *a):
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"network blocked in this test: connect to {address!r}")
        return _connect(self, address, *a)
    socket.socket.connect = _guarded
if os.environ.get("CHAII_FAKE_KAGGLE"):
    import kagglesdk.kaggle_env as env
    env._env_to_endpoint[env.KaggleEnv.LOCAL] = os.environ["CHAII_FAKE_KAGGLE"]
'''


def offline_env(site_dir: Path) -> dict[str, str]:
    """Environment for processes that must not reach the network (the guard is written into `site_dir`)."""
    site_dir.mkdir(parents=True, exist_ok=True)
    write_text(SOCKET_GUARD, site_dir / "sitecustomize.py")
    # one torch thread unless told otherwise: on 2 busy cores two threads made a tiny model's step 6x slower
    return {"PYTHONPATH": str(site_dir), "CHAII_NO_NETWORK": "1", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


@dataclass
class KaggleSim:
    root: Path
    # what a kernel with `enable_internet` gets in its environment (the loopback server's HF_ENDPOINT, download
    # mirror, package index: research/kaggle_sim/loopback.py); a kernel without internet never gets it
    internet: dict[str, str] | None = None

    @property
    def store(self) -> Path:
        return self.root / "store"

    def kernel_root(self, slug: str) -> Path:
        return self.root / slug

    def working(self, slug: str) -> Path:
        return self.kernel_root(slug) / "kaggle" / "working"

    def mount(self, folder: Path) -> dict:
        """A fresh /kaggle tree for the built kernel in `folder`: its attached sources linked under input/."""
        meta = json.loads((folder / "kernel-metadata.json").read_text(encoding="utf-8"))
        slug = meta["id"].split("/")[-1]
        shutil.rmtree(self.kernel_root(slug), ignore_errors=True)
        kin = self.kernel_root(slug) / "kaggle" / "input"
        kin.mkdir(parents=True)
        self.working(slug).mkdir(parents=True)
        sources = [(n, self.store / n) for n in meta.get("competition_sources", [])]
        sources += [(s.split("/")[-1], self.store / s.split("/")[-1]) for s in meta.get("dataset_sources", [])]
        # a kernel's output: its working directory once it ran here, else (a public kernel's) the store's copy
        sources += [(s.split("/")[-1], self.working(s.split("/")[-1]) if self.working(s.split("/")[-1]).is_dir()
                     else self.store / s.split("/")[-1]) for s in meta.get("kernel_sources", [])]
        for name, target in sources:
            if not target.is_dir():
                raise FileNotFoundError(f"{folder}/kernel-metadata.json attaches {name!r}, which the simulation "
                                        f"does not have ({target})")
            (kin / name).symlink_to(target.resolve(), target_is_directory=True)
        return meta

    def run(self, folder: Path, executed_dir: Path, env: dict[str, str], timeout_s: int = 600) -> Path:
        """Execute the built kernel in `folder` as Kaggle would; returns its working directory (its output)."""
        import papermill as pm

        from src.notebooks.run import kernel_config

        meta = self.mount(folder)
        slug = meta["id"].split("/")[-1]
        executed = executed_dir / f"{slug}.ipynb"
        executed.parent.mkdir(parents=True, exist_ok=True)
        online = bool(meta.get("enable_internet")) and self.internet is not None
        env = {**env, **(self.internet if online else {}), "HF_HUB_OFFLINE": "0" if online else "1"}
        (self.kernel_root(slug) / "tmp").mkdir(exist_ok=True)   # Kaggle's /tmp (where a chain's kernel fetches to)
        saved = {k: os.environ.get(k) for k in [*env, *(self.internet or {}), "CHAII_KAGGLE_ROOT"]}
        for k in self.internet or {}:  # none of the internet's addresses reaches a kernel without internet
            os.environ.pop(k, None)
        os.environ.update(env, CHAII_KAGGLE_ROOT=str(self.kernel_root(slug)))  # the kernel process inherits these
        try:
            pm.execute_notebook(str(folder / meta["code_file"]), str(executed), cwd=str(self.working(slug)),
                                kernel_name="python3", progress_bar=False, execution_timeout=timeout_s,
                                config=kernel_config())
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return self.working(slug)


def set_parameters(folder: Path, **params) -> None:
    """Override parameters of the built kernel in `folder`, as a Kaggler edits a kernel's parameters before running
    it: appended to its injected-parameters cell, so they win over the values the build put there."""
    import nbformat

    meta = json.loads((folder / "kernel-metadata.json").read_text(encoding="utf-8"))
    path = folder / meta["code_file"]
    nb = nbformat.read(path, as_version=4)
    cell = next((c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise ValueError(f"{path} has no injected-parameters cell: is it a built kernel?")
    cell.source = cell.source.rstrip("\n") + "\n# set by the simulation\n" + "".join(
        f"{k} = {v!r}\n" for k, v in params.items())
    write_text(nbformat.writes(nb), path)


# ---------------------------------------------------------------- data sets in their real formats
def squad_layout(df: pd.DataFrame, impossible: pd.DataFrame | None = None) -> dict:
    """A SQuAD-layout document (data[].paragraphs[].qas[]) of a frame; `impossible` rows become SQuAD 2.0
    questions without an answer (is_impossible)."""
    data = []
    for i, (context, rows) in enumerate(df.groupby("context", sort=False)):
        qas = [{"id": r.id, "question": r.question, "answers": [{"text": r.answer_text,
                                                                  "answer_start": int(r.answer_start)}]}
               for r in rows.itertuples()]
        data.append({"title": f"article {i}", "paragraphs": [{"context": context, "qas": qas}]})
    for j, r in enumerate((impossible if impossible is not None else df.iloc[:0]).itertuples()):
        data[j % len(data)]["paragraphs"][0]["qas"].append(
            {"id": f"{r.id}-x", "question": r.question, "answers": [], "is_impossible": True})
    return {"version": "v2.0", "data": data}


def place_weights(store: Path, backbones: list[str], models_dir: Path) -> None:
    """Each backbone's tiny stand-in where its weights dataset mounts (`/kaggle/input/<dataset>/config.json`)."""
    from src.train.backbones import STANDS_IN_FOR, family_base, get_backbone

    for name in backbones:
        dest = store / get_backbone(name).kaggle_dataset.split("/")[-1]
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(models_dir / STANDS_IN_FOR[family_base(name)], dest)


def place_wheels(store: Path, slug: str) -> None:
    """The wheels dataset as the kernels' install cell reads it: requirements.txt (the HF stack's pins) and
    image-pins.json; every pin is installed here, so the offline pip install has nothing to fetch (the wheel files
    themselves are not needed) and the image check runs for real against this environment."""
    from src.kaggle.wheels import hf_requirements, image_pins

    write_text("\n".join(hf_requirements()) + "\n", store / slug / "requirements.txt")
    write_json(image_pins(), store / slug / "image-pins.json")


def place_competition(store: Path) -> None:
    dest = store / COMPETITION
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(REPO_ROOT / "input", dest)
