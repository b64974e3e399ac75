"""Answer edges through the real path (features -> logits -> post-processing) with XLM-R-style tokenizers.

Two tokenizer habits can add or drop an edge character of an answer:
- the lone "▁" token (transformers#17454): SentencePiece emits "▁" alone before some characters (digits, symbols,
  Tamil numerals); its offsets cover either the space before the word (e5-small) or the word's first character
  (tiny-xlmr, the issue's case), so a span that starts or ends on it gains a space or a character;
- e5-small's fast tokenizer gives a word token offsets that include the space in front of it ("▁1857" -> " 1857").
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.common.paths import CACHE_DIR, SHARED_DIR
from src.data.features import frame_to_batch, prepare_eval_features, prepare_train_features
from src.infer.postprocess import predict_texts
from src.infer.predict import WindowLogits, offsets_array

LONE = "▁"
# (context, answer): answers after a lone "▁" (Tamil numerals, a currency sign) or after a space that e5 folds in
CASES = [
    ("வருடம் ௧௮௫௭ இல் நடந்தது", "௧௮௫௭"),
    ("वह वर्ष 1857 में हुआ", "1857"),
    ("मूल्य ₹500 था और", "₹500"),
    ("राम (अयोध्या) में रहे", "अयोध्या"),
    ("சென்னை நகரம் பெரியது", "நகரம்"),
    ("வருடம் ௧௮௫௭ இல் நடந்தது", "வருடம்"),    # answers just before a lone "▁"
    ("मूल्य ₹500 था और", "मूल्य"),
]


# e5-small ships XLM-R's SentencePiece vocabulary (250,002 pieces), the one xlm-roberta-large-squad2 and
# infoxlm-large load (test_e5_small_has_the_vocabulary_of_the_xlmr_backbones). A registered backbone is tested on
# its own tokenizer where its files are here (CHAII_MODELS), else on its tiny stand-in of the same kind.
@pytest.fixture(scope="module", params=["tiny-xlmr", "e5-small", "infoxlm-large"])
def xlmr_tokenizer(request, tiny_dirs):
    from transformers import AutoTokenizer

    if request.param == "tiny-xlmr":
        return AutoTokenizer.from_pretrained(tiny_dirs["tiny-xlmr"])
    if request.param != "e5-small":
        return AutoTokenizer.from_pretrained(registered_tokenizer_dir(request.param, tiny_dirs))
    path = CACHE_DIR / "e5-small"
    if not (path / "tokenizer.json").exists():
        if not SHARED_DIR.exists():
            pytest.skip(f"e5-small is not built in {path} and the shared folder {SHARED_DIR} that builds it is missing")
        from src.train.stand_ins import ensure_e5_small
        path = ensure_e5_small(path)
    return AutoTokenizer.from_pretrained(path)


def registered_tokenizer_dir(name: str, tiny_dirs) -> str:
    """A registered backbone's own model folder where it is on this machine, else its tiny stand-in's."""
    from conftest import MODELS_DIR

    from src.train.backbones import STANDS_IN_FOR, resolve_model_path

    try:
        path = resolve_model_path(name, MODELS_DIR)
    except FileNotFoundError:
        path = ""
    return path if path and Path(path).is_dir() else str(tiny_dirs[STANDS_IN_FOR[name]])


def test_every_stand_in_has_the_tokenizer_kind_of_what_it_stands_in_for():
    from src.train.backbones import REGISTRY, STANDS_IN_FOR

    assert {b: REGISTRY[t].tokenizer_kind for b, t in STANDS_IN_FOR.items()} == \
        {b: REGISTRY[b].tokenizer_kind for b in STANDS_IN_FOR}
    assert REGISTRY["infoxlm-large"].tokenizer_kind == "unigram" and STANDS_IN_FOR["infoxlm-large"] == "tiny-xlmr"


def test_e5_small_has_the_vocabulary_of_the_xlmr_backbones():
    """Why e5-small's runs above check InfoXLM's and XLM-R's tokenizer: the same SentencePiece vocabulary size as
    their config.json files declare (src/kaggle/sizing_facts.py SHAPES)."""
    from transformers import AutoTokenizer

    from src.kaggle.sizing_facts import SHAPES

    path = CACHE_DIR / "e5-small"
    if not (path / "tokenizer.json").exists():
        pytest.skip(f"e5-small is not built in {path}")
    tok = AutoTokenizer.from_pretrained(path)
    assert len(tok) == SHAPES["infoxlm-large"].vocab == SHAPES["xlm-roberta-large-squad2"].vocab == 250_002
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 250_001]) == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def _examples() -> pd.DataFrame:
    return pd.DataFrame([dict(id=f"q{i}", question="क्या?", context=c, answer_text=a, answer_start=c.index(a))
                         for i, (c, a) in enumerate(CASES)])


def _token_index(feats, i, char, side):
    """Index of the context token whose raw (tokenizer) span starts (side 0) or ends (side 1) at `char`."""
    return next(k for k, o in enumerate(feats["offset_mapping"][i]) if o is not None and o[side] == char)


def _logits(feats, peaks: list[tuple[list[int], list[int]]]) -> WindowLogits:
    """Fake logits: per window, start/end logits that rank the given token indices first, second, ..."""
    width = max(len(x) for x in feats["input_ids"])
    start, end = np.zeros((len(peaks), width), np.float32), np.zeros((len(peaks), width), np.float32)
    for w, (starts, ends) in enumerate(peaks):
        for rank, k in enumerate(starts):
            start[w, k] = 10.0 - rank
        for rank, k in enumerate(ends):
            end[w, k] = 10.0 - rank
    return WindowLogits(np.array(feats["example_id"]), start.astype(np.float16), end.astype(np.float16),
                        offsets_array(feats["offset_mapping"], width))


def test_the_cases_have_what_they_test(xlmr_tokenizer):
    """Guards the test itself: a lone "▁" before some answer (the issue's token) for both tokenizers."""
    tokens = [xlmr_tokenizer.tokenize(c) for c, _ in CASES]
    assert any(LONE in t for t in tokens)


def test_best_span_on_the_answer_tokens_gives_the_exact_answer(xlmr_tokenizer):
    """Start and end logits peak on the tokens the answer's characters fall in: the text is the answer, with no
    leading space (e5 folds the space into the word's offsets) and no character lost."""
    df = _examples()
    feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), xlmr_tokenizer, 64, 16)
    raw = xlmr_tokenizer(df["question"].tolist(), df["context"].tolist(), return_offsets_mapping=True)
    peaks = []
    for i, (a, s) in enumerate(zip(df["answer_text"], df["answer_start"], strict=True)):
        offs = raw["offset_mapping"][i]
        ctx_tokens = [k for k, q in enumerate(raw.sequence_ids(i)) if q == 1]
        toks = xlmr_tokenizer.convert_ids_to_tokens(raw["input_ids"][i])
        # tokens holding the answer's first and last character (not a lone "▁", which holds none of its own)
        first = next(k for k in ctx_tokens if offs[k][0] <= s < offs[k][1] and toks[k] != LONE)
        last = next(k for k in reversed(ctx_tokens) if offs[k][0] < s + len(a) <= offs[k][1] and toks[k] != LONE)
        peaks.append(([first], [last]))
    got = predict_texts(df, _logits(feats, peaks))
    assert got == dict(zip(df["id"], df["answer_text"], strict=True))


