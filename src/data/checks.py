"""Each external source checked on arrival, before anything trains on it: size, checksum or record count, and the
layout its loader expects. A file that arrives truncated, as another release or in another layout fails here with
a `SourceCheckError` naming the source, not hours later inside a training run.

One function per source, each taking the file and an `Expected` (the published file's facts, below, by default)
and returning what it measured; `check_source(name, path)` picks one by name. Where a number comes from:
- TyDi QA primary-task train, SQuAD v1.1 train/dev, MLQA_V1.zip: bytes and sha256 of the files at their download
  addresses, as Hugging Face `datasets` pins them (huggingface/datasets, datasets/{tydiqa,squad,mlqa}/
  dataset_infos.json); SQuAD's question counts from the same files; MLQA-hi dev 507 / test 4,918 questions from the
  `xtreme` card (MLQA.hi.hi splits);
- the winner's own files: the counts his notebooks printed (kldarek/chaii XLMR_pretraining68 cell 9: 11,650
  Bengali/Telugu/English TyDi rows; cell 10: 10,658 NQ rows); the merged chaii/MLQA/XQuAD file's 1,112 chaii rows are
  his three held-out folds (371 + 371 + 370 questions: REMBERT_pretraining78 cell 21, XLMR_pretraining68 cell 23,
  MURIL_pretraining73 cell 21) and its Hindi rows between 6,001 and 7,000 (cell 11's progress bar: 7 batches of
  `Dataset.map`'s 1,000 rows; MLQA-hi dev + test + XQuAD-hi = 507 + 4,918 + 1,190 = 6,615). Their byte sizes are
  not published: only a floor is checked.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from src.data.load import DataError
from src.data.winner_csv import (
    MERGED_COLUMNS,
    MERGED_SOURCES,
    NQ_CSV_COLUMNS,
    TYDI_BETEEN,
    TYDI_CSV_COLUMNS,
    read_csv_file,
)


class SourceCheckError(ValueError):
    """A source that is not what was expected; the message starts with the source's name and file."""

    def __init__(self, source: str, path: str | os.PathLike, message: str):
        super().__init__(f"source {source!r} ({path}): {message}")
        self.source, self.path = source, str(path)


@dataclass(frozen=True)
class Expected:
    """What a source's file must be: bytes within [min_bytes, max_bytes], its sha256 when known, its records
    exactly `records` or within [min_records, max_records]."""
    source: str
    min_bytes: int = 1
    max_bytes: int | None = None
    sha256: str | None = None
    records: int | None = None
    min_records: int | None = None
    max_records: int | None = None


TYDI_PRIMARY_TRAIN = Expected("tydi_primary", 1_729_651_634, 1_729_651_634,
                              "8eeedfee7593db7c3637d65a3d5c67b82486137ac6ac3ea7d08be9a64d71b629")
# his 11,650 Bengali/Telugu/English rows; the range admits the file rebuilt from the primary task by
# `python -m src.data.tydi_primary` (the rule that picks a question's answer may differ slightly from his kernel's);
# 11,650 articles of a few kB each: not under 5 MB even zipped
TYDIQA_CSV = Expected("tydiqa_csv", min_bytes=5_000_000, min_records=11_000, max_records=12_300)
NQ_SMALL = Expected("nq_small", min_bytes=5_000_000, records=10_658)
SQUAD_TRAIN = Expected("squad", 30_288_272, 30_288_272,
                       "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955", records=87_599)
SQUAD_DEV = Expected("squad", 4_854_279, 4_854_279,
                     "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9", records=10_570)
MLQA_ZIP = Expected("mlqa", 75_719_050, 75_719_050, "246e8089933d13007fe80684d5c5c0713d6834cf8b3b4a0ec7c66f0a0d2baac8")
MLQA_HI_DEV = Expected("mlqa", min_bytes=100_000, records=507)
MLQA_HI_TEST = Expected("mlqa", min_bytes=1_000_000, records=4_918)
CHAII_ROWS = 1_112
CHAII_MLQA_XQUAD = Expected("chaii_mlqa_xquad", min_bytes=1_000_000, min_records=CHAII_ROWS + 6_001,
                            max_records=CHAII_ROWS + 7_000)
