"""`make e2e-real`: the whole scheme with a real model on chaii-shaped real data, run as Kaggle runs it, offline.

`make e2e` proves the path with tiny stand-ins on a synthetic sample. This runs the same BUILT kernels in the same
simulated /kaggle tree (`research.kaggle_sim.sim`) on the chaii-like data (`research.experiments.chaii_like`:
XQuAD-hi and XQuAD-IN ta questions beside their whole article, articles 0-35 train, 36-47 test) with a real QA
model, the grouped e5-small-qa base (`research.experiments.ablate_long.BASE`), and scores the submission against the
held-out answers: the stand-in for the private leaderboard.

The winner's vote needs three backbone families. Here they are one backbone trained three ways (family names
`e5-small-qa@<tag>`, `src.train.backbones`), each with its own recipe in configs/:
    e5-small-qa@plain       chaii_like_plain.yaml      one shuffled pool, every window, no augmentation
    e5-small-qa@negsamp30   chaii_like_negsamp30.yaml  two stages in order, 30% of the no-answer windows kept
    e5-small-qa@his68       chaii_like_his68.yaml      the winner's 68-type recipe at this scale (kldarek/chaii
                                                       XLMR_pretraining68 cells 12, 14): TyDi 0.1 + SQuAD + chaii
                                                       0.1, then TyDi 0.1 + chaii 0.2, then chaii alone, every
                                                       window; no crop, resizing or cutout
each trained as `FOLDS` training kernels (notebook 03) on a seeded sample of the chaii-like training questions
(`TRAIN_QUESTIONS`, CPU-sized) plus TyDi GoldP dev (en, bn, te) and SQuAD dev without the held-out articles. Then
the submit kernel (notebook 05) fits the blend on the out-of-fold predictions (`blend="oof"`: notebook 04's
cross-fitted choice), predicts the 435 held-out questions and saves every model's logits (`save_logits`), from which
`research.kaggle_sim.e2e_scores` scores each model alone, each family (its folds averaged), the 2-of-3 word vote and
the submission, with 95% bootstrap intervals and the paired gain of the vote over the best family.

    python -m research.kaggle_sim.e2e_real [--out runs/e2e-real] [--folds 2]   # make e2e-real

Resumable: a finished training or submit kernel whose built notebook and inputs are unchanged is reused (its
fingerprint is kept in <out>/done/), so a rerun after an interruption, or after a change to the scoring, trains
nothing again. Writes <out>/submission.csv, <out>/solution.csv, <out>/e2e_real.json, docs/e2e_real.md (the tables)
and one row of kind "e2e-real" in docs/experiments.jsonl.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from research.experiments import ablate, ablate_long, chaii_like, evalsets
from research.kaggle_sim.e2e_scores import candidates, gains_over_best_family, markdown, score_rows
from research.kaggle_sim.sim import KaggleSim, offline_env, place_wheels, set_parameters
from src.blend.ensemble import load_logits
from src.blend.submission import read_solution, read_submission, write_submission
from src.common.io import write_csv, write_json, write_text
from src.common.paths import COMPETITION, REPO_ROOT
from src.data.load import load_chaii_csv
from src.infer.answer_rules import AnswerRules
from src.infer.precision import bf16_support
from src.kaggle.build import build
from src.kaggle.plan import WHEELS_SLUG
from src.train import explog

USER = "e2e-user"
FAMILIES = {"e5-small-qa@plain": "chaii_like_plain", "e5-small-qa@negsamp30": "chaii_like_negsamp30",
            "e5-small-qa@his68": "chaii_like_his68"}
FOLDS = 2
# chaii-like training questions in the simulated train.csv, a seeded sample per language (about the pools' ratio,
# 925:658): each fold trains on half of them, ~80 questions, ~800 windows of 256 with every window (plain), ~5 min
# of training on 2 CPU cores in bf16; the 435 held-out questions are all scored. Windows per fold (0, 1), counted
# by building each kernel's `fold_dataset` with e5-small's tokenizer (no training): plain 768, 842; negsamp30 388,
# 415; his68 1,230, 1,325 (it reads the chaii-like questions three times, 1.6x plain's windows, as in the winner grid).
TRAIN_QUESTIONS = {"hindi": 96, "tamil": 64}
# The ablation's fine-tune settings (`research.experiments.ablate.TRAIN`) as notebook-03 parameters; no checkpoints
# (a kernel is rerun whole), no row in the kernel's own log (this module writes one for the run).
TRAIN_PARAMETERS = {k: v for k, v in ablate.TRAIN.items() if k not in ("backbone", "max_length", "doc_stride")}
TRAIN_PARAMETERS.update(save_steps=100_000, experiment_log="none", num_processes=1)
# The external sets the recipes read, under the folders they mount at (paths as in configs/chaii_like_*.yaml)
TYDI_DEV = ("english", "bengali", "telugu")
DATASETS = {"tydiqa-goldp": "{user}/tydiqa-goldp", "squad-dev": "{user}/squad-dev"}
KIND = "e2e-real"
SUBMIT_RULES = AnswerRules(whole_letters=True)   # notebook 05's default answer rules: every row scored alike
TABLE = REPO_ROOT / "docs" / "e2e_real.md"
KERNEL_TIMEOUT_S = 4 * 3600


# ---------------------------------------------------------------- data (pure)
def sample_train(train: pd.DataFrame, sizes: dict[str, int] = TRAIN_QUESTIONS, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of `sizes[language]` questions per language, in the file's order."""
    parts = []
    for lang, n in sizes.items():
        rows = train[train["language"] == lang]
        if n > len(rows):
            raise ValueError(f"{n} {lang} training questions asked, the chaii-like train split has {len(rows)}")
        parts.append(rows.sample(n, random_state=seed))
    return pd.concat(parts).sort_index().reset_index(drop=True)


