"""Blending: token level for aligned windows, character level across tokenizers, word vote across backbones."""
import numpy as np
import pandas as pd
import pytest

from src.blend.combine import (
    BlendConfig,
    average_logits,
    blend_char_scores,
    blend_spans,
    char_blend_spans,
    char_scores,
    decode_char_spans,
    ensemble_spans,
    vote_name,
    vote_span,
    vote_threshold,
)
from src.blend.fit import tune_weights
from src.data.features import frame_to_batch, prepare_eval_features
from src.data.synthetic import make_synthetic_qa
from src.infer.postprocess import best_spans, postprocess_qa_predictions
from src.infer.predict import WindowLogits, offsets_array
from src.infer.span_text import span_texts


def long_examples(n=24, seed=5):
    """Synthetic questions whose contexts span several windows, answer somewhere in the middle."""
    df = make_synthetic_qa(n, seed=seed).reset_index(drop=True)
    pad = make_synthetic_qa(3 * n, seed=seed + 1)["context"].tolist()
    ctx, starts = [], []
    for i, (c, s) in enumerate(zip(df["context"], df["answer_start"], strict=True)):
        before, after = " ".join(pad[3 * i:3 * i + 2]) + " ", " " + pad[3 * i + 2]
        ctx.append(before + c + after)
        starts.append(s + len(before))
    return df.assign(context=ctx, answer_start=starts)


def char_model(df, seed, peak=8.0, answers=None):
    """A 'model' defined on characters: high start score where the answer starts, high end score where it ends
    (`answers`: per row (start, end) characters), noise elsewhere."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (c, s, a) in enumerate(zip(df["context"], df["answer_start"], df["answer_text"], strict=True)):
        st, en = rng.normal(0, 1, len(c)), rng.normal(0, 1, len(c))
        a0, a1 = answers[i] if answers is not None else (s, s + len(a))
        st[a0] += peak
        en[a1 - 1] += peak
        out.append((st, en))
    return out


def project(df, model, tokenizer, max_length=64, stride=16):
    """The char model as a token model under `tokenizer`: a token's start logit is the score of its first
    character, its end logit that of its last character; real windows from the project's feature code."""
    feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), tokenizer, max_length, stride)
    width = max(len(x) for x in feats["input_ids"])
    offsets = offsets_array(feats["offset_mapping"], width)
    row = pd.Index(df["id"]).get_indexer(feats["example_id"])
    start = np.full(offsets.shape[:2], -np.inf, dtype=np.float16)
    end = start.copy()
    for w, r in enumerate(row):
        st, en = model[r]
        for t, (a, b) in enumerate(offsets[w]):
            if a >= 0 and b > a:
                start[w, t], end[w, t] = st[a], en[b - 1]
            elif t < len(feats["input_ids"][w]):
                start[w, t] = end[w, t] = 0.0     # CLS/question/SEP: finite, as a model's would be
    return WindowLogits(np.asarray(feats["example_id"]), start, end, offsets)


@pytest.fixture(scope="module")
def tokenizers(tiny_dirs):
    from transformers import AutoTokenizer
    return {n: AutoTokenizer.from_pretrained(tiny_dirs[n]) for n in ("tiny-bert", "tiny-xlmr")}


def texts(df, spans):
    return span_texts(df["context"], spans)


def test_model_blended_with_itself_under_two_tokenizers_gives_its_own_answer(tokenizers):
    df = long_examples()
    m = char_model(df, seed=0)
    bert, xlmr = project(df, m, tokenizers["tiny-bert"]), project(df, m, tokenizers["tiny-xlmr"])
    assert len(bert) > 2 * len(df) and len(xlmr) > 2 * len(df)          # several windows per context
    assert not np.array_equal(bert.offsets[:, :20], xlmr.offsets[:, :20])  # really other tokenizations
    own_bert = texts(df, best_spans(df["id"], bert, max_answer_length=64))
    own_xlmr = texts(df, best_spans(df["id"], xlmr, max_answer_length=64))
    assert own_bert == own_xlmr == df["answer_text"].tolist()
    blended = texts(df, char_blend_spans(df, [bert, xlmr]))
    assert blended == df["answer_text"].tolist()


