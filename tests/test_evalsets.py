"""The evaluation sets are the agreed ones and no evaluation question or article is in any training source."""
import pandas as pd
import pytest

from research.experiments import evalsets
from src.common.paths import SHARED_DIR

needs_data = pytest.mark.skipif(not (SHARED_DIR / "data" / "xquad").is_dir(),
                                reason="shared real data not present on this machine")


@pytest.fixture(scope="module")
def built():
    return evalsets.eval_sets(), evalsets.train_sources()


@needs_data
def test_evaluation_sets_have_the_agreed_sizes_and_every_gold(built):
    evals, trains = built
    assert evalsets.sizes(evals) == {"xquad_hi": 265, "xquad_in_hi": 195, "xquad_in_ta": 170, "tydi_te": 669,
                                     "tydi_bn": 113}
    assert set(evals["xquad_hi"]["title"]) == set(evalsets.xquad_titles()[36:]) and len(evalsets.xquad_titles()) == 48
    for name, df in evals.items():
        assert set(df["eval_set"]) == {name} and set(df["language"]) == {evalsets.LANGUAGE[name]}
        assert df["answers"].map(len).min() >= 1
    # XQuAD-IN ta split by XQuAD-hi's title order: 658 train, 170 evaluate (its own file order would give 651/177)
    assert evalsets.sizes(trains) == {"tydi_en": 3694, "tydi_en_dev": 440, "squad_dev": 8123, "xquad_hi_train": 925,
                                      "xquad_in_ta_train": 658}


@needs_data
def test_no_evaluation_id_or_title_in_any_training_source(built):
    evals, trains = built
    assert evalsets.leaks(evals, trains) == []
    # the check itself sees a leak: one held-out XQuAD question (a SQuAD dev id) put back into SQuAD
    planted = dict(trains, squad_dev=pd.concat([trains["squad_dev"], evals["xquad_hi"].iloc[:1]]))
    found = evalsets.leaks(evals, planted)
    assert any("xquad_hi and squad_dev share 1 id" in f for f in found)
    assert any("title" in f for f in found)
    # and a held-out paragraph hidden inside a training context under another id and title
    paragraph = evals["xquad_in_ta"]["context"].iloc[0]
    hidden = trains["tydi_en"].iloc[:1].assign(context="Intro.\n" + paragraph + "\nOutro.")
    found = evalsets.leaks(evals, dict(trains, tydi_en=pd.concat([trains["tydi_en"], hidden])))
    assert found == ["tydi_en holds 1 context(s) or paragraph(s) of xquad_in_ta, e.g. " + repr([paragraph[:60]])]


@needs_data
def test_both_shapes_hold_the_same_questions_and_golds_only_the_context_differs(built):
    paragraphs, trains = built
    articles = evalsets.eval_sets(shape="article")
    assert list(articles) == [n + "_article" for n in evalsets.EVAL_SETS]
    same = ["id", "question", "answer_text", "language", "title", "source"]
    for name, para in paragraphs.items():
        art = articles[name + "_article"]
        assert set(art["eval_set"]) == {name + "_article"}
        pd.testing.assert_frame_equal(art[same], para[same])
        assert art["answers"].tolist() == para["answers"].tolist()
        assert (art["paragraph"] == para["context"]).all()
        assert all(p in c for p, c in zip(para["context"], art["context"], strict=True))
        assert all(c.startswith(a, s) for c, a, s in zip(art["context"], art["answer_text"], art["answer_start"],
                                                          strict=True))
    # XQuAD articles hold about 5 paragraphs: every context is over twice as long, about 5x on average (TyDi:
    # only the titles with several passages grow)
    for name in ("xquad_hi", "xquad_in_hi", "xquad_in_ta"):
        ratio = articles[name + "_article"]["context"].str.len() / paragraphs[name]["context"].str.len()
        assert ratio.min() > 2 and ratio.mean() > 4
        assert articles[name + "_article"]["context"].nunique() == 12
    assert evalsets.leaks(articles, trains) == []
    with pytest.raises(ValueError, match="shape must be one of"):
        evalsets.eval_sets(shape="page")


def test_whole_articles_join_paragraphs_in_order_and_move_each_answer():
    df = pd.DataFrame({"id": ["a", "b", "c", "d"], "title": ["T", "T", "U", "T"],
                       "context": ["one two", "three four", "five", "one two"],
                       "question": "q", "answer_text": ["two", "three", "five", "one"], "answer_start": [4, 0, 0, 0]})
    out = evalsets.whole_articles(df, sep="\n")
    assert out["context"].tolist() == ["one two\nthree four"] * 2 + ["five", "one two\nthree four"]
    assert out["answer_start"].tolist() == [4, 8, 0, 0]
    assert out["paragraph"].tolist() == df["context"].tolist()
    bad = df.assign(answer_start=[4, 1, 0, 0])            # b's offset is off by one in its paragraph
    with pytest.raises(ValueError, match="question b: answer_start 9"):
        evalsets.whole_articles(bad)


def test_combined_sets_keep_their_own_ids():
    a = pd.DataFrame({"id": ["q1", "q2"], "context": ["hindi one", "hindi two"], "eval_set": "xquad_hi"})
    b = pd.DataFrame({"id": ["q1", "q2"], "context": ["tamil one", "tamil two"], "eval_set": "xquad_in_ta"})
    both = evalsets.combined({"xquad_hi": a, "xquad_in_ta": b})
    assert list(both["id"]) == ["xquad_hi/q1", "xquad_hi/q2", "xquad_in_ta/q1", "xquad_in_ta/q2"]
    assert list(both["context"]) == ["hindi one", "hindi two", "tamil one", "tamil two"]


@needs_data
def test_the_real_sets_share_ids_so_they_are_scored_combined(built):
    evals, _ = built
    raw = pd.concat(evals.values())["id"]
    assert raw.duplicated().sum() > 300              # XQuAD and XQuAD-IN translate the same SQuAD questions
    assert not evalsets.combined(evals)["id"].duplicated().any()


def test_scoring_refuses_shared_ids_and_scores_each_example_on_its_own_context(tiny_dirs):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from src.data.synthetic import make_synthetic_qa
    from src.train.fold import TrainConfig, check_unique_ids, score_model

    ids = [f"q{i}" for i in range(6)]
    sets = {"hi": make_synthetic_qa(6, seed=1).assign(id=ids, eval_set="hi"),
            "ta": make_synthetic_qa(6, seed=2).assign(id=ids, eval_set="ta")}
    with pytest.raises(ValueError, match="6 duplicated ids"):
        check_unique_ids(pd.concat(sets.values()))
    valid = evalsets.combined(sets)
    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"])
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_dirs["tiny-bert"])
    _, oof, logits = score_model(model, tok, valid, TrainConfig(backbone="tiny-bert", max_length=64, doc_stride=16))
    context = valid.set_index("id")["context"]
    assert set(logits.example_id) == set(valid["id"])
    assert all(p in context[i] for i, p in zip(oof["id"], oof["prediction"], strict=True))
