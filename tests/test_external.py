"""External loaders on the real files in ../shared/data and on small broken files."""
import json

import pytest

from src.common.paths import REPO_ROOT as ROOT
from src.common.paths import SHARED_DIR
from src.data.external import load_chaii, load_squad_json, load_tydi_json, load_xquad_json, split_by_title
from src.data.load import DataError

DATA = SHARED_DIR / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared real data not present on this machine")


@needs_data
def test_real_files_load_with_valid_offsets():
    squad = load_squad_json(DATA / "squad/dev-v1.1.json")
    assert len(squad) == 10570 and squad.attrs["n_dropped"] == 0
    te = load_tydi_json(DATA / "tydiqa_goldp/telugu_tydiqa_dev.json")
    assert len(te) == 669 and set(te["language"]) == {"telugu"} and set(te["source"]) == {"tydi"}
    bn = load_tydi_json(DATA / "tydiqa_goldp/bengali_tydiqa_dev.json")
    assert len(bn) == 113 and set(bn["language"]) == {"bengali"}
    hi = load_xquad_json(DATA / "xquad/xquad.hi.json", language="hi")
    assert len(hi) == 1190 and set(hi["language"]) == {"hindi"} and hi["title"].nunique() == 48
    for df in (squad, te, bn, hi):
        for c, a, s in zip(df["context"], df["answer_text"], df["answer_start"], strict=True):
            assert c[s:s + len(a)] == a
        # the label is the first gold
        assert all(g[0] == a for g, a in zip(df["answers"], df["answer_text"], strict=True))
    # every distinct gold text is kept for evaluation: 604 of TyDi-te's 669 questions have two gold answers,
    # 24 of them with two different texts (the other 580 repeat the same span)
    assert (te["answers"].map(len) == 2).sum() == 24 and te["answers"].map(len).max() == 2


@needs_data
def test_split_by_title_keeps_articles_whole_and_parallel_questions_together():
    hi = load_xquad_json(DATA / "xquad/xquad.hi.json", language="hindi")
    en = load_xquad_json(DATA / "xquad/xquad.en.json", language="english")
    train, test = split_by_title(hi, 0.25, seed=0)
    assert not set(train["title"]) & set(test["title"])
    assert len(train) + len(test) == len(hi) and 0.15 < len(test) / len(hi) < 0.35
    en_train, en_test = split_by_title(en, 0.25, seed=0)
    assert set(en_test["id"]) == set(test["id"])  # same seed, same articles: no leak across languages
    assert set(split_by_title(hi, 0.25, seed=1)[1]["title"]) != set(test["title"])


def write(tmp_path, qas, context="Delhi is the capital of India.", name="bad.json"):
    p = tmp_path / name
    p.write_text(json.dumps({"version": "v2.0", "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": qas}]}]}), encoding="utf-8")
    return p


GOOD = {"id": "q1", "question": "What is the capital?", "answers": [{"text": "Delhi", "answer_start": 0}]}
IMPOSSIBLE = {"id": "q2", "question": "Who?", "answers": [], "is_impossible": True}
SHIFTED = {"id": "q3", "question": "Of what?", "answers": [{"text": "India", "answer_start": 3}]}


def test_squad_v2_impossible_kept_or_dropped(tmp_path):
    p = write(tmp_path, [GOOD, IMPOSSIBLE])
    kept = load_squad_json(p, impossible="keep")
    assert kept.set_index("id").loc["q2", "answer_text"] == "" and kept.set_index("id").loc["q2", "answer_start"] == -1
    assert list(load_squad_json(p, impossible="drop")["id"]) == ["q1"]


def test_every_distinct_gold_answer_is_kept(tmp_path):
    qa = dict(GOOD, answers=[{"text": "Delhi", "answer_start": 0}, {"text": "Delhi", "answer_start": 0},
                             {"text": "the capital", "answer_start": 12}])
    df = load_squad_json(write(tmp_path, [qa, IMPOSSIBLE]))
    assert df["answers"].tolist() == [["Delhi", "the capital"], [""]]
    assert df["answer_text"].tolist() == ["Delhi", ""]


def test_bad_offset_raises_naming_file_and_record_or_is_dropped_and_counted(tmp_path):
    p = write(tmp_path, [GOOD, SHIFTED, dict(GOOD, id="q1")])
    with pytest.raises(DataError) as e:
        load_squad_json(p)
    msg = str(e.value)
    assert "bad.json" in msg and "qas[1]" in msg and "'q3'" in msg and "occurs at 24" in msg
    df = load_squad_json(p, on_error="drop")
    assert list(df["id"]) == ["q1"] and df.attrs["n_dropped"] == 2
    assert any("duplicate id" in r for r in df.attrs["dropped"])


def test_broken_json_and_unknown_tydi_prefix(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"data": [', encoding="utf-8")
    with pytest.raises(DataError, match="broken.json: not valid JSON"):
        load_squad_json(p)
    with pytest.raises(DataError, match="language from the id prefix 'q1'"):
        load_tydi_json(write(tmp_path, [GOOD]))
    assert set(load_tydi_json(write(tmp_path, [dict(GOOD, id="bengali-1-0")]))["language"]) == {"bengali"}


def test_chaii_csv_goes_through_the_same_frame():
    df = load_chaii(ROOT / "input" / "train.csv")
    assert {"hindi", "tamil"} == set(df["language"]) and df["title"].str.len().eq(12).all()