def test_weights_decide_between_tokenizers_that_disagree(tokenizers):
    df = long_examples()
    # model B points one word further than the gold answer (the word after it)
    other = []
    for c, s, a in zip(df["context"], df["answer_start"], df["answer_text"], strict=True):
        nxt = c.index(" ", s + len(a)) + 1
        other.append((nxt, c.find(" ", nxt) if c.find(" ", nxt) > 0 else len(c)))
    a = project(df, char_model(df, seed=1), tokenizers["tiny-bert"])
    b = project(df, char_model(df, seed=2, answers=other), tokenizers["tiny-xlmr"])
    gold = df["answer_text"].tolist()
    wrong = [c[x:y] for c, (x, y) in zip(df["context"], other, strict=True)]
    assert texts(df, char_blend_spans(df, [a, b], [3, 1])) == gold
    assert texts(df, char_blend_spans(df, [a, b], [1, 3])) == wrong
    # tuned weights find the model that is right, and score at least as well as equal weights
    lengths = df["context"].str.len().to_numpy()
    cs = [char_scores(df["id"].to_numpy(), lengths, x) for x in (a, b)]
    gold_series = pd.Series(gold)
    w, score = tune_weights(df, cs, gold_series)
    assert w[0] > w[1] and score == 1.0


def test_char_level_decode_of_one_window_equals_token_level(tokenizers):
    """One model, one window per context, no n-best or length limit binding: the character-level path must give
    exactly the token-level answer, with real tokenizers and random logits. (With n-best 20 they may differ: the
    token-level top 20 also holds question tokens, which are then dropped.)"""
    df = make_synthetic_qa(40, seed=11)
    rng = np.random.default_rng(0)
    for tok in tokenizers.values():
        feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), tok, 256, 64)
        assert len(feats["input_ids"]) == len(df)
        width = max(len(x) for x in feats["input_ids"])
        x = WindowLogits(np.asarray(feats["example_id"]), rng.normal(0, 3, (len(df), width)).astype(np.float16),
                         rng.normal(0, 3, (len(df), width)).astype(np.float16),
                         offsets_array(feats["offset_mapping"], width))
        ref = postprocess_qa_predictions(df, x, n_best_size=1000, max_answer_length=1000)
        got = texts(df, char_blend_spans(df, [x], n_best_size=10_000, max_answer_chars=10_000))
        assert got == [ref[i] for i in df["id"]]
        # blending a model with itself changes nothing; same windows blend at token level
        assert texts(df, char_blend_spans(df, [x, x], [0.3, 0.7], 10_000, 10_000)) == got
        y = x.with_logits(x.start.astype(np.float32) * 0.5, x.end.astype(np.float32) * 0.5)
        assert np.array_equal(blend_spans(df, [x, y]), best_spans(df["id"], average_logits([x, y])))


def test_blending_real_tiny_bert_and_tiny_xlmr(tiny_dirs):
    from src.blend.ensemble import predict_answers

    df = long_examples(8)
    answers = predict_answers(df, [str(tiny_dirs["tiny-bert"]), str(tiny_dirs["tiny-xlmr"])])
    assert set(answers) == set(df["id"])
    assert all(a and a in c for a, c in zip(df["id"].map(answers), df["context"], strict=True))


def test_ensemble_votes_only_with_enough_backbones(tokenizers):
    df = long_examples(10)
    m = char_model(df, seed=3)
    x = project(df, m, tokenizers["tiny-bert"])
    y = project(df, m, tokenizers["tiny-xlmr"])
    gold = df["answer_text"].tolist()
    assert texts(df, ensemble_spans(df, [x, y], ["a", "b"])) == gold                    # char-level blend
    assert texts(df, ensemble_spans(df, [x, y, x], ["a", "b", "c"], cfg=BlendConfig(vote_k=2))) == gold
    assert texts(df, ensemble_spans(df, [x, y, x, y], ["a", "b", "c", "d"])) == gold   # four: the majority vote