def squad_without(doc: dict, titles: set[str]) -> dict:
    """A SQuAD-layout document without the articles `titles` (the held-out articles' English originals)."""
    return {**doc, "data": [a for a in doc["data"] if a["title"] not in titles]}


def fingerprint(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- the edges: the simulated Kaggle
def competition_data(data_dir: Path, sizes: dict[str, int] = TRAIN_QUESTIONS,
                     test_sizes: dict[str, int] | None = None) -> dict:
    """{"files": chaii's three files as frames, "squad_dev": SQuAD dev without the held-out articles (a SQuAD
    document), "tydi_dev": {file name: path}}. Refuses on any leak of the test articles into a training source."""
    from src.data.external import load_squad_json, load_tydi_json

    hindi, tamil, titles = chaii_like.load(data_dir)
    parts = chaii_like.split(hindi, tamil, titles)
    held = set(evalsets.held_out_titles(data_dir))
    squad = squad_without(json.loads((data_dir / "squad" / "dev-v1.1.json").read_text(encoding="utf-8")), held)
    tydi = {f"{lang}_tydiqa_dev.json": data_dir / "tydiqa_goldp" / f"{lang}_tydiqa_dev.json" for lang in TYDI_DEV}
    with tempfile.TemporaryDirectory() as tmp:   # the loader reads files: check the SQuAD document as written
        squad_frame = load_squad_json(write_json(squad, Path(tmp) / "dev-v1.1.json"))
    trains = {"squad_dev": squad_frame, **{name: load_tydi_json(path) for name, path in tydi.items()}}
    problems = chaii_like.leaks(parts, {**evalsets.train_sources(data_dir), **trains})
    if problems:
        raise SystemExit("the chaii-like test articles leak into e2e-real's training data:\n" + "\n".join(problems))
    test = parts["test"] if test_sizes is None else sample_train(parts["test"], test_sizes)   # a trial's few
    return {"files": chaii_like.files({"train": sample_train(parts["train"], sizes), "test": test}),
            "squad_dev": squad, "tydi_dev": tydi}


def place_data(sim: KaggleSim, out: Path, data: dict) -> dict:
    """`competition_data` in the store (train.csv, test.csv, sample_submission.csv; the external sets), the base's
    weights linked in, the wheels and the data-set map; solution.csv beside the store, where no kernel sees it."""
    files, comp = data["files"], sim.store / COMPETITION
    write_json(data["squad_dev"], sim.store / "squad-dev" / "dev-v1.1.json")
    for name, path in data["tydi_dev"].items():
        (sim.store / "tydiqa-goldp").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, sim.store / "tydiqa-goldp" / name)
    write_csv(files["train.csv"], comp / "train.csv")
    write_csv(files["test.csv"], comp / "test.csv")
    write_csv(files["test.csv"][["id"]].assign(PredictionString=""), comp / "sample_submission.csv")
    write_csv(files["solution.csv"], out / "solution.csv")
    weights = sim.store / "e5-small-qa"
    base = ablate.base_model(ablate_long.BASE)
    if weights.is_symlink():
        weights.unlink()
    weights.symlink_to(base.resolve(), target_is_directory=True)
    place_wheels(sim.store, WHEELS_SLUG)
    write_text("datasets:\n" + "".join(f'  {k}: "{v}"\n' for k, v in DATASETS.items()),
               sim.root / "kaggle_datasets.yaml")
    return {"base": str(base), "train": files["train.csv"], "test": files["test.csv"]}