TYDI_PRIMARY_KEYS = ("example_id", "language", "question_text", "document_plaintext", "annotations",
                     "passage_answer_candidates")


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_file(path: str | os.PathLike, expect: Expected) -> dict:
    """The size and checksum part of every check: {source, path, bytes[, sha256]}."""
    path = Path(path)
    if not path.is_file():
        raise SourceCheckError(expect.source, path, "missing: the file did not arrive")
    size = path.stat().st_size
    if size < expect.min_bytes or (expect.max_bytes is not None and size > expect.max_bytes):
        want = (f"{expect.min_bytes:,}" if expect.min_bytes == expect.max_bytes
                else f"at least {expect.min_bytes:,}" + (f" and at most {expect.max_bytes:,}" if expect.max_bytes
                                                         else ""))
        cut = " (truncated?)" if size < expect.min_bytes else ""
        raise SourceCheckError(expect.source, path, f"{size:,} bytes{cut}; expected {want}")
    report = {"source": expect.source, "path": str(path), "bytes": size}
    if expect.sha256:
        report["sha256"] = sha256_of(path)
        if report["sha256"] != expect.sha256:
            raise SourceCheckError(expect.source, path, f"sha256 {report['sha256']} is not the published "
                                                        f"{expect.sha256}: another release or a damaged download")
    return report


def check_count(n: int, what: str, path, expect: Expected) -> None:
    if expect.records is not None and n != expect.records:
        raise SourceCheckError(expect.source, path, f"{n:,} {what}; expected {expect.records:,}")
    low, high = expect.min_records, expect.max_records
    if (low is not None and n < low) or (high is not None and n > high):
        want = " and ".join(f"{word} {x:,}" for word, x in (("at least", low), ("at most", high)) if x is not None)
        raise SourceCheckError(expect.source, path, f"{n:,} {what}; expected {want}")


def check_tydi_primary(path: str | os.PathLike, expect: Expected = TYDI_PRIMARY_TRAIN) -> dict:
    """tydiqa-v1.0-train.jsonl.gz: size and sha256, and its first record in the primary-task layout (the records
    are not counted here: that means decompressing 1.7 GB; the loader counts what it keeps)."""
    report = check_file(path, expect)
    opener = gzip.open if Path(path).suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            record = json.loads(f.readline())
        minimal = record["annotations"][0]["minimal_answer"]
        missing = [k for k in TYDI_PRIMARY_KEYS if k not in record] + [
            f"annotations[0].minimal_answer.{k}" for k in ("plaintext_start_byte", "plaintext_end_byte")
            if k not in minimal]
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceCheckError(expect.source, path, f"first record unreadable ({e}): not gzipped JSON lines") from None
    except (KeyError, IndexError, TypeError) as e:
        raise SourceCheckError(expect.source, path, f"first record lacks {e}: not the primary-task layout") from None
    if missing:
        raise SourceCheckError(expect.source, path, f"first record lacks {missing}: not the primary-task layout")
    return report


def _csv(path, expect: Expected, columns: list[str], layout: str):
    try:
        df = read_csv_file(path)
    except DataError as e:
        raise SourceCheckError(expect.source, path, str(e)) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SourceCheckError(expect.source, path, f"columns {list(df.columns)} lack {missing}: not {layout}")
    return df


def check_tydiqa_csv(path: str | os.PathLike, expect: Expected = TYDIQA_CSV) -> dict:
    """The winner's tydiqa_train.csv(.zip): his columns and his count of Bengali/Telugu/English rows."""
    report = check_file(path, expect)
    df = _csv(path, expect, TYDI_CSV_COLUMNS, "tydiqa_train.csv (thedrcat/tydi-qa-download)")
    report["records"] = int(df["language"].isin(TYDI_BETEEN).sum())
    check_count(report["records"], "Bengali/Telugu/English rows", path, expect)
    return report


def check_nq_small(path: str | os.PathLike, expect: Expected = NQ_SMALL) -> dict:
    """The winner's nq_small.csv(.zip) (thedrcat/nqsmall): his columns and his 10,658 rows."""
    report = check_file(path, expect)
    df = _csv(path, expect, NQ_CSV_COLUMNS, "nq_small.csv (thedrcat/nqsmall)")
    report["records"] = len(df)
    check_count(len(df), "rows", path, expect)
    return report


