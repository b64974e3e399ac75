"""The winner's data sources as loaders (src/data/tydi_primary.py, winner_csv.py, nq.py, external.py), on tiny files
written here in each real layout, with Bengali/Telugu/Hindi text so that a byte offset and a character offset differ."""
import gzip
import json
import zipfile

import pandas as pd
import pytest

from src.data.external import load_mlqa_json, load_source, load_squad_json
from src.data.load import DataError
from src.data.nq import load_nq_documents, write_subset
from src.data.tydi_primary import byte_span_to_chars, load_tydi_primary, load_tydi_primary_jsonl, main
from src.data.winner_csv import load_chaii_mlqa_xquad, load_nq_small_csv, load_tydiqa_csv

# Telugu (his 68 cell 9's first row: the neem article, answer "Azadirachta indica") and Bengali articles: every
# Telugu/Bengali letter is 3 UTF-8 bytes, so the answer's byte offset is far from its character offset.
TE_DOC = "\nవేపచెట్టు, వేపాకు, వేపపూత ఇలా వేపచెట్టునుండి లభించేవన్నీ ఉపయోగకరమే. దీని శాస్త్రీయ నామం Azadirachta indica."
TE_ANSWER = "Azadirachta indica"
BN_DOC = "রবীন্দ্রনাথ ঠাকুর বাংলা ভাষার কবি। তিনি ১৯১৩ সালে নোবেল পুরস্কার পান।"
BN_ANSWER = "১৯১৩ সালে"
EN_DOC = "\n\nThe hertz (symbol: Hz) is the derived unit of frequency. 1 kilohertz is 103 Hz."
EN_ANSWER = "103 Hz"


def span(doc: str, answer: str) -> tuple[int, int]:
    start = doc.encode().index(answer.encode())
    return start, start + len(answer.encode())


def tydi_record(example_id, language, doc, question, spans=(), yes_no="NONE", title="T"):
    """A primary-task record (google-research-datasets/tydiqa's layout); `spans`: one minimal answer (byte span)
    per annotation; none: one annotation without a minimal answer."""
    anns = [{"annotation_id": i, "minimal_answer": {"plaintext_start_byte": s, "plaintext_end_byte": e},
             "passage_answer": {"candidate_index": 0}, "yes_no_answer": "NONE"} for i, (s, e) in enumerate(spans)]
    anns = anns or [{"annotation_id": 0, "minimal_answer": {"plaintext_start_byte": -1, "plaintext_end_byte": -1},
                     "passage_answer": {"candidate_index": 0 if yes_no != "NONE" else -1}, "yes_no_answer": yes_no}]
    return {"annotations": anns, "document_html": "<html><p>\"language\":\"arabic\"</p></html>",
            "document_plaintext": doc, "document_title": title, "document_url": "https://x.wikipedia.org/wiki/T",
            "example_id": example_id, "language": language,
            "passage_answer_candidates": [{"plaintext_start_byte": 0, "plaintext_end_byte": len(doc.encode())}],
            "question_text": question}


RECORDS = [
    tydi_record(6553242570085056655, "telugu", TE_DOC, "వేప చెట్టు యొక్క శాస్త్రీయ నామం ఏమిటి?", [span(TE_DOC, TE_ANSWER)],
                title="వేప"),
    tydi_record(111, "bengali", BN_DOC, "রবীন্দ্রনাথ কবে নোবেল পান?", [span(BN_DOC, BN_ANSWER)]),
    tydi_record(222, "english", EN_DOC, "1 kilohertz is equal to how many hertz?", [span(EN_DOC, EN_ANSWER)]),
    tydi_record(333, "telugu", TE_DOC, "వేప ఎక్కడ పెరుగుతుంది?"),                          # no minimal answer
    tydi_record(444, "english", EN_DOC, "Is the hertz a unit?", yes_no="YES"),       # yes/no, no span
    tydi_record(555, "arabic", "نص عربي", "سؤال؟"),                                     # another language
]


