"""`make e2e`: the winner's whole scheme on the shipped sample, run as Kaggle runs it, offline.

A raw NQ sample -> the real similarity classifier (`python -m src.data.nq`) -> the recipe's data sets (SQuAD-layout
TyDi/SQuAD/MLQA/XQuAD from the synthetic generator) -> the BUILT training kernels (muril-large, rembert,
xlm-roberta-large-squad2 x 2 folds, `recipe_kaggle`, tiny stand-ins for the weights) -> their outputs mounted as
kernel sources -> the BUILT submit kernel (blend fitted on the out-of-fold predictions, `blend="oof"`) ->
`<out>/submission.csv` (checked against test.csv) and `<out>/oof_blend.csv` (one row per training id).
`--with infoxlm` (`make e2e EXTRA=infoxlm`) adds a fourth family the way `make kernels EXTRA=infoxlm` does
(infoxlm-large on tiny-xlmr, as many folds as the others): the submit kernel then votes over four families.

    python -m research.kaggle_sim.e2e [--out runs/e2e] [--folds 2] [--with infoxlm]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from research.kaggle_sim.sim import (
    KaggleSim,
    nq_subset,
    offline_env,
    place_competition,
    place_weights,
    place_wheels,
    set_parameters,
    write_recipe_data,
)
from src.blend.combine import vote_name
from src.blend.submission import main as check_submission_cli
from src.common.io import write_csv
from src.common.paths import COMPETITION, REPO_ROOT
from src.data.load import load_chaii_csv
from src.data.synthetic import write_nq_sample, write_reference_questions
from src.kaggle.build import build
from src.kaggle.plan import RECIPE, WHEELS_SLUG, WINNER_COUNTS, parse_extras, training_slug
from src.notebooks.report import report_run_folder
from src.train.backbones import ensure_tiny
from src.train.fold import make_folds
from src.train.recipe import load_recipe

E2E_USER = "e2e-user"
# CI-sized training on the tiny stand-ins: one pass over the recipe's windows at the stand-ins' own learning rate,
# no checkpoints; everything else (recipe, lengths, strides, folds) is what the Kaggle kernels run.
TRAIN_PARAMETERS = dict(epochs=1, batch_size=16, grad_accum=1, learning_rate=1e-3, save_steps=100_000)
OOF_COLUMNS = ["id", "fold", "prediction", "jaccard"]
# As on Kaggle's T4 x2: the first training kernel trains on 2 processes through the launcher (DDP; here gloo on the
# CPU) and the submit kernel predicts with 2 processes, each a share of the models.
TWO_PROCESSES = dict(num_processes=2)


def prepare_data(sim: KaggleSim, backbones: list[str], models_dir: Path, env: dict[str, str]) -> None:
    """Everything the kernels attach, in the store: competition, weights, wheels, the recipe's data sets."""
    recipe = load_recipe(RECIPE)
    place_competition(sim.store)
    place_weights(sim.store, backbones, models_dir)
    place_wheels(sim.store, WHEELS_SLUG)
    write_recipe_data(sim.store, recipe)
    nq = next(s for stage in recipe.stages for s in stage.sources if s.kind == "nq")
    raw = write_nq_sample(sim.root / "nq_raw" / "nq-sample.jsonl")
    # the classifier's references: TyDi-like vs reading-comprehension questions in English, as NQ's are (the
    # recipe's synthetic Hindi/Tamil files would give it nothing to tell apart)
    target = write_reference_questions(sim.root / "nq_raw" / "target.json", "target")
    other = write_reference_questions(sim.root / "nq_raw" / "other.json", "other")
    nq_subset(raw, [target], [other], sim.store / nq.path, env)
    print(f"data sets: {sorted(p.name for p in sim.store.iterdir())}", flush=True)


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
    ensure_tiny(models_dir)
    prepare_data(sim, backbones + list(added), models_dir, env)

    kernels = sim.root / "kernels"
    # limits=False: Kaggle's limits are sized for the real backbones, not for the CI-sized stand-ins run here
    folders = build(kernels, E2E_USER, {b: folds for b in backbones}, wheels=False, train_parameters=TRAIN_PARAMETERS,
                    limits=False, extras=added)
    *training, submit = folders
    launched = kernels / training_slug(backbones[0], 0)
    for folder in (launched, submit):
        set_parameters(folder, **TWO_PROCESSES)
    executed = out / "executed"
    for b in backbones + list(added):
        for k in range(folds):
            folder = kernels / training_slug(b, k)
            t = time.time()
            work = sim.run(folder, executed, env)
            print(f"== {folder.name}: {time.time() - t:.0f}s", flush=True)
            check_run(work / b / f"fold{k}", b, k, folds,
                      TWO_PROCESSES["num_processes"] if folder == launched else 1)

    t = time.time()
    work = sim.run(submit, executed, env)
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
          f"({len(oof)} training ids, {len(training)} training kernels + 1 submit kernel)", flush=True)
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
