"""The chaii-like data set: chaii's files and columns, whole-article contexts, a split by article that leaks nothing."""
import io
import json
import re

import pandas as pd
import pytest

from research.experiments import chaii_like, evalsets
from src.common.paths import SHARED_DIR
from src.data.load import load_chaii_csv

needs_data = pytest.mark.skipif(not (SHARED_DIR / "data" / "xquad").is_dir(),
                                reason="shared real data not present on this machine")


def frame(language, rows):
    """(id, title, context, answer_text, answer_start) rows as a loader's frame."""
    df = pd.DataFrame(rows, columns=["id", "title", "context", "answer_text", "answer_start"])
    return df.assign(question="q " + df["id"], language=language, source="xquad",
                     answers=[[a, a.upper()] for a in df["answer_text"]])


def test_split_puts_whole_articles_on_one_side_with_chaii_ids_and_every_gold():
    hindi = frame("hindi", [("s1", "A", "एक दो", "दो", 3), ("s2", "A", "तीन चार", "तीन", 0),
                            ("s3", "B", "पाँच", "पाँच", 0)])
    tamil = frame("tamil", [("s1", "A", "ஒன்று", "ஒன்று", 0), ("s4", "B", "இரண்டு மூன்று", "மூன்று", 7)])
    parts = chaii_like.split(hindi, tamil, ["A", "B"], n_train=1)
    train, test = parts["train"], parts["test"]
    assert train["source_id"].tolist() == ["s1", "s2", "s1"] and test["source_id"].tolist() == ["s3", "s4"]
    assert train["context"].tolist() == ["एक दो\nतीन चार", "एक दो\nतीन चार", "ஒன்று"]
    assert train["answer_start"].tolist() == [3, 6, 0]           # "एक दो" is 5 code points, then "\n"
    # chaii's ids are 9 hex digits; the same XQuAD id in two languages gets two ids
    ids = pd.concat([train["id"], test["id"]])
    assert all(re.fullmatch(r"[0-9a-f]{9}", i) for i in ids) and ids.is_unique
    out = chaii_like.files(parts)
    assert list(out["train.csv"].columns) == ["id", "context", "question", "answer_text", "answer_start", "language"]
    assert list(out["test.csv"].columns) == ["id", "context", "question", "language"]
    assert list(out["solution.csv"].columns) == ["id", "answer_text", "language", "answers"]
    assert [json.loads(a) for a in out["solution.csv"]["answers"]] == [["पाँच", "पाँच"], ["மூன்று", "மூன்று"]]
    with pytest.raises(ValueError, match="not in the title order"):
        chaii_like.split(hindi, tamil, ["A"])


def test_leaks_names_a_test_paragraph_title_or_id_in_training():
    hindi = frame("hindi", [("s1", "A", "एक दो", "दो", 3), ("s3", "B", "पाँच छह सात", "पाँच", 0)])
    tamil = frame("tamil", [("s4", "B", "இரண்டு மூன்று", "மூன்று", 7)])
    parts = chaii_like.split(hindi, tamil, ["A", "B"], n_train=1)
    other = pd.DataFrame({"id": ["x"], "title": ["Z"], "context": ["nothing here"]})
    assert chaii_like.leaks(parts, {"tydi_en": other}) == []
    # a test paragraph inside another source's context, under another id and title
    planted = other.assign(context="before இரண்டு மூன்று after")
    assert chaii_like.leaks(parts, {"tydi_en": planted}) == [
        "tydi_en holds 1 context(s) or paragraph(s) of chaii_like_test, e.g. ['இரண்டு மூன்று']"]
    found = chaii_like.leaks(parts, {"squad_dev": other.assign(id="s4", title="B")})
    assert found == ["chaii_like_test and squad_dev share 1 id(s), e.g. ['s4']",
                     "chaii_like_test and squad_dev share 1 title(s), e.g. ['B']"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("chaii_like")
    chaii_like.main(["--out", str(out), "--no-card"])
    return out


@needs_data
def test_the_real_files_load_as_chaii_files_with_whole_articles(written):
    train = load_chaii_csv(written / "train.csv", "train")        # every answer_start points at its answer
    test = load_chaii_csv(written / "test.csv", "test")
    assert train.groupby("language").size().to_dict() == {"hindi": 925, "tamil": 658}
    assert test.groupby("language").size().to_dict() == {"hindi": 265, "tamil": 170}
    assert train["context"].nunique() == 72 and test["context"].nunique() == 24      # 36 and 12 articles x 2
    chars = pd.concat([train, test]).drop_duplicates("context").groupby("language")["context"].apply(
        lambda c: c.str.len().mean())
    assert 3500 < chars["hindi"] < 4100 and 4300 < chars["tamil"] < 4900    # the shared README's ~3,800 / ~4,600
    solution = pd.read_csv(written / "solution.csv", dtype=str, keep_default_na=False)
    assert solution["id"].tolist() == test["id"].tolist()
    golds = solution["answers"].map(json.loads)
    assert all(g[0] == a for g, a in zip(golds, solution["answer_text"], strict=True))
    assert golds.map(lambda g: isinstance(g, list) and len(g) >= 1).all()   # XQuAD and XQuAD-IN: one gold each
    # the held-out XQuAD-hi questions and golds, now beside their whole article
    held = evalsets.eval_sets(shape="article")["xquad_hi_article"]
    hi = test[test["language"] == "hindi"]
    assert sorted(hi["question"]) == sorted(held["question"]) and set(hi["context"]) == set(held["context"])


@needs_data
def test_nothing_of_the_test_split_is_in_any_training_source(written):
    parts = chaii_like.split(*chaii_like.load())
    trains = evalsets.train_sources()
    assert chaii_like.leaks(parts, trains) == []
    # the check sees each kind of leak in the real data: a test paragraph joined into a training article,
    # a held-out question put back into SQuAD dev, a test article's title in TyDi
    test = parts["test"]
    bad_train = pd.concat([parts["train"], test.iloc[:1].assign(context="x\n" + test["paragraph"].iloc[0],
                                                                 title="Other", source_id="other", id="other")])
    assert len(chaii_like.leaks(dict(parts, train=bad_train), trains)) == 1
    squad = pd.concat([trains["squad_dev"], test.iloc[:1].assign(id=test["source_id"].iloc[0], title="Other",
                                                                 context="unrelated")])
    assert chaii_like.leaks(parts, dict(trains, squad_dev=squad)) == [
        f"chaii_like_test and squad_dev share 1 id(s), e.g. {[test['source_id'].iloc[0]]}"]
    tydi = trains["tydi_en"].assign(title=trains["tydi_en"]["title"].where(trains["tydi_en"].index > 0,
                                                                           test["title"].iloc[0]))
    assert any("share 1 title(s)" in f for f in chaii_like.leaks(parts, dict(trains, tydi_en=tydi)))


@needs_data
def test_the_card_reports_sizes_lengths_and_windows(tiny_dirs):
    from transformers import AutoTokenizer
    parts = chaii_like.split(*chaii_like.load())
    small = {k: v.groupby("language").head(3) for k, v in parts.items()}
    sample = pd.read_csv(io.StringIO("id,context,question,language\na1,एक दो तीन,क्या?,hindi\n"), dtype=str)
    text = chaii_like.card(small, AutoTokenizer.from_pretrained(tiny_dirs["tiny-xlmr"]), "tiny-xlmr", sample)
    assert "questions per split and language" in text and "256/96" in text and "512/192" in text
    assert "chaii public test rows" in text and "4000 words" in text
