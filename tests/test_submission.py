import numpy as np
import pandas as pd
import pytest

from src.blend.submission import SubmissionError, check_submission, main, make_submission, write_submission

TEST = pd.DataFrame({"id": ["a", "b", "c"], "context": ["x"] * 3, "question": ["q"] * 3, "language": ["hindi"] * 3})


def sub(ids, preds):
    return pd.DataFrame({"id": ids, "PredictionString": preds})


def test_make_submission_orders_and_flattens():
    s = make_submission(TEST, {"b": "दो\nपंक्ति", "a": "एक"})
    assert s["id"].tolist() == ["a", "b", "c"]
    assert s["PredictionString"].tolist() == ["एक", "दो पंक्ति", ""]
    check_submission(s, TEST["id"])


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"id": ["a"], "answer": ["x"]}), "columns are ['id', 'answer']"),
    (sub(["a", "b", "c"], ["x", np.nan, "z"]), "row 2 (id 'b'): PredictionString is NaN"),
    (sub(["a", "b", "c"], ["x", "nan", "z"]), "row 2 (id 'b'): PredictionString is NaN"),
    (sub(["a", "b", "c"], ["x", "y\nz", "z"]), "row 2 (id 'b'): PredictionString spans several lines"),
    (sub(["a", "b", "b"], ["x", "y", "z"]), "row 3: id 'b' appears more than once"),
    (sub(["a", "b", "zz"], ["x", "y", "z"]), "row 3: id 'zz' is not in the test set"),
    (sub(["a", "b"], ["x", "y"]), "1 test id(s) missing, e.g. ['c']"),
])
def test_rejections_name_row_and_reason(frame, message):
    with pytest.raises(SubmissionError) as e:
        check_submission(frame, TEST["id"])
    assert message in str(e.value)


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "submission.csv"
    good = sub(["a", "b", "c"], ["x", "y", ""])
    write_submission(good, TEST["id"], path)
    before = path.read_bytes()
    with pytest.raises(SubmissionError):
        write_submission(sub(["a", "b"], ["x", "y"]), TEST["id"], path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]  # no temp file left behind


def test_cli(tmp_path, capsys):
    test_csv = tmp_path / "test.csv"
    TEST.to_csv(test_csv, index=False)
    good = tmp_path / "good.csv"
    sub(["a", "b", "c"], ["x", "", "z"]).to_csv(good, index=False)  # an empty answer is fine
    assert main(["check", str(good), "--test", str(test_csv)]) == 0
    bad = tmp_path / "bad.csv"
    sub(["a", "b", "a"], ["x", "y", "z"]).to_csv(bad, index=False)
    assert main(["check", str(bad), "--test", str(test_csv)]) == 1
    assert "row 3: id 'a' appears more than once" in capsys.readouterr().err
