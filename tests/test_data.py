import csv
import io

import pandas as pd
import pytest

from src.common.paths import REPO_ROOT
from src.data.load import DataError, load_chaii_csv

GOOD = [
    dict(id="a1", context="राम का जन्म अयोध्या में हुआ।", question="राम का जन्म कहाँ हुआ?", answer_text="अयोध्या",
         answer_start="12", language="hindi"),
    dict(id="b2", context="சென்னை தமிழ்நாட்டின் தலைநகரம்.", question="தமிழ்நாட்டின் தலைநகரம் எது?",
         answer_text="சென்னை", answer_start="0", language="tamil"),
]


def write(tmp_path, rows, name="train.csv", columns=None):
    p = tmp_path / name
    columns = columns or list(rows[0])
    with open(p, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return p


def test_loads_valid_file(tmp_path):
    df = load_chaii_csv(write(tmp_path, GOOD))
    assert list(df.columns) == ["id", "context", "question", "answer_text", "answer_start", "language", "source"]
    assert df["answer_start"].tolist() == [12, 0]
    assert (df["source"] == "chaii").all()


def test_shipped_sample_is_valid():
    train = load_chaii_csv(REPO_ROOT / "input" / "train.csv")
    test = load_chaii_csv(REPO_ROOT / "input" / "test.csv", split="test")
    counts = train["language"].value_counts()
    assert counts["hindi"] >= 40 and counts["tamil"] >= 20
    assert not set(train["id"]) & set(test["id"])
    sample = pd.read_csv(REPO_ROOT / "input" / "sample_submission.csv", dtype=str, keep_default_na=False)
    assert list(sample.columns) == ["id", "PredictionString"] and sample["id"].tolist() == test["id"].tolist()


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r[1].update(context="  "), "row 2, field 'context': empty context"),
    (lambda r: r[0].update(question=""), "row 1, field 'question': empty question"),
    (lambda r: r[1].update(answer_start="3"), "row 2, field 'answer_start': answer_start 3 does not point at"),
    (lambda r: r[0].update(answer_start="twelve"), "row 1, field 'answer_start': 'twelve' is not an integer"),
    (lambda r: r[1].update(id="a1"), "row 2, field 'id': duplicate id 'a1' (first seen at row 1)"),
    (lambda r: r[1].update(language="telugu"), "row 2, field 'language': unknown language 'telugu'"),
])
def test_bad_rows_name_file_row_field(tmp_path, mutate, expected):
    rows = [dict(r) for r in GOOD]
    mutate(rows)
    p = write(tmp_path, rows)
    with pytest.raises(DataError) as e:
        load_chaii_csv(p)
    assert str(p) in str(e.value) and expected in str(e.value)


def test_answer_hint_says_where_the_answer_is(tmp_path):
    rows = [dict(r) for r in GOOD]
    rows[0]["answer_start"] = "0"
    with pytest.raises(DataError, match="the answer occurs at 12"):
        load_chaii_csv(write(tmp_path, rows))


def test_missing_column(tmp_path):
    p = write(tmp_path, GOOD, columns=["id", "context", "question", "answer_text", "language"])
    with pytest.raises(DataError, match=r"train.csv: missing column\(s\) \['answer_start'\]"):
        load_chaii_csv(p)


def test_test_split_needs_no_answers(tmp_path):
    p = write(tmp_path, GOOD, name="test.csv", columns=["id", "context", "question", "language"])
    assert len(load_chaii_csv(p, split="test")) == 2


def test_non_utf8_file(tmp_path):
    p = tmp_path / "train.csv"
    text = io.StringIO()
    csv.DictWriter(text, fieldnames=list(GOOD[0])).writeheader()
    p.write_bytes(text.getvalue().encode() + "a1,ராமன்,q,a,0,tamil\n".encode("utf-16-le"))
    with pytest.raises(DataError, match=r"train.csv: not UTF-8: byte 0x.. at line 2"):
        load_chaii_csv(p)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_chaii_csv(tmp_path / "nope.csv")


def test_training_rows_with_label_noise_are_dropped_counted_and_named(tmp_path, capsys):
    """The real train.csv has known label noise: one bad row must not stop a training run."""
    rows = [dict(r) for r in GOOD] + [
        dict(GOOD[0], id="off", answer_start="3"),          # answer_start does not point at the answer
        dict(GOOD[0], id="nan", answer_start="twelve"),     # not an integer
        dict(GOOD[1], id="a1"),                             # duplicate id of row 1: the first one is kept
        dict(GOOD[1], id="b3"),
    ]
    p = write(tmp_path, rows)
    with pytest.raises(DataError, match="row 4, field 'answer_start': 'twelve' is not an integer"):
        load_chaii_csv(p)                                   # strict by default
    df = load_chaii_csv(p, on_error="drop")
    assert df["id"].tolist() == ["a1", "b2", "b3"] and df["answer_start"].tolist() == [12, 0, 0]
    assert df.attrs["n_dropped"] == 3 and df.attrs["dropped_ids"] == ["off", "nan", "a1"]
    assert any("row 5, field 'id'" in r and "duplicate id 'a1'" in r for r in df.attrs["dropped"])
    out = capsys.readouterr().out
    assert "dropped 3 of 6 rows" in out and "'off'" in out and "'nan'" in out and str(p) in out


def test_test_data_stays_strict(tmp_path):
    rows = [dict(r) for r in GOOD] + [dict(GOOD[1], id="a1")]
    p = write(tmp_path, rows, name="test.csv", columns=["id", "context", "question", "language"])
    with pytest.raises(ValueError, match="test data is never dropped"):
        load_chaii_csv(p, split="test", on_error="drop")
    with pytest.raises(DataError, match="row 3, field 'id': duplicate id 'a1'"):
        load_chaii_csv(p, split="test")


def test_training_notebook_and_chaii_source_load_train_csv_with_drop(tmp_path):
    import json

    from src.data.external import load_chaii

    nb = json.loads((REPO_ROOT / "notebooks" / "03_recipe_training.ipynb").read_text(encoding="utf-8"))
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert 'load_chaii_csv(paths.data_file("train.csv"), on_error="drop")' in code
    p = write(tmp_path, [dict(r) for r in GOOD] + [dict(GOOD[0], id="off", answer_start="3")])
    assert load_chaii(p)["id"].tolist() == ["a1", "b2"]      # a recipe's chaii source is training data too
