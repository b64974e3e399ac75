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


# ---------------------------------------------------------------- score: the competition's metric
def solution_csv(tmp_path, rows, with_answers=True):
    """(id, language, golds) rows as a solution file like research.experiments.chaii_like writes."""
    import json
    df = pd.DataFrame({"id": [r[0] for r in rows], "answer_text": [r[2][0] for r in rows],
                       "language": [r[1] for r in rows]})
    if with_answers:
        df["answers"] = [json.dumps(r[2], ensure_ascii=False) for r in rows]
    path = tmp_path / "solution.csv"
    df.to_csv(path, index=False)
    return path


SOLUTION = [("a1", "hindi", ["राम श्याम"]), ("b2", "hindi", ["दिल्ली", "नई दिल्ली"]),
            ("c3", "tamil", ["சென்னை"]), ("d4", "tamil", ["A.D. 1857"])]


def test_score_a_perfect_submission_is_one_whichever_gold_it_matches(tmp_path):
    from src.blend.submission import read_solution, score_submission
    solution = read_solution(solution_csv(tmp_path, SOLUTION))
    scores = score_submission(sub(["d4", "c3", "b2", "a1"], ["a.d. 1857", "சென்னை", "नई दिल्ली", "राम श्याम"]),
                              solution)
    assert scores.loc[["hindi", "tamil", "all"], "jaccard"].tolist() == [1.0, 1.0, 1.0]
    assert scores["questions"].tolist() == [2, 2, 4]


def test_score_a_partial_submission_by_hand(tmp_path, capsys):
    path = solution_csv(tmp_path, SOLUTION)
    # a1: {राम} vs {राम, श्याम} = 1/2; b2: best of 1/3 ("दिल्ली") and 2/3 ("नई दिल्ली") = 2/3; c3: "" = 0; d4: 1
    preds = tmp_path / "partial.csv"
    sub(["a1", "b2", "c3", "d4"], ["राम", "नई दिल्ली शहर", "", "A.D. 1857"]).to_csv(preds, index=False)
    from src.blend.submission import read_solution, read_submission, score_submission
    scores = score_submission(read_submission(preds), read_solution(path))
    assert scores.loc["hindi", "jaccard"] == pytest.approx(7 / 12)
    assert scores.loc["tamil", "jaccard"] == pytest.approx(1 / 2)
    assert scores.loc["all", "jaccard"] == pytest.approx(13 / 24)
    assert (scores["lo"] <= scores["jaccard"]).all() and (scores["jaccard"] <= scores["hi"]).all()
    assert scores.loc["tamil", "lo"] == 0.0 and scores.loc["tamil", "hi"] == 1.0     # 2 questions: 0 and 1
    assert main(["score", str(preds), "--solution", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| hindi | 2 | 0.5833 |" in out and "| all | 4 | 0.5417 |" in out


@pytest.mark.parametrize("ids, message", [
    (["a1", "b2", "c3"], "1 test id(s) missing, e.g. ['d4']"),
    (["a1", "b2", "c3", "d4", "x9", "y8"], "row 5: id 'x9' is not in the test set (2 ids are not in the test set: "
                                           "['x9', 'y8'])"),
    (["a1", "b2", "c3", "d4", "a1"], "row 5: id 'a1' appears more than once"),
])
def test_score_rejects_missing_extra_or_duplicated_ids(tmp_path, capsys, ids, message):
    path = solution_csv(tmp_path, SOLUTION)
    preds = tmp_path / "bad.csv"
    sub(ids, ["x"] * len(ids)).to_csv(preds, index=False)
    assert main(["score", str(preds), "--solution", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_score_reads_a_written_submission_and_a_solution_without_answers(tmp_path, capsys):
    # as notebook 05 and the e2e write it (runs/e2e/submission.csv): id, PredictionString; an answer with a comma
    # and quotes, an empty answer and an answer "NA" must come back as those strings
    rows = [("e058fe3ac", "hindi", ['दिल्ली, "भारत"']), ("309cc4991", "hindi", ["NA"]), ("67c92b463", "tamil", [""])]
    path = solution_csv(tmp_path, rows, with_answers=False)
    test = pd.DataFrame({"id": [r[0] for r in rows]})
    written = write_submission(make_submission(test, {"e058fe3ac": 'दिल्ली, "भारत"', "309cc4991": "NA"}), test["id"],
                               tmp_path / "submission.csv")
    assert main(["score", str(written), "--solution", str(path)]) == 0
    assert "| all | 3 | 1.0000 |" in capsys.readouterr().out          # two empty answers score 1 (metric.jaccard)


def test_score_names_the_row_of_a_bad_solution(tmp_path, capsys):
    path = solution_csv(tmp_path, SOLUTION)
    path.write_text(path.read_text(encoding="utf-8").replace('"[""சென்னை""]"', "[broken"), encoding="utf-8")
    preds = tmp_path / "p.csv"
    sub(["a1", "b2", "c3", "d4"], ["x"] * 4).to_csv(preds, index=False)
    assert main(["score", str(preds), "--solution", str(path)]) == 1
    assert "row 3, field 'answers': id 'c3': answers is not JSON" in capsys.readouterr().err
