"""Load chaii CSVs into one validated frame; every error names the file, the row and the field.

Frame columns: id, context, question, answer_text, answer_start, language, source (`answer_*` absent for test).
External loaders (SQuAD, TyDi, XQuAD, NQ) produce the same frame so that every later step is source-agnostic.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

TRAIN_COLUMNS = ["id", "context", "question", "answer_text", "answer_start", "language"]
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
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(path, f"not UTF-8: byte 0x{raw[e.start]:02x} at line {line}, byte {e.start}; "
                              "re-save the file as UTF-8") from None


def load_chaii_csv(path: str | os.PathLike, split: str = "train") -> pd.DataFrame:
    """Read a chaii `train.csv` (split='train') or `test.csv` (split='test') into a validated frame."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
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
    if split == "train":
        df["answer_start"] = _int_column(df, path)
    return validate_frame(df, path, languages=CHAII_LANGUAGES, answers=split == "train")


def _int_column(df: pd.DataFrame, path: Path, field: str = "answer_start") -> pd.Series:
    out = pd.to_numeric(df[field].str.strip(), errors="coerce")
    bad = out.isna() | (out % 1 != 0)
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise DataError(path, f"{df[field].iloc[i]!r} is not an integer character offset", row=i + 1, field=field)
    return out.astype("int64")


def validate_frame(df: pd.DataFrame, file: str | os.PathLike, languages=ALL_LANGUAGES, answers: bool = True) -> pd.DataFrame:
    """Check a QA frame row by row; rows are numbered from 1 as in the file (header not counted)."""
    for field in ("id", "context", "question"):
        empty = df[field].isna() | (df[field].astype(str).str.strip() == "")
        if empty.any():
            i = int(empty.to_numpy().argmax())
            raise DataError(file, f"empty {field}", row=i + 1, field=field)
    dup = df["id"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().argmax())
        first = int((df["id"] == df["id"].iloc[i]).to_numpy().argmax())
        raise DataError(file, f"duplicate id {df['id'].iloc[i]!r} (first seen at row {first + 1})", row=i + 1, field="id")
    unknown = ~df["language"].isin(languages)
    if unknown.any():
        i = int(unknown.to_numpy().argmax())
        raise DataError(file, f"unknown language {df['language'].iloc[i]!r}; expected one of {list(languages)}",
                        row=i + 1, field="language")
    if answers:
        for i, (ctx, ans, start) in enumerate(zip(df["context"], df["answer_text"], df["answer_start"])):
            if ans == "":
                continue  # a no-answer row (SQuAD v2 style): nothing to point at
            if not 0 <= start <= len(ctx) - len(ans) or ctx[start:start + len(ans)] != ans:
                found = ctx.find(ans)
                hint = f"; the answer occurs at {found}" if found >= 0 else "; the answer does not occur in the context"
                raise DataError(file, f"answer_start {start} does not point at answer_text {ans!r}{hint}",
                                row=i + 1, field="answer_start")
    return df.reset_index(drop=True)
