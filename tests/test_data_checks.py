"""Sources checked on arrival (src/data/checks.py): tiny files in each real layout pass against their own facts, and a
file truncated, of another release or in another layout fails with an error naming the source."""
import gzip
import hashlib
import json
import zipfile

import pandas as pd
import pytest

from src.common.paths import SHARED_DIR
from src.data.checks import (
    NQ_SMALL,
    SQUAD_DEV,
    SQUAD_TRAIN,
    TYDI_PRIMARY_TRAIN,
    Expected,
    SourceCheckError,
    check_chaii_mlqa_xquad,
    check_mlqa,
    check_mlqa_zip,
    check_nq_small,
    check_source,
    check_squad,
    check_tydi_primary,
    check_tydiqa_csv,
)
from tests.test_winner_data import MERGED, RECORDS, his_tydi_csv, mlqa_file, squad_file, write_jsonl


def facts(path, **kw) -> Expected:
    """The file's own facts, as a published source's would be pinned."""
    raw = path.read_bytes()
    return Expected(kw.pop("source", "test"), len(raw), len(raw), hashlib.sha256(raw).hexdigest(), **kw)


def test_tydi_primary_by_size_checksum_and_first_record(tmp_path):
    p = write_jsonl(tmp_path / "tydiqa-v1.0-train.jsonl.gz", RECORDS)
    report = check_tydi_primary(p, facts(p, source="tydi_primary"))
    assert report["bytes"] == p.stat().st_size and len(report["sha256"]) == 64
    with pytest.raises(SourceCheckError, match=r"source 'tydi_primary' \(.*tydiqa-v1.0-train.jsonl.gz\): .* bytes "
                                               r"\(truncated\?\); expected 1,729,651,634"):
        check_tydi_primary(p)   # the published file's facts
    with pytest.raises(SourceCheckError, match="sha256 .* is not the published"):
        check_tydi_primary(p, Expected("tydi_primary", p.stat().st_size, p.stat().st_size, "0" * 64))
    nq = tmp_path / "nq.jsonl.gz"
    nq.write_bytes(gzip.compress(json.dumps({"example_id": 1, "document_text": "x", "question_text": "q?",
                                             "annotations": [{"long_answer": {}}]}).encode() + b"\n"))
    with pytest.raises(SourceCheckError, match="lacks 'minimal_answer': not the primary-task layout"):
        check_tydi_primary(nq, Expected("tydi_primary"))
    plain = tmp_path / "renamed.jsonl.gz"
    plain.write_text(json.dumps(RECORDS[0]), encoding="utf-8")   # not gzipped
    with pytest.raises(SourceCheckError, match="unreadable"):
        check_tydi_primary(plain, Expected("tydi_primary"))
    with pytest.raises(SourceCheckError, match="missing: the file did not arrive"):
        check_tydi_primary(tmp_path / "absent.jsonl.gz")


