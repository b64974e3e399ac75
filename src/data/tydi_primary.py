"""TyDi QA primary task -> whole-article rows: every question beside its whole Wikipedia article.

The winner's TyDi data are the primary task's articles, not the GoldP passages: his `tydiqa_train.csv` (Kaggle kernel
thedrcat/tydi-qa-download) has one row per question with the article's full plaintext as context, Bengali, Telugu and
English kept ("tydi beteen", kldarek/chaii XLMR_pretraining68 cell 9). This module reads either layout:

- the primary-task JSON lines (`tydiqa-v1.0-train.jsonl.gz`, gzip or not): per line `example_id`, `language`,
  `question_text`, `document_title`, `document_plaintext` and `annotations[].minimal_answer.plaintext_start_byte /
  plaintext_end_byte`. Those offsets count UTF-8 **bytes** of `document_plaintext` (the TyDi baseline slices
  `text.encode("utf-8")[start:end]`, google-research-datasets/tydiqa baseline/data.py); a Bengali or Telugu letter
  is 3 bytes, so they are converted to characters here (`byte_span_to_chars`);
- his CSV (`src.data.winner_csv.load_tydiqa_csv`), whose `answer_start` is already a character offset.

Questions without a minimal answer are dropped, as his data has them dropped: his notebooks give every row one
answer (`convert_answers`, cell 5, so `prepare_train_features`' no-answer branch never runs) and his file holds
11,650 Bengali/Telugu/English questions (cell 9's output) out of the primary task's 166,916 in all languages
(huggingface/datasets datasets/tydiqa/dataset_infos.json). Yes/no answers (no span) are dropped too. Each outcome is
counted in `df.attrs["outcomes"]`.

`python -m src.data.tydi_primary tydiqa-v1.0-train.jsonl.gz --out tydiqa_train.csv` writes his CSV layout.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from src.data.load import ALL_LANGUAGES, FRAME_COLUMNS, DataError, validate_frame
from src.data.winner_csv import TYDI_BETEEN, TYDI_CSV_COLUMNS, load_tydiqa_csv

# The record's own `"language":"..."` key: inside a JSON string every quote is escaped, so this cannot match text
# of the article; it lets a line of an unwanted language be skipped without parsing its HTML (most of the file).
LANGUAGE_KEY = re.compile(rb'"language"\s*:\s*"([a-z]+)"')


def byte_span_to_chars(text: str, start_byte: int, end_byte: int, raw: bytes | None = None) -> tuple[int, str]:
    """(character offset, text) of the UTF-8 byte span [start_byte, end_byte) of `text` (`raw`: its bytes, when
    already encoded). Raises ValueError when the span is empty, outside the text or cuts a character."""
    raw = text.encode("utf-8") if raw is None else raw
    if not 0 <= start_byte < end_byte <= len(raw):
        raise ValueError(f"byte span [{start_byte}, {end_byte}) is empty or outside the document's {len(raw)} bytes")
    for b in (start_byte, end_byte):
        if b < len(raw) and raw[b] & 0xC0 == 0x80:   # a UTF-8 continuation byte: not where a character starts
            raise ValueError(f"byte offset {b} falls inside a multi-byte character")
    return len(raw[:start_byte].decode("utf-8")), raw[start_byte:end_byte].decode("utf-8")


def record_to_row(record: dict) -> tuple[dict | None, str]:
    """One primary-task record -> (row or None, outcome). The first annotation with a minimal answer is the label;
    `answers` holds every annotation's distinct minimal-answer text (the dev set has three annotators)."""
    text = record["document_plaintext"]
    raw = text.encode("utf-8")
    spans = []
    for ann in record["annotations"]:
        minimal = ann.get("minimal_answer") or {}
        start, end = minimal.get("plaintext_start_byte", -1), minimal.get("plaintext_end_byte", -1)
        if start >= 0:
            spans.append(byte_span_to_chars(text, start, end, raw))
    if not spans:
        yes_no = any(a.get("yes_no_answer", "NONE") != "NONE" for a in record["annotations"])
        return None, "yes_no" if yes_no else "no_minimal_answer"
    start, answer = spans[0]
    if not answer.strip():
        return None, "blank_minimal_answer"
    return dict(id=str(record["example_id"]), context=text, question=record["question_text"], answer_text=answer,
                answer_start=start, language=record["language"], source="tydi",
                title=record.get("document_title") or str(record["example_id"]),
                answers=list(dict.fromkeys(a for _, a in spans if a.strip()))), "kept"