def input_digest(sim: KaggleSim, base: Path) -> str:
    """What every kernel reads besides its notebook: the competition files, the external sets, the base."""
    files = sorted(p for d in (sim.store / COMPETITION, sim.store / "tydiqa-goldp", sim.store / "squad-dev")
                   for p in d.rglob("*") if p.is_file())
    weights = base / "model.safetensors"
    return fingerprint(*(p.read_bytes() for p in files), (base / "config.json").read_bytes(),
                       str(weights.stat().st_size) if weights.exists() else "")


def build_kernels(kernels: Path, folds: int, datasets_config: Path, params: dict) -> list[Path]:
    """A fresh `kernels` folder: `folds` training kernels per family, each inlining its family's recipe, then the
    submit kernel (last)."""
    shutil.rmtree(kernels, ignore_errors=True)
    return build(kernels, USER, {f: folds for f in FAMILIES}, wheels=False, recipes=FAMILIES,
                 datasets_config=datasets_config, train_parameters=params, limits=False)


def run_kernel(sim: KaggleSim, folder: Path, executed: Path, env: dict, done_dir: Path,
               digest: str) -> tuple[Path, float, str]:
    """(its working directory, minutes, fingerprint): a kernel whose notebook and inputs match a finished run is
    reused."""
    meta = json.loads((folder / "kernel-metadata.json").read_text(encoding="utf-8"))
    slug = meta["id"].split("/")[-1]
    fp = fingerprint((folder / meta["code_file"]).read_bytes(), digest)
    mark = done_dir / f"{slug}.json"
    saved = json.loads(mark.read_text()) if mark.is_file() else {}
    if saved.get("fingerprint") == fp and sim.working(slug).is_dir():
        print(f"== {slug}: reused ({saved['minutes']:.1f} min when it ran)", flush=True)
        return sim.working(slug), saved["minutes"], fp
    t = time.time()
    work = sim.run(folder, executed, env, timeout_s=KERNEL_TIMEOUT_S)
    minutes = (time.time() - t) / 60
    write_json({"fingerprint": fp, "minutes": round(minutes, 2)}, mark)
    print(f"== {slug}: {minutes:.1f} min", flush=True)
    return work, minutes, fp


