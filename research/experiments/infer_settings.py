"""Inference settings chosen on a Hindi dev split, then applied once to the evaluation sets (`make infer-settings`).

The ablation fine-tunes on 600 of the 925 XQuAD-hi training-article questions (`research.experiments.ablate.SIZES`); the
other 325 are a dev split none of its runs trained on (their articles are training articles, never evaluated ones). Each
plain seed's saved model scores the dev split at each window length/stride (the model runs again), and each
post-processing setting (longest answer, answer rules) on those logits. The setting with the best mean dev Jaccard over
the seeds is then scored once on every evaluation set, beside the training setting: choosing on the evaluation sets
themselves would report a maximum over settings, not a score.

    python -m research.experiments.infer_settings  # grid on dev, then the chosen setting on the evaluation sets
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path

import pandas as pd

from research.experiments import ablate
from src.common.io import write_text
from src.common.paths import SHARED_DIR
from src.infer.answer_rules import AnswerRules
from src.train import explog

WINDOWS = ((256, 96), (384, 128), (512, 128))          # (max_length, doc_stride); 256/96 is what training used
ANSWER_LENGTHS = (30, 60)                               # tokens; 30 is HF utils_qa's default
RULES = {"none": AnswerRules(), "whole_numbers": AnswerRules(whole_numbers=True),
         "abbreviations": AnswerRules(keep_abbreviations=True)}


@dataclasses.dataclass(frozen=True)
class Setting:
    max_length: int
    doc_stride: int
    max_answer_length: int
    rules: str

    def label(self) -> str:
        return f"{self.max_length}/{self.doc_stride}, answer <= {self.max_answer_length}, rules {self.rules}"


TRAINED = Setting(256, 96, 30, "none")


def dev_split(data_dir: Path) -> pd.DataFrame:
    """The XQuAD-hi training-article questions that no ablation run trained on."""
    trains, _ = ablate.load_data(data_dir)
    used = ablate.frames_for(ablate.variant_recipe("plain"), trains)
    used_ids = set(pd.concat(used.values())["id"])
    dev = trains["xquad_hi_train"]
    return dev[~dev["id"].isin(used_ids)].reset_index(drop=True).assign(eval_set="dev")


def plain_runs(log: Path) -> list[dict]:
    """The plain seeds of the current grid, in seed order."""
    return sorted((r for r in ablate.ablation_rows(log) if r["variant"] == "plain"), key=lambda r: r["config"]["seed"])


def per_question(model_dir: Path, train_cfg: dict, frame: pd.DataFrame, settings: list[Setting]) -> pd.DataFrame:
    """Per-question Jaccard of one model under each setting (column = setting label); one model pass per window
    setting (in the precision it trained in), post-processing settings reuse its logits."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from src.infer.metric import score_rows
    from src.infer.postprocess import predict_texts
    from src.infer.predict import predict_windows
    from src.train.fold import TrainConfig, check_unique_ids
    from src.train.trainer import eval_features

    check_unique_ids(frame)   # windows find their example by id
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir)
    out = {}
    window = lambda s: (s.max_length, s.doc_stride)  # noqa: E731
    for (length, stride), group in itertools.groupby(sorted(settings, key=window), key=window):
        cfg = TrainConfig(**dict(train_cfg, max_length=length, doc_stride=stride), experiment_log="")
        logits = predict_windows(model, eval_features(frame, tokenizer, cfg), cfg.eval_batch_size,
                                 pad_token_id=tokenizer.pad_token_id, precision="bf16" if cfg.bf16 else "auto")
        for s in group:
            answers = predict_texts(frame, logits, cfg.n_best_size, s.max_answer_length, RULES[s.rules])
            out[s.label()] = score_rows(frame.assign(prediction=frame["id"].map(answers)))["jaccard"].to_numpy()
    return pd.DataFrame(out, index=frame["id"])