def write_jsonl(path, records, extra=()):
    text = "\n".join([json.dumps(r, ensure_ascii=False) for r in records] + list(extra)) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_byte_offsets_become_character_offsets_on_telugu_and_bengali():
    for doc, answer in ((TE_DOC, TE_ANSWER), (BN_DOC, BN_ANSWER)):
        s, e = span(doc, answer)
        char, text = byte_span_to_chars(doc, s, e)
        assert text == answer and doc[char:char + len(answer)] == answer
        assert char < s   # the letters before it are 3 bytes each: the byte offset is not the character offset
    s, e = span(BN_DOC, BN_ANSWER)
    with pytest.raises(ValueError, match="inside a multi-byte character"):
        byte_span_to_chars(BN_DOC, s + 1, e)
    with pytest.raises(ValueError, match="outside the document"):
        byte_span_to_chars(BN_DOC, s, len(BN_DOC.encode()) + 1)
    with pytest.raises(ValueError, match="empty"):
        byte_span_to_chars(BN_DOC, s, s)


@pytest.mark.parametrize("name", ["tydiqa-v1.0-train.jsonl.gz", "tydi.jsonl"])
def test_primary_task_whole_articles_keep_answered_questions_of_his_languages(tmp_path, name):
    df = load_tydi_primary(write_jsonl(tmp_path / name, RECORDS))
    assert df.attrs["outcomes"] == {"kept": 3, "no_minimal_answer": 1, "yes_no": 1, "other_language": 1}
    rows = df.set_index("id")
    assert list(rows.index) == ["6553242570085056655", "111", "222"]
    te = rows.loc["6553242570085056655"]
    assert te.context == TE_DOC and te.language == "telugu" and te.source == "tydi" and te.title == "వేప"
    assert te.answer_text == TE_ANSWER and te.context[te.answer_start:].startswith(TE_ANSWER)
    assert te.answer_start == TE_DOC.index(TE_ANSWER) != span(TE_DOC, TE_ANSWER)[0]
    bn = rows.loc["111"]
    assert bn.answer_text == BN_ANSWER and bn.answer_start == BN_DOC.index(BN_ANSWER) and bn.answers == [BN_ANSWER]
    # one language (a recipe source's `language`), through the recipe's dispatch
    only = load_source("tydi_primary", tmp_path / name, language="bengali")
    assert list(only["id"]) == ["111"] and only.attrs["outcomes"]["other_language"] == 5


def test_several_annotators_keep_every_distinct_answer(tmp_path):
    s, e = span(EN_DOC, EN_ANSWER)
    rec = tydi_record(7, "english", EN_DOC, "How many hertz?", [(s, e), (s, e), (s - 13, e)])
    df = load_tydi_primary_jsonl(write_jsonl(tmp_path / "dev.jsonl", [rec]))
    assert df["answer_text"].tolist() == [EN_ANSWER] and df["answers"].tolist() == [[EN_ANSWER, "kilohertz is 103 Hz"]]


def test_bad_primary_records_name_file_line_and_problem(tmp_path):
    s, e = span(BN_DOC, BN_ANSWER)
    cases = {
        "outside the document": tydi_record(1, "bengali", BN_DOC, "q?", [(s, len(BN_DOC.encode()) + 5)]),
        "inside a multi-byte character": tydi_record(2, "bengali", BN_DOC, "q?", [(s + 1, e)]),
        "example_id": {k: v for k, v in RECORDS[2].items() if k != "example_id"},
    }
    for expected, bad in cases.items():
        p = write_jsonl(tmp_path / "bad.jsonl", [RECORDS[1], bad])
        with pytest.raises(DataError, match=expected) as err:
            load_tydi_primary_jsonl(p)
        assert "bad.jsonl: row 2" in str(err.value)   # the record's line
    assert "Hugging Face" in str(err.value)            # the layout without example_id is named
    p = write_jsonl(tmp_path / "bad.jsonl", [RECORDS[1]], extra=["{not json"])
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        load_tydi_primary_jsonl(p)
    df = load_tydi_primary_jsonl(p, on_error="drop")
    assert list(df["id"]) == ["111"] and df.attrs["outcomes"]["bad_record"] == 1
    with pytest.raises(DataError, match="tydiqa_train.csv"):
        load_tydi_primary(tmp_path / "tydi.parquet")