def run(out: Path, folds: int = FOLDS, sizes: dict[str, int] = TRAIN_QUESTIONS, data_dir: Path = chaii_like.DATA_DIR,
        log: Path | None = None, table: Path | None = TABLE, test_sizes: dict[str, int] | None = None) -> dict:
    t0 = time.time()
    out = Path(out).resolve()
    sim = KaggleSim(out / "sim")
    env = offline_env(sim.root / "site")
    native, why = bf16_support()
    env["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    placed = place_data(sim, out, competition_data(Path(data_dir), sizes, test_sizes))
    digest = input_digest(sim, Path(placed["base"]))

    params = {**TRAIN_PARAMETERS, "bf16": native}
    *training, submit = build_kernels(sim.root / "kernels", folds, sim.root / "kaggle_datasets.yaml", params)
    # bf16 inference where it is native (the ablation scores in bf16 too); "auto" would take fp32 on a CPU
    set_parameters(submit, save_logits=True, num_processes=1, precision="bf16" if native else "fp32")
    executed, done = out / "executed", out / "done"
    minutes = {"train": 0.0, "submit": 0.0}
    fps = []
    for folder in training:
        _, m, fp = run_kernel(sim, folder, executed, env, done, digest)
        minutes["train"] += m
        fps.append(fp)
    work, m, _ = run_kernel(sim, submit, executed, env, done, fingerprint(digest, *fps))
    minutes["submit"] = m

    test = load_chaii_csv(sim.store / COMPETITION / "test.csv", split="test")
    solution = read_solution(out / "solution.csv")
    submission = read_submission(work / "submission.csv")
    write_submission(submission, test["id"], out / "submission.csv")
    logits, backbones = load_logits(work / "test_logits")
    answers = candidates(test, logits, backbones, rules=SUBMIT_RULES)
    answers["submission (the submit kernel's)"] = dict(zip(submission["id"], submission["PredictionString"],
                                                          strict=True))
    scores = score_rows(answers, test, solution)
    best, gains = gains_over_best_family(answers, scores, solution)
    blend = json.loads((work / "blend.json").read_text()) if (work / "blend.json").is_file() else {}
    machine = explog.machine()
    info = {"date": time.strftime("%Y-%m-%d"), "cpu": machine.get("cpu", "?"),
            "precision": "bf16" if native else f"fp32 ({why})", "minutes": (time.time() - t0) / 60,
            "train_minutes": minutes["train"], "submit_minutes": minutes["submit"],
            "git_commit": explog.git_commit(), "train_questions": len(placed["train"]),
            "train_by_language": ", ".join(f"{k} {v}" for k, v in placed["train"]["language"].value_counts().items()),
            "test_by_language": ", ".join(f"{k} {v}" for k, v in test["language"].value_counts().items()),
            "blend": f"{blend.get('scheme', '?')} over {blend.get('backbones', '?')}",
            "folds": folds, "families": len(FAMILIES)}
    result = {"info": info, "scores": scores.to_dict(orient="records"), "gains": gains, "best_family": best}
    write_json(result, out / "e2e_real.json")
    text = markdown(scores, gains, info)
    if table is not None:
        write_text(text, table)
    print(text, flush=True)
    if log is not None:
        config = {"families": FAMILIES, "folds": folds, "train_questions": sizes, "train": params,
                  "base": ablate_long.BASE, "data_digest": digest}
        sub = scores.set_index("answers").loc["submission (the submit kernel's)"]
        explog.append_run(log, explog.run_row(
            config, {"submission": {k: float(v) for k, v in sub.items()},
                     "best_family": best, "gains": gains},
            {"train": info["train_by_language"], "test": info["test_by_language"]},
            run_id=f"e2e-real-{explog.config_hash(config)}-{time.strftime('%Y%m%d%H%M')}", kind=KIND,
            git_commit=info["git_commit"], backbone="e5-small-qa (grouped base) x 3 families",
            total_seconds=round(time.time() - t0, 1), train_minutes=round(minutes["train"], 1),
            submit_minutes=round(minutes["submit"], 1), precision=info["precision"], out_dir=str(out)))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m research.kaggle_sim.e2e_real", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO_ROOT / "runs" / "e2e-real"))
    ap.add_argument("--folds", type=int, default=FOLDS)
    ap.add_argument("--size", action="append", default=[], metavar="LANGUAGE=N",
                    help=f"training questions per language (default {TRAIN_QUESTIONS})")
    ap.add_argument("--test-size", action="append", default=[], metavar="LANGUAGE=N",
                    help="score only a sample of the held-out questions (a trial of the path; default: all 435)")
    ap.add_argument("--data-dir", type=Path, default=chaii_like.DATA_DIR)
    ap.add_argument("--no-log", action="store_true", help="write no experiment-log row and no docs table (a trial)")
    a = ap.parse_args(argv)
    sizes, test_sizes = sizes_of(a.size, "--size"), sizes_of(a.test_size, "--test-size") if a.test_size else None
    trial = a.no_log or test_sizes is not None
    run(Path(a.out), a.folds, sizes, a.data_dir, None if trial else explog.default_log(), None if trial else TABLE,
        test_sizes)
    return 0


def sizes_of(pairs: list[str], flag: str) -> dict[str, int]:
    sizes = dict(TRAIN_QUESTIONS)
    for pair in pairs:
        k, _, v = pair.partition("=")
        if k not in sizes or not v.isdigit():
            raise SystemExit(f"{flag} {pair!r}: expected LANGUAGE=N with LANGUAGE in {list(sizes)}")
        sizes[k] = int(v)
    return sizes


if __name__ == "__main__":
    sys.exit(main())