def test_a_span_on_a_lone_underline_token_gains_no_edge_character(xlmr_tokenizer):
    """transformers#17454: the best start (or end) logit on a lone "▁" next to the answer. That token covers no
    character of its own, so it cannot be an answer edge: the answer is still exactly the gold text."""
    df = _examples()
    feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), xlmr_tokenizer, 64, 16)
    raw = xlmr_tokenizer(df["question"].tolist(), df["context"].tolist(), return_offsets_mapping=True)
    peaks, tested = [], []
    for i, (a, s) in enumerate(zip(df["answer_text"], df["answer_start"], strict=True)):
        toks = xlmr_tokenizer.convert_ids_to_tokens(raw["input_ids"][i])
        offs = raw["offset_mapping"][i]
        ctx_tokens = [k for k, q in enumerate(raw.sequence_ids(i)) if q == 1]
        first = next(k for k in ctx_tokens if offs[k][0] <= s < offs[k][1] and toks[k] != LONE)
        last = next(k for k in reversed(ctx_tokens) if offs[k][0] < s + len(a) <= offs[k][1] and toks[k] != LONE)
        starts, ends = [first], [last]
        if toks[first - 1] == LONE:            # the lone "▁" just before the answer gets the best start logit
            starts = [first - 1, first]
            tested.append(("start", a))
        nxt = last + 1
        if nxt < len(toks) and toks[nxt] == LONE and raw.sequence_ids(i)[nxt] == 1:
            ends = [nxt, last]                  # ... or the one just after it the best end logit
            tested.append(("end", a))
        peaks.append((starts, ends))
    assert tested, "no lone '▁' next to an answer: the cases no longer test the issue"
    got = predict_texts(df, _logits(feats, peaks))
    assert got == dict(zip(df["id"], df["answer_text"], strict=True))


def test_training_labels_avoid_lone_underline_and_spaces(xlmr_tokenizer):
    """The start/end labels decode to the answer itself: no space in front, nothing after."""
    df = _examples()
    feats = prepare_train_features(frame_to_batch(df), xlmr_tokenizer, 64, 16)
    ev = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), xlmr_tokenizer, 64, 16)
    contexts = dict(zip(df["id"], df["context"], strict=True))
    answers = dict(zip(df["id"], df["answer_text"], strict=True))
    for i, (s, e, eid) in enumerate(zip(feats["start_positions"], feats["end_positions"], feats["example_id"],
                                        strict=True)):
        assert feats["has_answer"][i]
        a, b = ev["offset_mapping"][i][s][0], ev["offset_mapping"][i][e][1]
        assert contexts[eid][a:b] == answers[eid]


def test_tokenizer_audit_counts_these_answers_as_aligned(xlmr_tokenizer):
    """Notebook 02's audit measures the spans answers are cut from: a space folded into a word's offsets is no
    misaligned edge."""
    from src.train.tokenizer_report import tokenizer_report

    r = tokenizer_report(_examples().assign(language="x"), xlmr_tokenizer, 64, 16)
    assert r["answers_start_aligned"] == 1.0 and r["answers_end_aligned"] == 1.0