C = "राम का जन्म अयोध्या में हुआ था"
W = {w: (C.index(w), C.index(w) + len(w)) for w in C.split()}


def span(first, last):
    return W[first][0], W[last][1]


VOTES = [
    ([span("जन्म", "में"), span("अयोध्या", "हुआ"), span("अयोध्या", "अयोध्या")], 2, "अयोध्या में"),
    ([span("जन्म", "में"), span("अयोध्या", "हुआ"), span("अयोध्या", "अयोध्या")], 3, "अयोध्या"),
    ([span("जन्म", "में"), span("अयोध्या", "हुआ"), span("अयोध्या", "अयोध्या")], 1, "जन्म अयोध्या में हुआ"),
    # a span cutting into a word votes for that word
    ([(W["जन्म"][0] + 1, W["अयोध्या"][0] + 2), span("अयोध्या", "अयोध्या"), (-1, -1)], 2, "अयोध्या"),
    # empty answers vote for nothing; two empty of three: no kept word -> the first (strongest) backbone's
    ([(-1, -1), (-1, -1), span("राम", "का")], 2, ""),
    ([span("राम", "का"), (-1, -1), (-1, -1)], 2, "राम का"),
    # no kept word: three disjoint answers -> the first backbone's answer
    ([span("हुआ", "था"), span("राम", "राम"), span("जन्म", "जन्म")], 2, "हुआ था"),
    # kept words in two runs: the run with more votes wins ...
    ([span("राम", "का"), span("राम", "का"), span("राम", "था"), span("हुआ", "था")], 3, "राम का"),
    # ... on equal votes the longer run, then the earlier one
    ([span("राम", "राम"), span("राम", "राम"), span("हुआ", "था"), span("हुआ", "था")], 2, "हुआ था"),
    ([span("राम", "राम"), span("राम", "राम"), span("था", "था"), span("था", "था")], 2, "राम"),
]


@pytest.mark.parametrize("spans, k, expected", VOTES)
def test_vote_span(spans, k, expected):
    a, b = vote_span(C, spans, k)
    assert ("" if a < 0 else C[a:b]) == expected


def test_vote_needs_a_possible_k():
    with pytest.raises(ValueError, match="k=4 for n=3"):
        vote_span(C, [span("राम", "राम")] * 3, 4)
    with pytest.raises(ValueError, match="at least one answer"):
        vote_threshold(0)


@pytest.mark.parametrize("n, need, tie", [(1, 1, False), (2, 2, False), (3, 2, False), (4, 3, True),
                                          (5, 3, False), (6, 4, True)])
def test_the_default_vote_is_a_majority_and_a_tie_goes_to_the_strongest(n, need, tie):
    assert vote_threshold(n) == (need, tie)
    assert vote_threshold(n, 1) == (1, False)     # an explicit k is exactly "k of n"


def test_with_three_families_the_default_vote_is_the_winners_2_of_3():
    three = [case for case in VOTES if len(case[0]) == 3]
    assert len(three) >= 6
    for spans, _, _ in three:
        assert vote_span(C, spans) == vote_span(C, spans, 2), spans
    assert vote_name(3) == "vote 2 of 3" and vote_name(3, 0, "families") == "vote 2 of 3 families"
    assert vote_name(4) == "vote 3 of 4, a tie to the strongest" and vote_name(4, 2) == "vote 2 of 4"


