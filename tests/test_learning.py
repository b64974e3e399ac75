"""Learning happens: the pipeline's own training code takes a tiny backbone from chance to solving a task."""
import pytest

from src.data.synthetic import make_synthetic_qa
from src.infer.metric import mean_jaccard
from src.train.fold import TrainConfig, predict_frame, train_fold


@pytest.fixture(scope="module")
def task():
    # held-out questions come from another seed: other people, other values, other sentence orders
    return make_synthetic_qa(2000, seed=0), make_synthetic_qa(200, seed=1)


def test_tiny_bert_learns_synthetic_qa(task, tiny_dirs, tmp_path):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    train, held_out = task
    cfg = TrainConfig(backbone="tiny-bert", model_path=str(tiny_dirs["tiny-bert"]), output_dir=str(tmp_path),
                      epochs=6, max_length=128, doc_stride=48, save_steps=10_000, logging_steps=50).resolved()

    untrained = AutoModelForQuestionAnswering.from_pretrained(tiny_dirs["tiny-bert"])
    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-bert"])
    before, _ = predict_frame(untrained, tok, held_out, cfg)
    score_before = mean_jaccard(held_out["id"].map(before), held_out["answer_text"])

    result = train_fold(train, cfg, valid_df=held_out)
    score_after = result.metrics["jaccard_all"]
    print(f"held-out Jaccard: untrained {score_before:.3f} -> trained {score_after:.3f}")
    assert score_before < 0.3
    assert score_after >= 0.9
    assert result.metrics["jaccard_hindi"] >= 0.85 and result.metrics["jaccard_tamil"] >= 0.85
    assert result.metrics["train_seconds"] < 180
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]
    for name in ("model/config.json", "model/chaii_config.json", "oof.csv", "oof_logits.npz", "metrics.json"):
        assert (tmp_path / name).exists(), name