def load_tydi_primary_jsonl(path: str | os.PathLike, languages=TYDI_BETEEN, on_error: str = "raise",
                            limit: int | None = None) -> pd.DataFrame:
    """The primary-task JSON lines (`.jsonl` or `.jsonl.gz`) of `languages` as the frame (FRAME_COLUMNS).

    `on_error="raise"` stops at the first bad record, naming the file, the line and the field; `"drop"` counts it
    (`attrs["outcomes"]["bad_record"]`, reasons in `attrs["dropped"]`).
    """
    if on_error not in ("raise", "drop"):
        raise ValueError(f"on_error must be 'raise' or 'drop', got {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TyDi primary-task file not found: {path}")
    wanted = set(languages or ALL_LANGUAGES)
    wanted_bytes = {lang.encode() for lang in wanted}
    rows, lines, outcomes, dropped = [], [], Counter(), []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for line_no, line in enumerate(f, start=1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            lang = LANGUAGE_KEY.search(line)
            if lang and lang.group(1) not in wanted_bytes:
                outcomes["other_language"] += 1
                continue
            try:
                row, outcome = record_to_row(json.loads(line.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as e:
                message = _bad_record(e)
                if on_error == "raise":
                    raise DataError(path, f"record on line {line_no}: {message}", row=line_no) from None
                outcomes["bad_record"] += 1
                dropped.append(f"line {line_no}: {message}")
                continue
            if row is not None and row["language"] not in wanted:
                outcome, row = "other_language", None   # a line the quick key search could not read
            outcomes[outcome] += 1
            if row is not None:
                rows.append(row)
                lines.append(line_no)
    df = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    df["answer_start"] = df["answer_start"].astype("int64")
    df = validate_frame(df, path, languages=ALL_LANGUAGES, answers=True, on_error=on_error, row_numbers=lines)
    df.attrs.update(outcomes=dict(outcomes), dropped=dropped + df.attrs.get("dropped", []), file=str(path))
    return df


def _bad_record(e: Exception) -> str:
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 (byte {e.start} of the line)"
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON ({e.msg} at column {e.colno})"
    if isinstance(e, KeyError):
        hint = (" (a Hugging Face `tydiqa` export has no example_id: use the original tydiqa-v1.0-train.jsonl.gz)"
                if e.args == ("example_id",) else "")
        return f"missing field {e}{hint}: not the TyDi primary-task layout"
    if isinstance(e, ValueError):
        return f"minimal_answer: {e}"
    return f"malformed field ({e}): not the TyDi primary-task layout"


def load_tydi_primary(path: str | os.PathLike, languages=TYDI_BETEEN, on_error: str = "raise",
                      language: str | None = None, **_) -> pd.DataFrame:
    """The recipe's `kind: tydi_primary`: primary-task JSON lines (`.jsonl`, `.jsonl.gz`) or his CSV (`.csv`,
    `.csv.zip`), whole articles of `languages` (his bn/te/en by default; a recipe source's `language`: that one)."""
    languages = (language,) if language else languages
    name = Path(path).name
    if name.endswith((".csv", ".csv.zip", ".csv.gz")):
        return load_tydiqa_csv(path, languages=languages, on_error=on_error)
    if name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".json")):
        return load_tydi_primary_jsonl(path, languages=languages, on_error=on_error)
    raise DataError(path, "a tydi_primary source is the primary-task JSON lines (.jsonl, .jsonl.gz) or his "
                          "tydiqa_train.csv (.csv, .csv.zip)")


def main(argv: list[str] | None = None) -> None:
    from src.common.io import write_csv

    ap = argparse.ArgumentParser(description="TyDi QA primary-task JSON lines -> tydiqa_train.csv (the winner's "
                                             "layout: each question beside its whole article, character offsets).")
    ap.add_argument("jsonl", help="tydiqa-v1.0-train.jsonl.gz")
    ap.add_argument("--out", required=True, help="the CSV to write (tydiqa_train.csv)")
    ap.add_argument("--languages", nargs="+", default=list(TYDI_BETEEN))
    args = ap.parse_args(argv)
    df = load_tydi_primary_jsonl(args.jsonl, languages=args.languages)
    print(f"{args.jsonl}: {df.attrs['outcomes']}; per language: {df['language'].value_counts().to_dict()}")
    print(f"wrote {len(df)} rows to {write_csv(df[TYDI_CSV_COLUMNS], args.out)}")


if __name__ == "__main__":
    main()
