"""Load chaii CSVs into one validated frame; every error names the file, the row and the field.

Frame columns: id, context, question, answer_text, answer_start, language, source (`answer_*` absent for test).
External loaders (SQuAD, TyDi, XQuAD, NQ) produce the same frame so that every later step is source-agnostic.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

TRAIN_COLUMNS = ["id", "context", "question", "answer_text", "answer_start", "language"]
# The frame every external loader returns: `title` groups an article's questions (split by article), `answers` lists
# every gold text (evaluation scores the best over them).
FRAME_COLUMNS = TRAIN_COLUMNS + ["source", "title", "answers"]
TEST_COLUMNS = ["id", "context", "question", "language"]
CHAII_LANGUAGES = ("hindi", "tamil")
# Languages of the external data the winners used (TyDi bn/te, SQuAD/NQ en, MLQA/XQuAD hi).
ALL_LANGUAGES = CHAII_LANGUAGES + ("bengali", "telugu", "english", "marathi")


class DataError(ValueError):
    """Bad input data; the message says where (file, row, field) and what is wrong."""

    def __init__(self, file: str | os.PathLike, message: str, row: int | None = None, field: str | None = None):
        where = str(file)
        if row is not None:
            where += f": row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
        self.file, self.row, self.field = str(file), row, field


def read_utf8(path: str | os.PathLike) -> str:
    """Read a file as strict UTF-8 (a BOM is dropped); a bad byte is reported with its line."""
    return decode_utf8(Path(path).read_bytes(), path)


def decode_utf8(raw: bytes, path: str | os.PathLike) -> str:
    """`raw` (the bytes of `path`) as strict UTF-8 (a BOM is dropped); a bad byte is reported with its line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(path, f"not UTF-8: byte 0x{raw[e.start]:02x} at line {line}, byte {e.start}; "
                              "re-save the file as UTF-8") from None


def load_chaii_csv(path: str | os.PathLike, split: str = "train", on_error: str = "raise") -> pd.DataFrame:
    """Read a chaii `train.csv` (split='train') or `test.csv` (split='test') into a validated frame.

    `on_error="drop"` (training data only: the real train.csv has known label noise) skips every bad row, prints
    how many and which ids, and keeps the reasons in `df.attrs["dropped"]` (ids in `attrs["dropped_ids"]`). Test
    data is never dropped: a missing test row would be a missing prediction.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if on_error not in ("raise", "drop"):
        raise ValueError(f"on_error must be 'raise' or 'drop', got {on_error!r}")
    if split == "test" and on_error == "drop":
        raise ValueError("test data is never dropped (each test row needs a prediction): load it with on_error='raise'")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"chaii {split} file not found: {path}")
    text = read_utf8(path)
    # keep_default_na=False: an answer like "NA" or an empty string must stay a string, not NaN.
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    columns = TRAIN_COLUMNS if split == "train" else TEST_COLUMNS
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; found {list(df.columns)}; expected {columns}")
    df = df[columns].copy()
    df["source"] = "chaii"
    known = []
    if split == "train":
        df["answer_start"], known = _int_column(df)
    out = validate_frame(df, path, languages=CHAII_LANGUAGES, answers=split == "train", on_error=on_error,
                         known=known)
    if out.attrs.get("n_dropped"):
        print(f"{path}: dropped {out.attrs['n_dropped']} of {len(df)} rows (on_error='drop'), ids "
              f"{out.attrs['dropped_ids']}:\n  " + "\n  ".join(out.attrs["dropped"]), flush=True)
    return out


def _int_column(df: pd.DataFrame, field: str = "answer_start") -> tuple[pd.Series, list[tuple[int, str, str]]]:
    """The column as int64 (-1 where it is not an integer) and a problem per such row."""
    out = pd.to_numeric(df[field].str.strip(), errors="coerce")
    bad = (out.isna() | (out % 1 != 0)).to_numpy()
    problems = [(int(i), field, f"{df[field].iloc[i]!r} is not an integer character offset")
                for i in np.flatnonzero(bad)]
    return out.where(~bad, -1).astype("int64"), problems


def context_title(context: str) -> str:
    """An article key for rows without a title: the context's md5 (not hash(): stable across processes), so that
    questions on one article share it and a split by title keeps them together."""
    return hashlib.md5(context.encode()).hexdigest()[:12]


def frame_problems(df: pd.DataFrame, languages=ALL_LANGUAGES, answers: bool = True) -> list[tuple[int, str, str]]:
    """Every problem of a QA frame as (row position, field, message), in the order `validate_frame` checks them."""
    problems = []
    empty_any = np.zeros(len(df), dtype=bool)
    for field in ("id", "context", "question"):
        empty = (df[field].isna() | (df[field].astype(str).str.strip() == "")).to_numpy()
        problems += [(int(i), field, f"empty {field}") for i in np.flatnonzero(empty)]
        empty_any |= empty
    ids = df["id"].to_numpy()
    first_row: dict = {}
    for i in np.flatnonzero(~empty_any):  # a row already bad for another reason does not make a later one a duplicate
        if ids[i] in first_row:
            problems.append((int(i), "id", f"duplicate id {ids[i]!r} (first seen at row {first_row[ids[i]] + 1})"))
        else:
            first_row[ids[i]] = int(i)
    unknown = ~df["language"].isin(languages).to_numpy()
    problems += [(int(i), "language", f"unknown language {df['language'].iloc[i]!r}; expected one of {list(languages)}")
                 for i in np.flatnonzero(unknown)]
    if answers:
        for i, (ctx, ans, start) in enumerate(zip(df["context"], df["answer_text"], df["answer_start"], strict=True)):
            if ans == "":
                continue  # a no-answer row (SQuAD v2 style): nothing to point at
            if not 0 <= start <= len(ctx) - len(ans) or ctx[start:start + len(ans)] != ans:
                found = ctx.find(ans)
                hint = f"; the answer occurs at {found}" if found >= 0 else "; the answer does not occur in the context"
                problems.append((i, "answer_start",
                                 f"answer_start {start} does not point at answer_text {ans!r}{hint}"))
    return problems


def validate_frame(df: pd.DataFrame, file: str | os.PathLike, languages=ALL_LANGUAGES, answers: bool = True,
                   on_error: str = "raise", known: list[tuple[int, str, str]] = (),
                   row_numbers=None) -> pd.DataFrame:
    """Check a QA frame row by row; rows are numbered from 1 as in the file (header not counted), or as
    `row_numbers` says (each frame row's number in the file, when the caller left some of the file's rows out).

    `on_error="raise"`: a `DataError` for the first problem (`known` ones, found by the caller, come first);
    `"drop"`: the frame without the bad rows, their count, reasons and ids in `attrs` (n_dropped, dropped,
    dropped_ids).
    """
    def row(i: int) -> int:
        return i + 1 if row_numbers is None else int(row_numbers[i])

    problems = [*known, *frame_problems(df, languages, answers)]
    if problems and on_error == "raise":
        i, field, message = problems[0]
        raise DataError(file, message, row=row(i), field=field)
    reasons: dict[int, str] = {}
    for i, field, message in problems:
        reasons.setdefault(i, f"row {row(i)}, field '{field}' (id {df['id'].iloc[i]!r}): {message}")
    bad = sorted(reasons)
    out = df.drop(df.index[bad]).reset_index(drop=True)
    out.attrs.update(n_dropped=len(bad), dropped=[reasons[i] for i in bad],
                     dropped_ids=[df["id"].iloc[i] for i in bad], file=str(file))
    return out