def grid_table(per_seed: list[pd.DataFrame]) -> pd.DataFrame:
    """Each setting's dev Jaccard per seed, their mean, and the paired gain over the training setting (95%
    bootstrap of the per-question differences: questions resampled together)."""
    from src.infer.metric import bootstrap_ci

    mean_q = sum(per_seed) / len(per_seed)           # per question, averaged over the seeds
    rows = []
    for label in per_seed[0].columns:
        diff = (mean_q[label] - mean_q[TRAINED.label()]).to_numpy()
        lo, hi = bootstrap_ci(diff)
        rows.append({"setting": label,
                     **{f"seed {i}": round(float(d[label].mean()), 4) for i, d in enumerate(per_seed)},
                     "mean": round(float(mean_q[label].mean()), 4), "gain": round(float(diff.mean()), 4),
                     "gain 95%": f"[{lo:+.3f}, {hi:+.3f}]"})
    # stable: on a tie the earlier setting stays ahead, and the training setting comes first
    return pd.DataFrame(rows).sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)


def evaluation_table(runs: list[dict], chosen: Setting, evals: dict[str, pd.DataFrame], out_root: Path) -> pd.DataFrame:
    """The training setting and the chosen one on every evaluation set, per seed and as mean ± sd."""
    from research.experiments.evalsets import combined
    valid = combined(evals)
    settings = [TRAINED] if chosen == TRAINED else [TRAINED, chosen]
    rows = []
    for r in runs:
        q = per_question(out_root / r["run_id"] / "model", r["config"]["train"], valid, settings)
        for s in settings:
            sets = q[s.label()].groupby(valid["eval_set"].to_numpy()).mean()
            rows.append({"setting": s.label(), "seed": r["config"]["seed"], **sets.round(4).to_dict()})
    return pd.DataFrame(rows)


def frame_markdown(df: pd.DataFrame) -> str:
    """A frame as a GitHub table (pandas' to_markdown needs tabulate, not a dependency here)."""
    rows = [list(df.columns), ["---"] * len(df.columns), *df.astype(str).to_numpy().tolist()]
    return "\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows)


def markdown(grid: pd.DataFrame, evaluation: pd.DataFrame, n_dev: int, commit: str) -> str:
    names = [n for n in ablate.EVAL_SETS if n in evaluation]
    summary = evaluation.groupby("setting", sort=False)[names].agg(["mean", "std"])
    short = commit[:7] + ("+dirty" if commit.endswith("+dirty") else "")
    lines = [f"# Inference settings for plain (`make infer-settings`, commit `{short}`)", "",
             f"Chosen on the dev split ({n_dev} XQuAD-hi training-article questions no run trained on), mean over "
             "plain's seeds; gain = paired mean per-question difference from the training setting, 95% bootstrap.",
             "", frame_markdown(grid), "", "## The chosen setting on the evaluation sets", "",
             "| setting | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for setting, row in summary.iterrows():
        lines.append(f"| {setting} | " + " | ".join(f"{row[(n, 'mean')]:.3f} ± {row[(n, 'std')]:.3f}"
                                                      for n in names) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log", type=Path, default=explog.REPO_LOG)
    p.add_argument("--out-root", type=Path, default=ablate.OUT_ROOT)
    p.add_argument("--data-dir", type=Path, default=SHARED_DIR / "data")
    p.add_argument("--report", type=Path, default=Path("docs/infer_settings.md"))
    a = p.parse_args(argv)
    runs = plain_runs(a.log)
    missing = [r["run_id"] for r in runs if not (a.out_root / r["run_id"] / "model" / "config.json").exists()]
    if not runs or missing:
        raise SystemExit(f"needs plain's saved models under {a.out_root} (missing: {missing or 'all'}): `make ablate`")
    dev = dev_split(a.data_dir)
    settings = [Setting(w, s, m, r) for (w, s), m, r in itertools.product(WINDOWS, ANSWER_LENGTHS, RULES)]
    assert settings[0] == TRAINED   # first: a tie keeps what training used
    per_seed = []
    for r in runs:
        print(f"dev grid: {r['run_id']} ...", flush=True)
        per_seed.append(per_question(a.out_root / r["run_id"] / "model", r["config"]["train"], dev, settings))
    grid = grid_table(per_seed)
    print(grid.to_string(index=False), flush=True)
    best = grid.iloc[0]["setting"]
    chosen = next(s for s in settings if s.label() == best)
    print(f"chosen on dev: {best}; scoring the evaluation sets ...", flush=True)
    _, evals = ablate.load_data(a.data_dir)
    evaluation = evaluation_table(runs, chosen, evals, a.out_root)
    text = markdown(grid, evaluation, len(dev), explog.git_commit())
    write_text(text, a.report)
    print(text)


if __name__ == "__main__":
    main()