def _squad_questions(path, expect: Expected) -> tuple[dict, int]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        n = sum(len(p["qas"]) for a in doc["data"] for p in a["paragraphs"])
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceCheckError(expect.source, path, f"not valid JSON ({e})") from None
    except (KeyError, TypeError) as e:
        raise SourceCheckError(expect.source, path, f"lacks {e}: not the SQuAD layout "
                                                    "(data[].paragraphs[].qas[])") from None
    return doc, n


def check_squad(path: str | os.PathLike, expect: Expected = SQUAD_TRAIN) -> dict:
    """SQuAD v1.1 (train-v1.1.json by default; SQUAD_DEV for dev-v1.1.json): size, sha256, version "1.1" (not 2.0),
    the question count."""
    report = check_file(path, expect)
    doc, report["records"] = _squad_questions(path, expect)
    if str(doc.get("version")) != "1.1":
        raise SourceCheckError(expect.source, path, f"version {doc.get('version')!r}; expected SQuAD '1.1' (the "
                                                    "winner's load_dataset('squad'), not SQuAD 2.0)")
    check_count(report["records"], "questions", path, expect)
    return report


def check_mlqa(path: str | os.PathLike, expect: Expected | None = None) -> dict:
    """One MLQA-hi file: dev-context-hi-question-hi.json (507 questions) or test-context-hi-question-hi.json
    (4,918), told apart by name when `expect` is None."""
    name = Path(path).name
    if expect is None:
        if name not in ("dev-context-hi-question-hi.json", "test-context-hi-question-hi.json"):
            raise SourceCheckError("mlqa", path, "expected dev-context-hi-question-hi.json or "
                                                 "test-context-hi-question-hi.json")
        expect = MLQA_HI_DEV if name.startswith("dev") else MLQA_HI_TEST
    report = check_file(path, expect)
    _, report["records"] = _squad_questions(path, expect)
    check_count(report["records"], "questions", path, expect)
    return report


def check_mlqa_zip(path: str | os.PathLike, expect: Expected = MLQA_ZIP) -> dict:
    """MLQA_V1.zip as downloaded: size and sha256 (its dev/ and test/ files are then checked by `check_mlqa`)."""
    return check_file(path, expect)


def check_chaii_mlqa_xquad(path: str | os.PathLike, expect: Expected = CHAII_MLQA_XQUAD,
                           chaii_rows: int | None = CHAII_ROWS) -> dict:
    """zacchaeus/chaiimlqaxquad's chaii-mlqa-xquad-5folds.csv: its columns, its `src` values and its rows (the
    chaii rows exactly `chaii_rows`)."""
    report = check_file(path, expect)
    df = _csv(path, expect, MERGED_COLUMNS, "chaii-mlqa-xquad-5folds.csv (zacchaeus/chaiimlqaxquad)")
    unknown = sorted(set(df["src"]) - set(MERGED_SOURCES))
    if unknown:
        raise SourceCheckError(expect.source, path, f"src values {unknown}; expected only {list(MERGED_SOURCES)}")
    report["records"], report["by_src"] = len(df), df["src"].value_counts().to_dict()
    check_count(len(df), "rows", path, expect)
    n_chaii = report["by_src"].get("chaii", 0)
    if chaii_rows is not None and n_chaii != chaii_rows:
        raise SourceCheckError(expect.source, path, f"{n_chaii:,} chaii rows; expected {chaii_rows:,}")
    return report


CHECKS = {"tydi_primary": check_tydi_primary, "tydiqa_csv": check_tydiqa_csv, "nq_small": check_nq_small,
          "squad_train": check_squad, "squad_dev": lambda p: check_squad(p, SQUAD_DEV), "mlqa": check_mlqa,
          "mlqa_zip": check_mlqa_zip, "chaii_mlqa_xquad": check_chaii_mlqa_xquad}


def check_source(name: str, path: str | os.PathLike) -> dict:
    """The check of source `name` (a key of CHECKS) against the published file's facts."""
    if name not in CHECKS:
        raise ValueError(f"unknown source {name!r}; known: {sorted(CHECKS)}")
    return CHECKS[name](path)
