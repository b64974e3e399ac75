"""Write and check `submission.csv` so that Kaggle cannot reject it, and score it as the competition does.

    python -m src.blend.submission check submission.csv --test input/test.csv
    python -m src.blend.submission score submission.csv --solution runs/chaii_like/solution.csv

`score` is the Kaggle metric: word-level Jaccard (`src.infer.metric.jaccard`), the best over a question's gold
answers where the solution lists several, averaged per language and overall, each with a 95% bootstrap interval
over questions. The solution file has `id`, `answer_text`, `language` and optionally `answers`, every gold answer
as a JSON list (`research.experiments.chaii_like` writes one).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import pandas as pd

from src.common.io import write_csv
from src.data.load import DataError, read_utf8
from src.infer.metric import qa_metrics

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
        more = _more(sorted(set(sub["id"][dup])), "ids appear more than once")
        raise SubmissionError(f"{name}: row {i + 1}: id {sub['id'].iloc[i]!r} appears more than once{more}")
    known = set(test_ids)
    extra = [(i, x) for i, x in enumerate(sub["id"]) if x not in known]
    if extra:
        more = _more([x for _, x in extra], "ids are not in the test set")
        raise SubmissionError(f"{name}: row {extra[0][0] + 1}: id {extra[0][1]!r} is not in the test set{more}")
    missing = sorted(known - set(sub["id"]))
    if missing:
        raise SubmissionError(f"{name}: {len(missing)} test id(s) missing, e.g. {missing[:10]}")


def _more(ids: list, what: str, show: int = 10) -> str:
    """" (N <what>: [the first ids])" where more than one id offends, so the message names them all up to `show`."""
    return f" ({len(ids)} {what}: {ids[:show]}{' ...' if len(ids) > show else ''})" if len(ids) > 1 else ""


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


SOLUTION_COLUMNS = ["id", "answer_text", "language"]   # and optionally `answers`: every gold as a JSON list


def read_solution(path: str | os.PathLike) -> pd.DataFrame:
    """A solution file as a frame whose `answers` are lists of gold texts (the one `answer_text` where the file
    has no `answers` column); read as strings, so an answer "NA" or "" stays a string."""
    df = pd.read_csv(io.StringIO(read_utf8(path)), dtype=str, keep_default_na=False)
    missing = [c for c in SOLUTION_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; found {list(df.columns)}; expected {SOLUTION_COLUMNS} "
                              "and optionally 'answers'")
    if "answers" not in df.columns:
        return df.assign(answers=[[a] for a in df["answer_text"]])
    golds = []
    for i, (qid, raw) in enumerate(zip(df["id"], df["answers"], strict=True)):
        try:
            g = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataError(path, f"id {qid!r}: answers is not JSON ({e.msg}): {raw[:80]!r}", row=i + 1,
                            field="answers") from None
        if not isinstance(g, list) or not g or not all(isinstance(x, str) for x in g):
            raise DataError(path, f"id {qid!r}: answers must be a non-empty JSON list of strings, got {raw[:80]!r}",
                            row=i + 1, field="answers")
        golds.append(g)
    return df.assign(answers=golds)


def score_submission(sub: pd.DataFrame, solution: pd.DataFrame, name: str = "submission", n_boot: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """The competition's score of a checked submission (`check_submission` against the solution's ids): one row per
    language and `all`, with the number of questions, the mean Jaccard (best over each question's golds) and its
    95% bootstrap interval over questions (`src.infer.metric.qa_metrics`, seeded)."""
    check_submission(sub, solution["id"], name=name)
    answers = dict(zip(sub["id"], sub["PredictionString"], strict=True))
    scored = solution.assign(prediction=solution["id"].map(answers))
    m = qa_metrics(scored, by="language", interval=True, n_boot=n_boot, seed=seed)
    counts = scored["language"].value_counts().sort_index()
    groups = [*counts.index, "all"]
    return pd.DataFrame({"questions": [*counts.astype(int), len(scored)],
                         "jaccard": [m[f"jaccard_{g}"] for g in groups],
                         "lo": [m[f"jaccard_{g}_lo"] for g in groups],
                         "hi": [m[f"jaccard_{g}_hi"] for g in groups]}, index=pd.Index(groups, name="language"))


def score_table(scores: pd.DataFrame) -> str:
    lines = ["| language | questions | Jaccard | 95% interval |", "|---|---|---|---|"]
    lines += [f"| {r.Index} | {r.questions} | {r.jaccard:.4f} | [{r.lo:.4f}, {r.hi:.4f}] |"
              for r in scores.itertuples()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.blend.submission", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="check a submission file against the test ids")
    c.add_argument("file")
    c.add_argument("--test", required=True, help="the competition test.csv")
    sc = sub.add_parser("score", help="score a submission against a solution file (the Kaggle metric)")
    sc.add_argument("file")
    sc.add_argument("--solution", required=True, help="id, answer_text, language[, answers as a JSON list]")
    sc.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    sc.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.cmd == "score":
        try:
            scores = score_submission(read_submission(args.file), read_solution(args.solution), name=args.file,
                                      n_boot=args.n_boot, seed=args.seed)
        except (SubmissionError, DataError) as e:
            print(f"INVALID: {e}", file=sys.stderr)
            return 1
        print(f"{args.file} against {args.solution}: word-level Jaccard, best over the golds\n{score_table(scores)}")
        return 0
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