@pytest.mark.parametrize("spans, expected", [
    # three of four agree: the fourth is outvoted
    ([span("राम", "राम"), span("अयोध्या", "अयोध्या"), span("अयोध्या", "अयोध्या"), span("अयोध्या", "अयोध्या")],
     "अयोध्या"),
    # 2-2: the side of the strongest (first) family wins, whichever side that is
    ([span("राम", "का"), span("राम", "का"), span("हुआ", "था"), span("हुआ", "था")], "राम का"),
    ([span("हुआ", "था"), span("राम", "का"), span("राम", "का"), span("हुआ", "था")], "हुआ था"),
    # a pair without the strongest is no majority: no kept word -> the strongest family's own answer
    ([span("जन्म", "जन्म"), span("राम", "का"), span("राम", "का"), span("हुआ", "था")], "जन्म"),
    # overlapping answers: 3 votes on अयोध्या, में 2 with the strongest, जन्म and हुआ 1 each
    ([span("अयोध्या", "में"), span("अयोध्या", "अयोध्या"), span("जन्म", "अयोध्या"), span("में", "हुआ")],
     "अयोध्या में"),
    # ... the same without the strongest on में: it is dropped
    ([span("अयोध्या", "अयोध्या"), span("अयोध्या", "में"), span("जन्म", "अयोध्या"), span("में", "हुआ")], "अयोध्या"),
    # empty answers vote for nothing: two empty, a 1-1 tie left: the strongest's side
    ([span("राम", "का"), (-1, -1), span("हुआ", "था"), (-1, -1)], "राम का"),
])
def test_vote_of_four_families_a_majority_with_the_strongests_casting_vote(spans, expected):
    a, b = vote_span(C, spans)
    assert ("" if a < 0 else C[a:b]) == expected


def test_char_scores_take_the_covering_token_and_average_windows():
    ctx = "ab cd"
    # two windows of one example: tokens "ab" and "cd" in the first, "cd" alone in the second
    off = np.array([[[0, 2], [3, 5]], [[3, 5], [-1, -1]]], dtype=np.int32)
    x = WindowLogits(np.array(["x", "x"]), np.array([[1, 2], [4, -np.inf]], np.float16),
                     np.array([[6, 6], [0, -np.inf]], np.float16), off)
    cs = char_scores(["x"], [len(ctx)], x)
    nan = np.nan
    np.testing.assert_array_equal(cs.start, [1, nan, nan, 3, nan])   # "cd" starts: mean of 2 and 4
    np.testing.assert_array_equal(cs.end, [nan, 6, nan, nan, 3])     # "cd" ends: mean of 6 and 0
    np.testing.assert_array_equal(cs.covered, [1, 1, 0, 1, 1])
    assert ctx[slice(*decode_char_spans(cs)[0])] == "ab"               # 1+6 beats 3+3 and 1+3
    np.testing.assert_allclose(blend_char_scores([cs, cs], [1, 3]).start, cs.start)
    # another tokenizer splits "ab" into "a" + "b": a span may not start at "b" (inside the first model's "ab")
    y = WindowLogits(np.array(["x"]), np.array([[0, 9, 0]], np.float16), np.array([[0, 0, 0]], np.float16),
                     np.array([[[0, 1], [1, 2], [3, 5]]], dtype=np.int32))
    both = blend_char_scores([cs, char_scores(["x"], [len(ctx)], y)])
    np.testing.assert_array_equal(np.isnan(both.start), [0, 1, 1, 0, 1])
    with pytest.raises(ValueError, match="run past the end"):
        char_scores(["x"], [3], x)


def test_share_offsets_keeps_one_array_per_tokenizer(tokenizers):
    from src.infer.predict import share_offsets

    df = long_examples(4)
    m = char_model(df, seed=4)
    a, b, c = (project(df, m, tokenizers[n]) for n in ("tiny-bert", "tiny-xlmr", "tiny-bert"))
    assert a.offsets is not c.offsets
    shared = share_offsets([a, b, c])
    assert shared[0].offsets is shared[2].offsets and shared[1].offsets is not shared[0].offsets
    assert texts(df, blend_spans(df, shared)) == texts(df, blend_spans(df, [a, b, c]))
