"""The winner's CSV files -> the validated frame.

His notebooks (kldarek/chaii) read three CSV files with `pd.read_csv` (README, "Reproduction instructions"):
- `tydiqa_train.csv(.zip)`: output of his Kaggle kernel thedrcat/tydi-qa-download, TyDi QA primary-task questions
  beside their whole Wikipedia article; columns id, context, question, answer_text, answer_start, language
  (XLMR_pretraining68 cell 9's output); he keeps bengali, telugu and english ("tydi beteen"), 11,650 rows;
- `nq_small.csv(.zip)`: his Kaggle data set thedrcat/nqsmall, Natural Questions as whole documents; columns answer,
  context, id, question, answer_start, p0, p1, alen, `answer` renamed to answer_text (cell 10 and its output:
  10,658 rows);
- `chaii-mlqa-xquad-5folds.csv`: the data set zacchaeus/chaiimlqaxquad, chaii train + MLQA-hi + XQuAD-hi in chaii's
  columns plus `src` (chaii / mlqa / xquad) and `fold`; he splits it on `src` (cell 11: `hindi` = src != chaii,
  `chaii` = src == chaii, its 5-fold `fold` dropped for his own 3-fold split).

Every row is one question with one answer (`convert_answers`, cell 5) whose `answer_start` is a character offset
into `context`. These loaders check what his code took on trust: the columns are there, every answer is non-empty
and sits at its offset (an offset that is a UTF-8 byte offset is named as such). Errors name the file, the row (from
1, header not counted) and the field; `on_error="drop"` drops bad rows instead and reports them (`df.attrs`).
"""
from __future__ import annotations

import gzip
import io
import os
import zipfile
from pathlib import Path

import pandas as pd

from src.data.load import (
    ALL_LANGUAGES,
    CHAII_LANGUAGES,
    FRAME_COLUMNS,
    DataError,
    _int_column,
    context_title,
    decode_utf8,
    validate_frame,
)

TYDI_CSV_COLUMNS = ["id", "context", "question", "answer_text", "answer_start", "language"]
TYDI_BETEEN = ("bengali", "telugu", "english")   # his "tydi beteen" filter (XLMR_pretraining68 cell 9)
NQ_CSV_COLUMNS = ["id", "context", "question", "answer", "answer_start"]   # + p0, p1, alen (cell 10's output)
MERGED_COLUMNS = ["context", "question", "answer_text", "answer_start", "language", "src", "fold"]
MERGED_SOURCES = ("chaii", "mlqa", "xquad")      # the `src` values (Zacchaeus00/chaii-4th-place-solution utils.py)
MERGED_PARTS = {"all": MERGED_SOURCES, "chaii": ("chaii",), "external": ("mlqa", "xquad")}


