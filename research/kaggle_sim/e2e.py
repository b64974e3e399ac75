"""`make e2e`: the winner's whole scheme on the shipped sample, run as Kaggle runs it, with "internet" on loopback.

The chain `make reproduce` pushes, built the same way (`src.kaggle.chain`), runs kernel by kernel in a simulated
/kaggle tree (`sim.py`), each seeing only what its metadata attaches:
1. the wheels kernel: `pip download` from a loopback package index (one tiny wheel stands in for the pinned stack);
2. the data kernels: `tydi` downloads TyDi GoldP train from the loopback mirror and splits it per language; `nq`
   reads the NQ competition's simplified JSON lines (attached), downloads its reference questions and runs the real
   similarity classifier (`src.data.nq`) into `nq_subset.json`;
3. the training kernels (muril-large, rembert, xlm-roberta-large-squad2 x 2 folds, `recipe_kaggle`), internet on:
   each fetches its backbone from the loopback hub (`HF_ENDPOINT`; tiny stand-ins under the real hub ids) and every
   folder its recipe reads (downloads from the mirror, the data kernels' outputs), checked on arrival
   (`--with infoxlm`: a fourth family, infoxlm-large, the same way);
4. the submit kernel, internet off, over the training kernels' and the wheels kernel's outputs (blend fitted on the
   out-of-fold predictions, `blend="oof"`) -> `<out>/submission.csv` (checked against test.csv) and
   `<out>/oof_blend.csv` (one row per training id).

Every file served is a small stand-in in its source's real format (`internet.py`); the loopback server listens on
127.0.0.1 only and stops by itself; a `sitecustomize` socket guard refuses every other connection.

    python -m research.kaggle_sim.e2e [--out runs/e2e] [--folds 2]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from research.kaggle_sim.internet import serve_backbones, serve_sources
from research.kaggle_sim.loopback import Loopback, tiny_wheel
from research.kaggle_sim.sim import KaggleSim, offline_env, place_competition, set_parameters
from src.blend.combine import vote_name
from src.blend.submission import main as check_submission_cli
from src.common.io import write_csv
from src.common.paths import COMPETITION, REPO_ROOT
from src.data.load import load_chaii_csv
from src.kaggle.build import build
from src.kaggle.extras import parse_extras
from src.kaggle.plan import WHEELS_SLUG, WINNER_COUNTS, training_slug
from src.notebooks.report import report_run_folder
from src.train.backbones import get_backbone
from src.train.partition import make_folds
from src.train.stand_ins import ensure_tiny

E2E_USER = "e2e-user"
# CI-sized training on the tiny stand-ins: one pass over the recipe's windows at the stand-ins' own learning rate,
# no checkpoints; everything else (recipe, lengths, strides, folds) is what the Kaggle kernels run.
TRAIN_PARAMETERS = dict(epochs=1, batch_size=16, grad_accum=1, learning_rate=1e-3, save_steps=100_000)
OOF_COLUMNS = ["id", "fold", "prediction", "jaccard"]
# As on Kaggle's T4 x2: the first training kernel trains on 2 processes through the launcher (DDP; here gloo on the
# CPU) and the submit kernel predicts with 2 processes, each a share of the models.
TWO_PROCESSES = dict(num_processes=2)


PROBE = "chaii-probe==0.1"   # the one wheel the loopback index serves: the wheels kernel's requirements here


def check_prepared(work: Path, slug: str) -> None:
    """A wheels or data kernel's output, as the kernels attaching it will read it."""
    if slug == WHEELS_SLUG:
        shipped = (work / "requirements.txt").read_text(encoding="utf-8").split()
        wheels = list(work.glob("chaii_probe-0.1-*.whl"))
        if shipped != [PROBE] or not wheels or not (work / "image-pins.json").is_file():
            raise AssertionError(f"wheels kernel output {work}: requirements {shipped}, wheels "
                                 f"{sorted(p.name for p in work.glob('*.whl'))}")
        return
    report = json.loads((work / "data-kernel.json").read_text(encoding="utf-8"))
    empty = [f for f, r in report["outputs"].items() if r["rows"] == 0]
    if empty:
        raise AssertionError(f"data kernel {slug} wrote empty {empty}")
    print(f"   {slug}: " + ", ".join(f"{f} {r['rows']} rows" for f, r in report["outputs"].items()), flush=True)


