"""How many of a run's out-of-fold answers cut a letter, and their Jaccard with and without whole letters.

`AnswerRules(whole_letters=True)` (`src.infer.graphemes`) widens an answer that starts or ends inside a letter
(a vowel sign or virama left behind or alone) to whole letters. It stays off until this measures it on a real run:

    python -m research.experiments.whole_letters RUN_DIR                      # an ablation or base-qa run folder
    python -m research.experiments.whole_letters RUN_DIR --examples train.csv # a fold run of chaii-format data

A run folder holds `oof_logits.npz` (per-window logits) and `oof.csv` (its answers); the answers are found again
from the logits with the run's `n_best_size` / `max_answer_length` (its `model/chaii_config.json`, else 20 / 30),
checked against oof.csv's, then scored as they are and widened. The examples (contexts and golds) are by default
the evaluation sets of `research.experiments.evalsets` in both shapes, ids "<set>/<id>" as `combined` names them;
`--examples` takes a CSV with id, context, answer_text, language (and optionally `answers`, a JSON list).
"""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pandas as pd

from src.data.load import read_utf8
from src.infer.graphemes import letters_report
from src.infer.postprocess import best_spans
from src.infer.predict import MODEL_CONFIG, WindowLogits
from src.infer.span_text import span_texts


def report(examples: pd.DataFrame, logits: WindowLogits, n_best_size: int = 20, max_answer_length: int = 30,
           oof: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int]:
    """(the `letters_report` per evaluation set, or per language where the examples have no `eval_set`; how many
    answers differ from `oof`'s `prediction`: 0 when the spans are the run's own)."""
    examples = examples[examples["id"].isin(set(logits.example_id.tolist()))].reset_index(drop=True)
    if examples.empty:
        raise SystemExit("no example id matches a window of the logits: pass the run's own examples (--examples)")
    spans = best_spans(examples["id"].tolist(), logits, n_best_size, max_answer_length)
    differ = 0
    if oof is not None:
        mine = dict(zip(examples["id"], span_texts(examples["context"], spans), strict=True))
        theirs = oof.set_index("id")["prediction"]
        differ = sum(mine[i] != theirs[i] for i in theirs.index if i in mine)
    by = "eval_set" if "eval_set" in examples else "language"
    return letters_report(examples, spans, by=by), differ


def default_examples() -> pd.DataFrame:
    from research.experiments import evalsets
    return evalsets.combined({**evalsets.eval_sets(), **evalsets.eval_sets(shape="article")})


def read_examples(path: Path) -> pd.DataFrame:
    df = pd.read_csv(io.StringIO(read_utf8(path)), dtype=str, keep_default_na=False)
    missing = [c for c in ("id", "context", "answer_text", "language") if c not in df]
    if missing:
        raise SystemExit(f"{path}: missing column(s) {missing}; expected id, context, answer_text, language")
    return df.assign(answers=df["answers"].map(json.loads)) if "answers" in df else df


def settings(run_dir: Path) -> tuple[int, int]:
    """The run's n_best_size and max_answer_length (saved beside its model), else the training defaults."""
    path = run_dir / "model" / MODEL_CONFIG
    saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return int(saved.get("n_best_size", 20)), int(saved.get("max_answer_length", 30))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m research.experiments.whole_letters",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="a run folder with oof_logits.npz (and oof.csv)")
    ap.add_argument("--examples", type=Path, default=None, help="CSV of the run's examples (default: evalsets)")
    ap.add_argument("--logits", default="oof_logits.npz", help="the logits file inside the run folder")
    a = ap.parse_args(argv)
    logits = WindowLogits.load(a.run_dir / a.logits)
    examples = read_examples(a.examples) if a.examples else default_examples()
    oof_path = a.run_dir / "oof.csv"
    oof = pd.read_csv(oof_path, dtype=str, keep_default_na=False) if oof_path.exists() else None
    n_best, max_len = settings(a.run_dir)
    table, differ = report(examples, logits, n_best, max_len, oof)
    print(f"{a.run_dir}: answers from {a.logits} (n_best_size {n_best}, max_answer_length {max_len})"
          + ("" if oof is None else f"; {differ} differ from oof.csv's predictions"))
    print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    if differ:
        print("note: answers differ from oof.csv: other post-processing settings, or other examples than the run's")


if __name__ == "__main__":
    main()