def read_csv_file(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV file, or the one CSV inside a `.zip` / `.gz` (his notebooks read `tydiqa_train.csv.zip`), every
    column as a string: an answer like "NA" stays "NA", not NaN."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise DataError(path, f"a zipped CSV must hold exactly one file, this one holds {names}")
            raw = z.read(names[0])
    elif path.suffix == ".gz":
        raw = gzip.decompress(path.read_bytes())
    else:
        raw = path.read_bytes()
    try:
        return pd.read_csv(io.StringIO(decode_utf8(raw, path)), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as e:
        raise DataError(path, f"not a readable CSV: {e}") from None


def require_columns(df: pd.DataFrame, path, columns: list[str], layout: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; found {list(df.columns)}; {layout} has {columns}")


def answer_problems(context: pd.Series, answer: pd.Series, start: pd.Series) -> list[tuple[int, str, str]]:
    """Rows without an answer, and rows whose `answer_start` is a UTF-8 byte offset (it points at the answer in the
    context's bytes, not its characters): what `validate_frame` cannot tell from a plain bad offset."""
    problems = []
    for i, (ctx, ans, s) in enumerate(zip(context, answer, start, strict=True)):
        if not ans.strip():
            problems.append((i, "answer_text", "empty answer: every row needs one (one answer per question)"))
        elif s >= 0 and ctx[s:s + len(ans)] != ans:
            raw, b = ctx.encode("utf-8"), ans.encode("utf-8")
            if raw[s:s + len(b)] == b:
                char = len(raw[:s].decode("utf-8", errors="ignore"))
                problems.append((i, "answer_start", f"answer_start {s} is a UTF-8 byte offset (the answer starts at "
                                                    f"character {char}): convert byte offsets to characters"))
    return problems


def qa_frame(df: pd.DataFrame, path, source: pd.Series | str, answer_column: str, languages, on_error: str,
             language: pd.Series | str | None = None, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """The frame (FRAME_COLUMNS, then the `extra` columns of `df`) of a CSV in chaii's columns, validated; `title`
    is the context's md5 (these files carry no titles: one context is one article)."""
    if on_error not in ("raise", "drop"):
        raise ValueError(f"on_error must be 'raise' or 'drop', got {on_error!r}")
    rows = df.index.to_numpy() + 1   # `df` keeps the file's row index (read_csv's): errors name the file's rows
    df = df.reset_index(drop=True)
    out = pd.DataFrame({
        "id": df["id"], "context": df["context"], "question": df["question"], "answer_text": df[answer_column],
        "language": df["language"] if language is None else language,
        "source": source if isinstance(source, str) else source.to_numpy()})
    out["answer_start"], known = _int_column(df)
    known += answer_problems(out["context"], out["answer_text"], out["answer_start"])
    out["title"] = out["context"].map(context_title)
    out["answers"] = [[a] for a in out["answer_text"]]
    for c in extra:
        out[c] = df[c]
    out = validate_frame(out[FRAME_COLUMNS + list(extra)], path, languages=languages, answers=True,
                         on_error=on_error, known=sorted(known), row_numbers=rows)
    if out.attrs.get("n_dropped"):
        print(f"{path}: dropped {out.attrs['n_dropped']} of {len(df)} rows (on_error='drop'):\n  "
              + "\n  ".join(out.attrs["dropped"][:20]), flush=True)
    return out


def load_tydiqa_csv(path: str | os.PathLike, languages=TYDI_BETEEN, on_error: str = "raise",
                    **_) -> pd.DataFrame:
    """His `tydiqa_train.csv`: the rows of `languages` (his "tydi beteen" by default; `None`: every language the
    project knows), source "tydi". Rows of other languages are left out and counted (`attrs["other_languages"]`)."""
    df = read_csv_file(path)
    require_columns(df, path, TYDI_CSV_COLUMNS, "tydiqa_train.csv (thedrcat/tydi-qa-download)")
    keep = df["language"].isin(languages or ALL_LANGUAGES)
    out = qa_frame(df[keep], path, "tydi", "answer_text", languages or ALL_LANGUAGES, on_error)
    out.attrs["other_languages"] = int((~keep).sum())
    return out


def load_nq_small_csv(path: str | os.PathLike, on_error: str = "raise", **_) -> pd.DataFrame:
    """His `nq_small.csv` (thedrcat/nqsmall): English whole-document rows, source "nq"; `answer` is the answer text
    (he renames it to answer_text, XLMR_pretraining68 cell 10)."""
    df = read_csv_file(path)
    if "answer" not in df.columns and "answer_text" in df.columns:
        df = df.rename(columns={"answer_text": "answer"})   # the same file after his rename
    require_columns(df, path, NQ_CSV_COLUMNS, "nq_small.csv (thedrcat/nqsmall)")
    return qa_frame(df, path, "nq", "answer", ("english",), on_error, language="english")


def load_chaii_mlqa_xquad(path: str | os.PathLike, part: str = "all", train_csv: str | os.PathLike | None = None,
                          on_error: str = "drop", language: str | None = None, **_) -> pd.DataFrame:
    """zacchaeus/chaiimlqaxquad's `chaii-mlqa-xquad-5folds.csv`: every row keeps its `src` (chaii / mlqa / xquad,
    also its `source`) and its 5-fold `fold`, as he read them.

    Args:
        part: "all" rows, his "chaii" rows (src == chaii) or his Hindi "external" rows (src != chaii: MLQA + XQuAD).
        train_csv: chaii's train.csv: chaii rows take their competition id from it, matched on (context, question)
            as his cell 11 merges; without it (and without an `id` column) a row's id is `<src>-<row>`.
        language: only this language's rows (hindi / tamil); None: both.
        on_error: "drop" by default, as for chaii's train.csv (`external.load_chaii`): its rows carry chaii's known
            label noise, and a bad row is reported, not fatal.
    """
    if part not in MERGED_PARTS:
        raise ValueError(f"part must be one of {sorted(MERGED_PARTS)}, got {part!r}")
    df = read_csv_file(path)
    require_columns(df, path, MERGED_COLUMNS, "chaii-mlqa-xquad-5folds.csv (zacchaeus/chaiimlqaxquad)")
    unknown = ~df["src"].isin(MERGED_SOURCES)
    if unknown.any():
        i = int(unknown.to_numpy().argmax())
        raise DataError(path, f"unknown src {df['src'].iloc[i]!r}; expected one of {list(MERGED_SOURCES)}", row=i + 1,
                        field="src")
    ids = df["id"] if "id" in df.columns else df["src"] + "-" + pd.Series(range(1, len(df) + 1), dtype=str)
    if train_csv is not None:
        ids = _chaii_ids(df, ids, path, train_csv)
    df = df.assign(id=ids)[df["src"].isin(MERGED_PARTS[part]) & (df["language"] == language if language else True)]
    return qa_frame(df, path, df["src"], "answer_text", CHAII_LANGUAGES, on_error, extra=("src", "fold"))


def _chaii_ids(df: pd.DataFrame, ids: pd.Series, path, train_csv) -> pd.Series:
    """His cell 11: `pd.merge(chaii, train[['id', 'context', 'question']], on=['context', 'question'])`."""
    train = read_csv_file(train_csv)
    require_columns(train, train_csv, ["id", "context", "question"], "chaii's train.csv")
    by_pair = dict(zip(zip(train["context"], train["question"], strict=True), train["id"], strict=True))
    ids = ids.copy()
    for i in (df["src"] == "chaii").to_numpy().nonzero()[0]:
        key = (df["context"].iat[i], df["question"].iat[i])
        if key not in by_pair:
            raise DataError(path, f"chaii row has no (context, question) match in {train_csv}", row=int(i) + 1,
                            field="question")
        ids.iat[i] = by_pair[key]
    return ids