def check_fetched(work: Path, backbone: str, commits: dict[str, str]) -> None:
    """The training kernel took its backbone from the hub at the served commit, and every folder arrived."""
    got = json.loads((work / "sources.json").read_text(encoding="utf-8"))
    hub_id = get_backbone(backbone.split("@")[0]).hub_id
    if got["backbone"]["commit"] != commits[hub_id]:
        raise AssertionError(f"{work}/sources.json: backbone commit {got['backbone']['commit']}, served "
                             f"{commits[hub_id]}")
    if not got["rows"] or not all(r["rows"] > 0 for r in got["rows"].values()):
        raise AssertionError(f"{work}/sources.json: a source arrived empty: {got['rows']}")


def check_run(run_dir: Path, backbone: str, fold: int, n_folds: int, processes: int = 1) -> None:
    for name in ("model/config.json", "oof.csv", "oof_logits.npz", "metrics.json"):
        if not (run_dir / name).is_file():
            raise AssertionError(f"training kernel output {run_dir / name} is missing")
    saved = json.loads((run_dir / "metrics.json").read_text())
    cfg = saved["config"]
    got = (cfg["backbone"], cfg["fold"], cfg["n_folds"], saved["metrics"].get("processes"))
    if got != (backbone, fold, n_folds, processes):
        raise AssertionError(f"{run_dir}/metrics.json: trained (backbone, fold, n_folds, processes) {got}, "
                             f"expected {(backbone, fold, n_folds, processes)}")


def check_oof_blend(oof: pd.DataFrame, train: pd.DataFrame, n_folds: int, seed: int = 42) -> None:
    """One row per training id, with the fold that held it out (the split every backbone shares)."""
    missing = [c for c in OOF_COLUMNS if c not in oof.columns]
    if missing:
        raise AssertionError(f"oof_blend.csv lacks column(s) {missing}; has {list(oof.columns)}")
    if oof["id"].duplicated().any():
        raise AssertionError(f"oof_blend.csv repeats ids: {oof.loc[oof['id'].duplicated(), 'id'].tolist()[:5]}")
    if set(oof["id"]) != set(train["id"]):
        raise AssertionError(f"oof_blend.csv ids differ from train.csv: {len(set(train['id']) - set(oof['id']))} "
                             f"missing, {len(set(oof['id']) - set(train['id']))} unknown")
    expected = dict(zip(train["id"], make_folds(train, n_folds, seed), strict=True))
    wrong = oof[oof["fold"].astype(int) != oof["id"].map(expected)]
    if len(wrong):
        raise AssertionError(f"oof_blend.csv: {len(wrong)} rows with another fold than the split's, e.g. "
                             f"{wrong.iloc[0][['id', 'fold']].to_dict()}")
    if not oof["jaccard"].astype(float).between(0, 1).all():
        raise AssertionError("oof_blend.csv: jaccard outside [0, 1]")


