"""Write and check `submission.csv` so that Kaggle cannot reject it.

    python -m src.blend.submission check submission.csv --test input/test.csv
"""
from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import pandas as pd

from src.common.io import write_csv
from src.data.load import read_utf8

COLUMNS = ["id", "PredictionString"]
LEAKED_NAN = {"nan", "NaN", "None"}  # what str() of a missing value writes into a CSV


class SubmissionError(ValueError):
    """The submission would be rejected or scored wrongly; the message names the row and the reason."""


def check_submission(sub: pd.DataFrame, test_ids, name: str = "submission") -> None:
    """Columns `id,PredictionString`, exactly the test ids once each, no NaN, answers on a single line."""
    if list(sub.columns) != COLUMNS:
        raise SubmissionError(f"{name}: columns are {list(sub.columns)}, expected exactly {COLUMNS}")
    test_ids = list(test_ids)
    for i, (rid, pred) in enumerate(zip(sub["id"], sub["PredictionString"], strict=True)):
        where = f"{name}: row {i + 1} (id {rid!r})"
        if pd.isna(rid) or str(rid).strip() == "":
            raise SubmissionError(f"{name}: row {i + 1}: empty id")
        if pd.isna(pred) or str(pred) in LEAKED_NAN:
            raise SubmissionError(f"{where}: PredictionString is NaN ({pred!r}); write an empty string instead")
        if "\n" in str(pred) or "\r" in str(pred):
            raise SubmissionError(f"{where}: PredictionString spans several lines")
    dup = sub["id"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().argmax())
        raise SubmissionError(f"{name}: row {i + 1}: id {sub['id'].iloc[i]!r} appears more than once")
    extra = [(i, x) for i, x in enumerate(sub["id"]) if x not in set(test_ids)]
    if extra:
        raise SubmissionError(f"{name}: row {extra[0][0] + 1}: id {extra[0][1]!r} is not in the test set")
    missing = sorted(set(test_ids) - set(sub["id"]))
    if missing:
        raise SubmissionError(f"{name}: {len(missing)} test id(s) missing, e.g. {missing[:3]}")


def make_submission(test: pd.DataFrame, answers: dict[str, str]) -> pd.DataFrame:
    """One row per test id in test order; answers flattened to one line."""
    preds = [" ".join(str(answers.get(i, "")).split()) for i in test["id"]]
    return pd.DataFrame({"id": test["id"].tolist(), "PredictionString": preds})


def write_submission(sub: pd.DataFrame, test_ids, path: str | os.PathLike) -> Path:
    """Check, then write atomically: a failed check leaves any previous file untouched."""
    check_submission(sub, test_ids, name=str(path))
    return write_csv(sub, path)


def read_submission(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(read_utf8(path)), dtype=str, keep_default_na=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.blend.submission", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="check a submission file against the test ids")
    c.add_argument("file")
    c.add_argument("--test", required=True, help="the competition test.csv")
    args = ap.parse_args(argv)
    test = pd.read_csv(io.StringIO(read_utf8(args.test)), dtype=str, keep_default_na=False)
    sub = read_submission(args.file)  # an empty field is an empty answer; a literal "nan" is caught
    try:
        check_submission(sub, test["id"], name=args.file)
    except SubmissionError as e:
        print(f"INVALID: {e}", file=sys.stderr)
        return 1
    print(f"OK: {args.file}: {len(sub)} rows, every test id once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
