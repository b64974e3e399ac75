"""The benchmark's inputs are what they claim to be (the timings themselves are `make bench`'s job)."""
import numpy as np
import pytest

from src.bench import XQUAD_HI, long_hindi_questions, simulated_logits, xquad_frame
from src.blend import BlendConfig, ensemble_spans

needs_xquad = pytest.mark.skipif(not XQUAD_HI.exists(), reason="shared XQuAD-hi data not mounted")


@needs_xquad
def test_long_hindi_questions_keep_their_answers():
    df = long_hindi_questions(100)
    assert len(df) == 100 and df["id"].is_unique and df["context"].nunique() == 48   # one per article first
    assert (df["context"].str.len() > 1500).all()                                     # whole articles
    for c, s, a in zip(df["context"], df["answer_start"], df["answer_text"]):
        assert c[s:s + len(a)] == a
    held = xquad_frame(articles=slice(36, None))
    assert set(held["id"]).isdisjoint(xquad_frame(articles=slice(0, 36))["id"])


def test_simulated_13_models_blend_and_vote():
    examples, logits, backbones = simulated_logits(6)
    assert len(logits) == 13 and [backbones.count(b) for b in dict.fromkeys(backbones)] == [3, 5, 5]
    assert len({id(x.offsets) for x in logits}) == 3                                  # shared per tokenizer
    spans = ensemble_spans(examples, logits, backbones, cfg=BlendConfig())
    assert (spans[:, 0] >= 0).all() and (spans[:, 1] <= examples["context"].str.len().to_numpy()).all()
    assert np.all(spans[:, 1] > spans[:, 0])
