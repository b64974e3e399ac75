"""The benchmark's inputs are what they claim to be (the timings themselves are `make bench`'s job)."""
import numpy as np
import pytest

from research.bench.blend_memory import simulated_logits
from research.bench.questions import HELD_OUT, XQUAD_HI, long_hindi_questions, xquad_frame
from src.blend.combine import BlendConfig, ensemble_spans

needs_xquad = pytest.mark.skipif(not XQUAD_HI.exists(), reason="shared XQuAD-hi data not mounted")


@needs_xquad
def test_long_hindi_questions_keep_their_answers():
    df = long_hindi_questions(100)
    assert len(df) == 100 and df["id"].is_unique and df["context"].nunique() == 48   # one per article first
    assert (df["context"].str.len() > 1500).all()                                     # whole articles
    for c, s, a in zip(df["context"], df["answer_start"], df["answer_text"], strict=True):
        assert c[s:s + len(a)] == a
    held = xquad_frame(articles=slice(36, None))
    assert set(held["id"]).isdisjoint(xquad_frame(articles=slice(0, 36))["id"])
    # the bench scores the e5 model (trained on articles 0-35) on whole held-out articles only
    bench = long_hindi_questions(64, articles=HELD_OUT)
    assert set(bench["id"]) <= set(held["id"]) and bench["context"].nunique() == 12


def test_simulated_13_models_blend_and_vote():
    examples, logits, backbones = simulated_logits(6)
    assert len(logits) == 13 and [backbones.count(b) for b in dict.fromkeys(backbones)] == [3, 5, 5]
    assert len({id(x.offsets) for x in logits}) == 3                                  # shared per tokenizer
    spans = ensemble_spans(examples, logits, backbones, cfg=BlendConfig())
    assert (spans[:, 0] >= 0).all() and (spans[:, 1] <= examples["context"].str.len().to_numpy()).all()
    assert np.all(spans[:, 1] > spans[:, 0])


def _windows(spec):
    """WindowLogits over the context "aa bb cc dd" (tokens 1-4; 0 is CLS), one window per {token: logit} dict
    (start and end alike; every other token -5)."""
    from src.infer.predict import NO_OFFSET, WindowLogits

    off = np.full((len(spec), 6, 2), NO_OFFSET, dtype=np.int32)
    off[:, 1:5] = [(0, 2), (3, 5), (6, 8), (9, 11)]
    x = np.full((len(spec), 6), -5.0)
    for w, logits in enumerate(spec):
        for tok, v in logits.items():
            x[w, tok] = v
    return WindowLogits(np.array(["q"] * len(spec)), x.astype(np.float16), x.astype(np.float16), off)


def test_pipeline_rule_normalizes_per_window_and_adds_up_repeated_answers():
    """The pipeline's span rule (per-window softmax with CLS, equal texts summed) can pick another span than
    utils_qa's raw logit sums: the agreement row of `make bench` depends on telling the two apart."""
    import pandas as pd

    from research.bench.pipeline_ref import pipeline_rule_answers
    from src.infer.postprocess import predict_texts

    examples = pd.DataFrame({"id": ["q"], "context": ["aa bb cc dd"]})
    # "dd" has the largest logits but CLS takes most of its window's softmax; "bb" is alone in its window
    logits = _windows([{0: 12.0, 4: 9.0}, {2: 6.0}])
    assert predict_texts(examples, logits)["q"] == "dd"                       # utils_qa: raw start+end logits
    assert pipeline_rule_answers(examples, logits, 15)["q"] == "bb"          # pipeline: per-window probabilities
    # "cc" scores 0.60 in one window, "bb" 0.40 in each of two overlapping windows: summed, "bb" wins
    cc, bb = {0: 0.75, 3: 2.0}, {0: 1.45, 2: 2.0}
    assert pipeline_rule_answers(examples, _windows([cc, bb]), 15)["q"] == "cc"
    assert pipeline_rule_answers(examples, _windows([cc, bb, bb]), 15)["q"] == "bb"
