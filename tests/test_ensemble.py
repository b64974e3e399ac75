"""Inference from model folders combined as blend.json says; notebook 05 reads blend.json."""
import pandas as pd
import pytest

from src.blend.ensemble import predict_answers, resolve_blend, use_blend
from src.blend.settings import BlendSettings
from src.blend.submission import make_submission
from src.common.paths import REPO_ROOT
from src.infer.answer_rules import AnswerRules


@pytest.fixture(scope="module")
def questions():
    return pd.read_csv(REPO_ROOT / "input" / "test.csv", dtype=str, keep_default_na=False).head(6)


def char(weights):
    return BlendSettings(scheme="char", backbones=list(weights), weights=weights)


def test_blend_json_weights_change_the_answers(tiny_dirs, questions):
    """The tiny models are untrained, so they disagree: all weight on one backbone gives that model's answers
    (a weight-0 model no longer restricts where a span may start or end)."""
    bert, xlmr = str(tiny_dirs["tiny-bert"]), str(tiny_dirs["tiny-xlmr"])
    alone = {d: predict_answers(questions, [d]) for d in (bert, xlmr)}
    assert alone[bert] != alone[xlmr]
    assert predict_answers(questions, [bert, xlmr], blend=char({"tiny-bert": 1.0, "tiny-xlmr": 0.0})) == alone[bert]
    assert predict_answers(questions, [bert, xlmr], blend=char({"tiny-bert": 0.0, "tiny-xlmr": 1.0})) == alone[xlmr]
    single = BlendSettings(scheme="single", backbones=["tiny-xlmr"], weights={"tiny-xlmr": 1.0})
    assert predict_answers(questions, [bert, xlmr], blend=single) == alone[xlmr]
    with pytest.raises(ValueError, match="not both"):
        predict_answers(questions, [bert, xlmr], [1, 1], blend=single)


def test_saving_logits_keeps_every_model_and_the_blend_answers_alike(tiny_dirs, questions, tmp_path):
    """A blend that uses one backbone answers as before; the saved logits hold every model, in the given order."""
    from src.blend.ensemble import load_logits

    bert, xlmr = str(tiny_dirs["tiny-bert"]), str(tiny_dirs["tiny-xlmr"])
    single = BlendSettings(scheme="single", backbones=["tiny-xlmr"], weights={"tiny-xlmr": 1.0})
    saved = predict_answers(questions, [bert, xlmr], blend=single, logits_dir=tmp_path / "test_logits")
    assert saved == predict_answers(questions, [xlmr])
    logits, backbones = load_logits(tmp_path / "test_logits")
    assert backbones == ["tiny-bert", "tiny-xlmr"] and all(set(x.example_id) == set(questions["id"]) for x in logits)


def test_a_blend_needs_its_backbones(tiny_dirs):
    with pytest.raises(ValueError, match=r"no model in model_dirs is \['rembert'\]"):
        use_blend([str(tiny_dirs["tiny-bert"])], char({"tiny-bert": 0.5, "rembert": 0.5}))
    assert resolve_blend("", [], "train.csv", "work") is None


def test_notebook_05_reads_blend_json(tmp_path, tiny_dirs, questions):
    from src.notebooks.run import run_notebook

    bert, xlmr = str(tiny_dirs["tiny-bert"]), str(tiny_dirs["tiny-xlmr"])
    data = tmp_path / "data"
    data.mkdir()
    questions.to_csv(data / "test.csv", index=False)
    BlendSettings(scheme="single", backbones=["tiny-xlmr"], weights={"tiny-xlmr": 1.0}).save(tmp_path / "blend.json")
    out = tmp_path / "submission.csv"
    run_notebook("05_submit", tmp_path, dict(data_dir=str(data), model_dirs=f"{bert},{xlmr}",
                                             blend=str(tmp_path / "blend.json"), output=str(out)), progress=False)
    sub = pd.read_csv(out, dtype=str, keep_default_na=False)
    expected = predict_answers(questions, [xlmr], rules=AnswerRules(whole_letters=True))   # notebook 05's rules
    assert sub.equals(make_submission(questions, expected))
    assert expected != predict_answers(questions, [bert, xlmr])     # the default scheme would answer otherwise


def test_saved_test_logits_come_back_per_model_in_order_with_their_backbones(tmp_path):
    import numpy as np

    from src.blend.ensemble import load_logits, save_logits
    from src.infer.predict import WindowLogits

    rng = np.random.default_rng(0)
    dirs = []
    for name in ("muril-large", "rembert", "muril-large"):
        d = tmp_path / f"{len(dirs)}" / name     # no chaii_config.json: the backbone is the folder's name
        d.mkdir(parents=True)
        dirs.append(str(d))
    logits = [WindowLogits(np.array(["a", "a", "b"]), rng.normal(size=(3, 8)).astype(np.float16),
                           rng.normal(size=(3, 8)).astype(np.float16), np.zeros((3, 8, 2), np.int32) + i)
              for i in range(3)]
    save_logits(logits, dirs, tmp_path / "test_logits")
    back, backbones = load_logits(tmp_path / "test_logits")
    assert backbones == ["muril-large", "rembert", "muril-large"]
    for x, y in zip(logits, back, strict=True):
        assert (x.start == y.start).all() and (x.offsets == y.offsets).all()
        assert list(x.example_id) == list(y.example_id)