def test_his_csv_files_by_layout_and_count(tmp_path):
    te = ["1", "తెలుగు వ్యాసం", "ప్రశ్న?", "వ్యాసం", 7, "telugu"]
    p = his_tydi_csv(tmp_path, [te, ["2", "an article", "q?", "article", 3, "english"],
                                ["3", "نص", "سؤال؟", "نص", 0, "arabic"]])
    assert check_tydiqa_csv(p, Expected("tydiqa_csv", records=2))["records"] == 2   # bn/te/en rows only
    with pytest.raises(SourceCheckError, match=r"source 'tydiqa_csv'.*2 Bengali/Telugu/English rows; expected at "
                                               r"least 11,000 and at most 12,300"):
        check_tydiqa_csv(p, Expected("tydiqa_csv", min_records=11_000, max_records=12_300))
    pd.DataFrame({"id": ["1"], "text": ["x"]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(SourceCheckError, match=r"lack \['context', 'question'.*not tydiqa_train.csv"):
        check_tydiqa_csv(tmp_path / "other.csv", Expected("tydiqa_csv"))

    nq = tmp_path / "nq_small.csv"
    pd.DataFrame({"answer": ["a"], "context": ["a b"], "id": ["1"], "question": ["q?"], "answer_start": [0],
                  "p0": [0.1], "p1": [0.2], "alen": [1]}).to_csv(nq, index=False)
    with zipfile.ZipFile(tmp_path / "nq_small.csv.zip", "w") as z:
        z.write(nq, "nq_small.csv")
    assert check_nq_small(tmp_path / "nq_small.csv.zip", Expected("nq_small", records=1))["records"] == 1
    with pytest.raises(SourceCheckError, match="1 rows; expected 10,658"):
        check_nq_small(nq, Expected("nq_small", records=NQ_SMALL.records))
    with pytest.raises(SourceCheckError, match=r"source 'nq_small'.*expected at least 5,000,000"):
        check_nq_small(nq)


def test_squad_v11_checked_against_its_published_facts(tmp_path):
    ctx = "Delhi is the capital of India."
    qa = {"id": "a", "question": "Capital?", "answers": [{"text": "Delhi", "answer_start": 0}]}
    p = squad_file(tmp_path / "train-v1.1.json", [(ctx, [qa])])
    assert check_squad(p, facts(p, source="squad", records=1))["records"] == 1
    with pytest.raises(SourceCheckError, match="expected 30,288,272"):
        check_squad(p, SQUAD_TRAIN)
    v2 = squad_file(tmp_path / "train-v2.0.json", [(ctx, [qa])], version="v2.0")
    with pytest.raises(SourceCheckError, match="version 'v2.0'; expected SQuAD '1.1'.*not SQuAD 2.0"):
        check_squad(v2, Expected("squad"))
    (tmp_path / "x.json").write_text(json.dumps({"version": "1.1", "rows": []}), encoding="utf-8")
    with pytest.raises(SourceCheckError, match="lacks 'data': not the SQuAD layout"):
        check_squad(tmp_path / "x.json", Expected("squad"))
    dev = SHARED_DIR / "data/squad/dev-v1.1.json"
    if dev.is_file():   # the real published file: its size, sha256 and 10,570 questions
        assert check_source("squad_dev", dev)["records"] == SQUAD_DEV.records == 10_570


def test_mlqa_files_by_name_and_count(tmp_path):
    dev = mlqa_file(tmp_path / "dev-context-hi-question-hi.json", ["d1"])
    with pytest.raises(SourceCheckError, match=r"source 'mlqa'.*1 questions; expected 507"):
        check_mlqa(dev, Expected("mlqa", records=507))
    assert check_mlqa(dev, Expected("mlqa", records=1))["records"] == 1
    with pytest.raises(SourceCheckError, match="expected at least 100,000"):
        check_mlqa(dev)   # picked by name: the dev file's facts
    other = mlqa_file(tmp_path / "dev-context-ta-question-ta.json", ["d1"])
    with pytest.raises(SourceCheckError, match="expected dev-context-hi-question-hi.json or test-"):
        check_mlqa(other)
    z = tmp_path / "MLQA_V1.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.write(dev, "MLQA_V1/dev/dev-context-hi-question-hi.json")
    assert check_mlqa_zip(z, facts(z, source="mlqa"))["bytes"] == z.stat().st_size
    with pytest.raises(SourceCheckError, match="expected 75,719,050"):
        check_mlqa_zip(z)


def test_the_merged_file_by_src_values_and_chaii_rows(tmp_path):
    p = tmp_path / "chaii-mlqa-xquad-5folds.csv"
    MERGED.to_csv(p, index=False)
    report = check_chaii_mlqa_xquad(p, Expected("chaii_mlqa_xquad", records=4), chaii_rows=2)
    assert report["by_src"] == {"chaii": 2, "mlqa": 1, "xquad": 1}
    with pytest.raises(SourceCheckError, match="2 chaii rows; expected 1,112"):
        check_chaii_mlqa_xquad(p, Expected("chaii_mlqa_xquad"))
    MERGED.assign(src=["chaii", "chaii", "mlqa", "tydi"]).to_csv(p, index=False)
    with pytest.raises(SourceCheckError, match=r"src values \['tydi'\]; expected only"):
        check_chaii_mlqa_xquad(p, Expected("chaii_mlqa_xquad"))


def test_check_source_knows_each_source_by_name(tmp_path):
    assert TYDI_PRIMARY_TRAIN.sha256 and SQUAD_TRAIN.records == 87_599
    with pytest.raises(ValueError, match="unknown source 'squad2'"):
        check_source("squad2", tmp_path / "x")
    with pytest.raises(SourceCheckError, match="source 'chaii_mlqa_xquad'.*did not arrive"):
        check_source("chaii_mlqa_xquad", tmp_path / "absent.csv")