def test_the_cli_writes_his_csv_layout_and_his_csv_reads_back_the_same_rows(tmp_path, capsys):
    src = write_jsonl(tmp_path / "train.jsonl.gz", RECORDS)
    out = tmp_path / "tydiqa_train.csv"
    main([str(src), "--out", str(out)])
    assert "wrote 3 rows" in capsys.readouterr().out
    csv = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(csv.columns) == ["id", "context", "question", "answer_text", "answer_start", "language"]  # his
    with zipfile.ZipFile(tmp_path / "tydiqa_train.csv.zip", "w") as z:   # as his notebooks read it
        z.write(out, "tydiqa_train.csv")
    direct = load_tydi_primary(src)
    for path in (out, tmp_path / "tydiqa_train.csv.zip"):
        back = load_source("tydi_primary", path)
        cols = ["id", "context", "question", "answer_text", "answer_start", "language", "source"]
        pd.testing.assert_frame_equal(back[cols], direct[cols])


def his_tydi_csv(tmp_path, rows, name="tydiqa_train.csv"):
    p = tmp_path / name
    pd.DataFrame(rows, columns=["id", "context", "question", "answer_text", "answer_start", "language"]).to_csv(
        p, index=False)
    return p


def test_his_tydi_csv_keeps_his_three_languages_and_names_a_byte_offset(tmp_path):
    te_char, te_byte = TE_DOC.index(TE_ANSWER), span(TE_DOC, TE_ANSWER)[0]
    rows = [["9", "نص عربي", "سؤال؟", "عربي", 3, "arabic"],
            ["1", TE_DOC, "q1?", TE_ANSWER, te_char, "telugu"],
            ["2", EN_DOC, "q2?", EN_ANSWER, EN_DOC.index(EN_ANSWER), "english"]]
    df = load_tydiqa_csv(his_tydi_csv(tmp_path, rows))
    assert list(df["id"]) == ["1", "2"] and df.attrs["other_languages"] == 1 and set(df["source"]) == {"tydi"}
    rows[1][4] = te_byte   # the primary task's byte offset, left unconverted
    with pytest.raises(DataError, match=rf"row 2, field 'answer_start'.*{te_byte} is a UTF-8 byte offset.*"
                                        rf"character {te_char}"):
        load_tydiqa_csv(his_tydi_csv(tmp_path, rows))   # row 2 of the file, after the Arabic row left out
    rows[1][4], rows[1][3] = te_char, ""
    with pytest.raises(DataError, match="row 2, field 'answer_text'.*empty answer"):
        load_tydiqa_csv(his_tydi_csv(tmp_path, rows))
    pd.DataFrame({"id": ["1"], "context": [TE_DOC]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad.csv: missing column\(s\) \['question', 'answer_text'"):
        load_tydiqa_csv(tmp_path / "bad.csv")


def test_his_nq_small_csv_and_the_document_subset(tmp_path):
    nq = pd.DataFrame({"answer": [EN_ANSWER, "Agra"], "context": [EN_DOC, "The Taj Mahal is in Agra, India."],
                       "id": ["532428134682627320", "7"], "question": ["how many hertz?", "where is the taj mahal"],
                       "answer_start": [EN_DOC.index(EN_ANSWER), 20], "p0": [-0.47, 0.1], "p1": [0.35, 0.2],
                       "alen": [6, 4]})   # his columns (XLMR_pretraining68 cell 10's output)
    nq.to_csv(tmp_path / "nq_small.csv", index=False)
    with zipfile.ZipFile(tmp_path / "nq_small.csv.zip", "w") as z:
        z.write(tmp_path / "nq_small.csv", "nq_small.csv")
    for name in ("nq_small.csv", "nq_small.csv.zip"):
        df = load_source("nq_documents", tmp_path / name)
        assert df["answer_text"].tolist() == [EN_ANSWER, "Agra"] and set(df["language"]) == {"english"}
        assert set(df["source"]) == {"nq"} and df["context"].tolist() == nq["context"].tolist()
    nq.loc[1, "answer_start"] = 3
    nq.to_csv(tmp_path / "nq_small.csv", index=False)
    with pytest.raises(DataError, match="nq_small.csv: row 2, field 'answer_start'.*occurs at 20"):
        load_nq_small_csv(tmp_path / "nq_small.csv")
    nq.drop(columns=["answer"]).to_csv(tmp_path / "nq_small.csv", index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['answer'\]"):
        load_nq_small_csv(tmp_path / "nq_small.csv")
    # the subset src/data/nq.py writes: whole documents only when it records so
    rows = load_nq_small_csv(tmp_path / "nq_small.csv.zip")
    doc = write_subset(rows, tmp_path / "doc", context="document")
    assert load_nq_documents(doc)["context"].tolist() == rows["context"].tolist()
    for context in ("long_answer", None):
        para = write_subset(rows, tmp_path / f"para-{context}", context=context)
        with pytest.raises(DataError, match=f"needs whole documents.*nq_context={context!r}.*--context document"):
            load_source("nq_documents", para)


def squad_file(path, qas_by_context, version="1.1"):
    path.write_text(json.dumps({"version": version, "data": [{"title": "T", "paragraphs": [
        {"context": c, "qas": qas} for c, qas in qas_by_context]}]}, ensure_ascii=False), encoding="utf-8")
    return path


def test_squad_v11_train_and_dev_without_is_impossible(tmp_path):
    ctx = "Delhi is the capital of India."
    train = squad_file(tmp_path / "train-v1.1.json", [(ctx, [
        {"id": "a", "question": "Capital?", "answers": [{"text": "Delhi", "answer_start": 0}]}])])
    dev = squad_file(tmp_path / "dev-v1.1.json", [(ctx, [
        {"id": "b", "question": "Of what?", "answers": [{"text": "India", "answer_start": 24},
                                                          {"text": "India.", "answer_start": 24},
                                                          {"text": "India", "answer_start": 24}]}])])
    assert load_source("squad", train)["answer_text"].tolist() == ["Delhi"]
    assert load_source("squad", dev)["answers"].tolist() == [["India", "India."]]
    empty = squad_file(tmp_path / "bad-v1.1.json", [(ctx, [{"id": "c", "question": "Who?", "answers": []}])])
    with pytest.raises(DataError, match="bad-v1.1.json.*'c'.*no answers"):
        load_squad_json(empty)   # v1.1 has no unanswerable questions: an empty answer list is a broken record


def mlqa_file(path, qids, context="दिल्ली भारत की राजधानी है।", answer="दिल्ली"):
    return squad_file(path, [(context, [{"id": q, "question": "राजधानी क्या है?",
                                         "answers": [{"text": answer, "answer_start": 0}]} for q in qids])])


def test_mlqa_dev_and_test_together_by_glob_or_list(tmp_path):
    for split in ("dev", "test"):
        (tmp_path / split).mkdir()
    dev = mlqa_file(tmp_path / "dev/dev-context-hi-question-hi.json", ["d1", "d2"])
    test = mlqa_file(tmp_path / "test/test-context-hi-question-hi.json", ["t1", "t2", "t3"])
    by_glob = load_source("mlqa", tmp_path / "*/*-context-hi-question-hi.json")
    assert by_glob["id"].tolist() == ["d1", "d2", "t1", "t2", "t3"] and set(by_glob["language"]) == {"hindi"}
    assert set(by_glob["source"]) == {"mlqa"} and by_glob.attrs["files"] == [str(dev), str(test)]
    assert load_mlqa_json([test, dev])["id"].tolist() == ["t1", "t2", "t3", "d1", "d2"]
    mlqa_file(test, ["t1", "d2"])
    with pytest.raises(DataError, match=r"test-context-hi-question-hi.json.*'d2' is also in .*dev-context"):
        load_mlqa_json([dev, test])
    with pytest.raises(FileNotFoundError, match="no file matches"):
        load_mlqa_json(tmp_path / "*/*-context-ta-question-ta.json")


MERGED = pd.DataFrame({
    "context": ["चेन्नई तमिलनाडु की राजधानी है।", "சென்னை தமிழ்நாட்டின் தலைநகரம்.", "दिल्ली भारत की राजधानी है।",
                "मुंबई महाराष्ट्र में है।"],
    "question": ["राजधानी?", "தலைநகரம் எது?", "राजधानी क्या है?", "मुंबई कहाँ है?"],
    "answer_text": ["चेन्नई", "சென்னை", "दिल्ली", "महाराष्ट्र"],
    "answer_start": [0, 0, 0, 6],
    "language": ["hindi", "tamil", "hindi", "hindi"],
    "src": ["chaii", "chaii", "mlqa", "xquad"],
    "fold": [0, 3, 1, 4]})


def test_the_merged_chaii_mlqa_xquad_file_keeps_src_and_fold(tmp_path):
    p = tmp_path / "chaii-mlqa-xquad-5folds.csv"
    MERGED.to_csv(p, index=False)
    df = load_source("chaii_mlqa_xquad", p)
    assert df["src"].tolist() == df["source"].tolist() == ["chaii", "chaii", "mlqa", "xquad"]
    assert df["fold"].tolist() == ["0", "3", "1", "4"] and df["id"].tolist() == ["chaii-1", "chaii-2", "mlqa-3",
                                                                                    "xquad-4"]
    assert load_chaii_mlqa_xquad(p, part="external")["src"].tolist() == ["mlqa", "xquad"]   # his `hindi`
    assert load_chaii_mlqa_xquad(p, part="chaii")["language"].tolist() == ["hindi", "tamil"]
    assert load_source("chaii_mlqa_xquad", p, language="tamil")["id"].tolist() == ["chaii-2"]
    # chaii rows take their competition ids from train.csv, matched on (context, question) as his cell 11 merges
    train = MERGED[MERGED.src == "chaii"][["context", "question"]].assign(id=["903deec17", "d9841668c"])
    train.to_csv(tmp_path / "train.csv", index=False)
    assert load_chaii_mlqa_xquad(p, train_csv=tmp_path / "train.csv")["id"].tolist()[:2] == ["903deec17",
                                                                                              "d9841668c"]
    train.iloc[1:].to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(DataError, match="row 1, field 'question'.*no \\(context, question\\) match"):
        load_chaii_mlqa_xquad(p, train_csv=tmp_path / "train.csv")


def test_the_merged_file_reports_label_noise_and_refuses_another_layout(tmp_path, capsys):
    p = tmp_path / "merged.csv"
    MERGED.assign(answer_start=[0, 0, 0, 2]).to_csv(p, index=False)     # the XQuAD row's offset is off
    df = load_chaii_mlqa_xquad(p)
    assert df["src"].tolist() == ["chaii", "chaii", "mlqa"] and df.attrs["n_dropped"] == 1
    assert "row 4, field 'answer_start'" in capsys.readouterr().out
    with pytest.raises(DataError, match="merged.csv: row 4, field 'answer_start'"):
        load_chaii_mlqa_xquad(p, on_error="raise")
    MERGED.assign(src=["chaii", "chaii", "mlqa", "squad"]).to_csv(p, index=False)
    with pytest.raises(DataError, match="row 4, field 'src': unknown src 'squad'"):
        load_chaii_mlqa_xquad(p)
    MERGED.drop(columns=["fold"]).to_csv(p, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['fold'\]"):
        load_chaii_mlqa_xquad(p)
