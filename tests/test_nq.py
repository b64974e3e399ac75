import json

import pytest

from src.data.load import DataError
from src.data.nq import fit_similarity, holdout_auc, load_nq_jsonl, select_similar


def record(example_id, question, tokens, long_span, short_spans=(), yes_no="NONE"):
    return {"example_id": example_id, "question_text": question, "document_text": " ".join(tokens),
            "document_url": "https://en.wikipedia.org/x",
            "annotations": [{"yes_no_answer": yes_no, "short_answers": [{"start_token": a, "end_token": b}
                                                                        for a, b in short_spans],
                             "long_answer": {"start_token": long_span[0], "end_token": long_span[1],
                                             "candidate_index": 0}}]}


DOC = "<H1> Taj Mahal </H1> <P> The Taj Mahal is in <b> Agra </b> , India . </P> <P> Built in 1653 . </P>".split()


def write_jsonl(tmp_path, records, extra_lines=()):
    p = tmp_path / "nq.jsonl"
    p.write_text("\n".join([json.dumps(r) for r in records] + list(extra_lines)) + "\n", encoding="utf-8")
    return p


def test_short_answers_become_rows_with_offsets_in_the_cleaned_paragraph(tmp_path):
    agra = DOC.index("Agra")
    recs = [record(1, "where is the taj mahal", DOC, (4, 17), [(agra - 1, agra + 2)]),   # span includes <b> </b>
            record(2, "when was it built", DOC, (17, 23), [(20, 21)]),
            record(3, "describe it", DOC, (4, 17)),                                     # long answer only
            record(4, "is it white", DOC, (4, 17), yes_no="YES"),
            record(5, "who knows", DOC, (-1, -1))]
    df, counts = load_nq_jsonl(write_jsonl(tmp_path, recs))
    assert counts == {"kept": 2, "long_only": 1, "yes_no": 1, "no_answer": 1}
    row = df.set_index("id").loc["nq-1"]
    assert row.context == "The Taj Mahal is in Agra , India ."        # HTML tag tokens removed
    assert row.answer_text == "Agra" and row.context[row.answer_start:].startswith("Agra")
    assert df.set_index("id").loc["nq-2"].answer_text == "1653"
    doc, _ = load_nq_jsonl(write_jsonl(tmp_path, recs[:1]), context="document")
    assert doc.context[0].startswith("Taj Mahal The Taj Mahal") and doc.answer_text[0] == "Agra"


def test_bad_records_raise_with_line_or_are_dropped_and_counted(tmp_path):
    recs = [record(1, "when was it built", DOC, (17, 23), [(20, 21)])]
    p = write_jsonl(tmp_path, recs, extra_lines=['{"example_id": 9, "question_text": "x"', '{"example_id": 8}'])
    with pytest.raises(DataError, match=r"nq.jsonl: row 2: record 2: not valid JSON"):
        load_nq_jsonl(p)
    df, counts = load_nq_jsonl(p, on_error="drop")
    assert len(df) == 1 and counts["bad_record"] == 2


def test_classifier_keeps_the_target_like_questions():
    target = [f"what is the capital of country {i}" for i in range(40)] + \
             [f"who was the first king of dynasty {i}" for i in range(40)]
    other = [f"according to the passage , which group opposed plan {i}" for i in range(40)] + \
            [f"in the text , what did the author say about item {i}" for i in range(40)]
    assert holdout_auc(target, other) > 0.95
    model = fit_similarity(target, other)
    import pandas as pd
    nq = pd.DataFrame({"question": ["what is the capital of peru", "according to the passage , what opposed it",
                                    "who was the first king of nepal", "in the text , what did the author say"]})
    kept, report = select_similar(nq, model, keep_fraction=0.5)
    assert set(kept["question"]) == {"what is the capital of peru", "who was the first king of nepal"}
    assert report["n"] == 4 and report["kept"] == 2 and 0 < report["threshold"] < 1


def test_raw_nq_sample_through_the_cli_into_a_built_recipe_dataset(tmp_path, tiny_dirs, capsys):
    """Raw simplified NQ -> classifier -> nq-subset/ -> the shipped recipe's nq source -> training windows."""
    from src.data.nq import DATASET_SLUG, SUBSET_FILE, main
    from src.data.synthetic import nq_sample_records, write_nq_sample, write_reference_questions
    from src.train.recipe import Augment, Recipe, Stage, load_recipe, source_frame
    from src.train.windows import build_dataset

    raw = write_nq_sample(tmp_path / "simplified-nq-train.jsonl", n=40, seed=0)
    records = [json.loads(line) for line in raw.read_text(encoding="utf-8").splitlines()]
    assert records == nq_sample_records(40, 0)
    assert {"document_text", "question_text", "long_answer_candidates", "annotations", "example_id"} <= set(records[0])
    target = write_reference_questions(tmp_path / "tydi.json", "target")
    other = write_reference_questions(tmp_path / "squad.json", "other")
    data_dir = tmp_path / "input"
    main(["--target", str(target), "--other", str(other), "--nq", str(raw), "--keep-fraction", "0.5",
          "--out-dir", str(data_dir / DATASET_SLUG), "--user", "someone"])
    assert "NQ records: {'kept': 32" in capsys.readouterr().out
    meta = json.loads((data_dir / DATASET_SLUG / "dataset-metadata.json").read_text())
    assert meta["id"] == f"someone/{DATASET_SLUG}"

    nq_src = next(s for st in load_recipe("recipe_kaggle").stages for s in st.sources if s.kind == "nq")
    assert nq_src.path == f"{DATASET_SLUG}/{SUBSET_FILE}"                   # the file the CLI wrote
    rows = source_frame(nq_src, data_dir)
    assert len(rows) == 16 and set(rows["source"]) == {"nq"} and set(rows["language"]) == {"english"}
    # the classifier chose: the kept questions are the target-like ones (even example ids)
    by_id = {f"nq-{r['example_id']}": r for r in records}
    assert all(by_id[i]["example_id"] % 2 == 0 for i in rows["id"])
    assert all(c[s:s + len(a)] == a
               for c, s, a in zip(rows["context"], rows["answer_start"], rows["answer_text"], strict=True))
    assert rows["title"].str.fullmatch(r"[A-Za-z_0-9]+").all()             # the Wikipedia page, from the URL
    from transformers import AutoTokenizer

    r = Recipe("t", [Stage("target", [nq_src], 64, 24)], Augment(random_crop=False, progressive=False))
    ds = build_dataset(r, {nq_src.data_key(): rows}, AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"])).to_pandas()
    assert set(ds["example_id"]) == set(rows["id"]) and ds["has_answer"].any()


def test_the_recipe_refuses_raw_nq_with_what_to_run(tmp_path):
    from src.train.recipe import Source, source_frame

    agra = DOC.index("Agra")
    path = write_jsonl(tmp_path, [record(1, "where is the taj mahal", DOC, (4, 17), [(agra - 1, agra + 2)])])
    with pytest.raises(DataError, match=r"raw Natural Questions JSONL.*python -m src.data.nq"):
        source_frame(Source("nq_subset", "nq", path.name), tmp_path)