def run_e2e(out: Path, folds: int = 2, models_dir: Path = REPO_ROOT / ".cache" / "backbones",
            extras: tuple[str, ...] = ()) -> dict:
    t0 = time.time()
    out = Path(out).resolve()
    sim = KaggleSim(out / "sim")
    shutil.rmtree(sim.root, ignore_errors=True)
    env = offline_env(sim.root / "site")
    backbones = list(WINNER_COUNTS)
    added = {b: folds for b in parse_extras(list(extras))}     # `--with`: the same folds as the others
    # the install cell installs the wheels kernel's tiny wheel: into a folder of the simulation, not this venv
    env["PIP_TARGET"] = str(sim.root / "pip-target")
    families = backbones + list(added)
    ensure_tiny(models_dir)
    place_competition(sim.store)
    with Loopback(timeout_s=3600) as net:
        sim.internet = net.env()
        config = serve_sources(net, sim.store, sim.root / "kaggle_sources.yaml")
        commits = serve_backbones(net, families, models_dir)
        net.add_wheel(tiny_wheel(sim.root / "wheelhouse"))
        kernels = sim.root / "kernels"
        # limits=False: Kaggle's limits are sized for the real backbones, not for the CI-sized stand-ins run here
        build(kernels, E2E_USER, {b: folds for b in backbones}, wheels=False, train_parameters=TRAIN_PARAMETERS,
              limits=False, extras=added, sources_config=config)
        order = json.loads((kernels / "kernels.json").read_text())["order"]
        prepared, submit = order[:order.index(training_slug(backbones[0], 0))], kernels / order[-1]
        set_parameters(kernels / WHEELS_SLUG, requirements=PROBE)
        launched = kernels / training_slug(backbones[0], 0)
        for folder in (launched, submit):
            set_parameters(folder, **TWO_PROCESSES)
        executed = out / "executed"
        for slug in prepared:
            t = time.time()
            check_prepared(sim.run(kernels / slug, executed, env), slug)
            print(f"== {slug}: {time.time() - t:.0f}s", flush=True)
        for b in families:
            for k in range(folds):
                folder = kernels / training_slug(b, k)
                t = time.time()
                work = sim.run(folder, executed, env)
                print(f"== {folder.name}: {time.time() - t:.0f}s", flush=True)
                check_run(work / b / f"fold{k}", b, k, folds,
                          TWO_PROCESSES["num_processes"] if folder == launched else 1)
                check_fetched(work, b, commits)
        hub_calls = sum(1 for _, path in net.requests if "/resolve/" in path)
        print(f"loopback: {len(net.requests)} requests, {hub_calls} of them hub file downloads", flush=True)

    t = time.time()
    work = sim.run(submit, executed, env)   # after the loopback server stopped: the submit kernel has no internet
    print(f"== {submit.name}: {time.time() - t:.0f}s", flush=True)
    if f"over {TWO_PROCESSES['num_processes']} processes" not in (executed / f"{submit.name}.ipynb").read_text():
        raise AssertionError(f"the submit kernel ran with {TWO_PROCESSES} but did not predict over that many processes")
    test_csv = sim.store / COMPETITION / "test.csv"
    train = load_chaii_csv(sim.store / COMPETITION / "train.csv")
    shutil.copyfile(work / "submission.csv", out / "submission.csv")
    if check_submission_cli(["check", str(out / "submission.csv"), "--test", str(test_csv)]) != 0:
        raise AssertionError(f"{out / 'submission.csv'} fails the submission check")

    for name in ("oof_blend.csv", "blend_table.csv", "blend.json"):  # blend="oof": the kernel fitted the blend
        if not (work / name).is_file():
            raise AssertionError(f"the submit kernel ran blend='oof' but wrote no {name} in {work}")
    oof = pd.read_csv(work / "oof_blend.csv", dtype={"id": str}, keep_default_na=False)
    table = pd.read_csv(work / "blend_table.csv", keep_default_na=False)
    shutil.copyfile(work / "blend.json", out / "blend.json")
    check_oof_blend(oof, train, folds)
    vote = vote_name(len(backbones) + len(added))     # notebook 05's default vote_k 0: a majority of the families
    if vote not in set(table.iloc[:, 0]):
        raise AssertionError(f"blend_table.csv has no {vote!r} row: the submit kernel did not vote over all "
                             f"{len(backbones) + len(added)} families ({list(table.iloc[:, 0])})")
    write_csv(oof, out / "oof_blend.csv")
    write_csv(table if isinstance(table.index, pd.RangeIndex) else table.rename_axis("prediction").reset_index(),
              out / "blend_table.csv")
    print(f"reports: {report_run_folder(executed)}", flush=True)  # each executed kernel as HTML + index.html
    print("\nout-of-fold Jaccard per language (notebook 04's table):")
    print(table.round(4).to_string())
    seconds = time.time() - t0
    print(f"\ne2e passed in {seconds:.0f}s: {out / 'submission.csv'}, {out / 'oof_blend.csv'} "
          f"({len(oof)} training ids, {len(prepared)} wheels and data kernels, {len(families) * folds} training "
          "kernels, 1 submit kernel)", flush=True)
    return {"seconds": seconds, "submission": out / "submission.csv", "oof_blend": out / "oof_blend.csv"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m research.kaggle_sim.e2e", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO_ROOT / "runs" / "e2e"))
    ap.add_argument("--folds", type=int, default=2, help="training kernels per backbone (folds of an n-fold split)")
    ap.add_argument("--models-dir", default=str(REPO_ROOT / ".cache" / "backbones"))
    ap.add_argument("--with", dest="extras", action="append", default=[], metavar="FAMILY[=N]",
                    help="a family beyond the winner's, as `python -m src.kaggle build --with` (N is ignored: it "
                         "trains --folds kernels like the others), e.g. --with infoxlm")
    args = ap.parse_args(argv)
    run_e2e(Path(args.out), args.folds, Path(args.models_dir), tuple(args.extras))
    return 0


if __name__ == "__main__":
    sys.exit(main())
