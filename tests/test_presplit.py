"""Punctuation split before tokenizing: the text map, the offsets back to the original context, the labels, and
the setting saved with a model and enforced at inference."""
import shutil

import pytest

from src.data import presplit
from src.data.features import prepare_eval_features, prepare_train_features

HINDI = 'भारत का विद्रोह (1857-58) "सिपाही विद्रोह" कहलाता है; इसमें 1,857 सैनिक, 2.5% लोग थे। क्या यह सच है?'
TAMIL = "சென்னை, (தமிழ்நாடு). இது 'பெரிய' நகரம்: 12:30 மணி! ஆமாம்… சரி?"
DIGITS = "१८५७, १,८५७ और ௧௮௫௭."   # Devanagari and Tamil digits


def fresh(tiny_dirs, name, split):
    """A tokenizer of its own (the session fixture is shared: configure() records the setting in it)."""
    from transformers import AutoTokenizer
    return presplit.configure(AutoTokenizer.from_pretrained(tiny_dirs[name]), split, training=True)


@pytest.mark.parametrize("text", [HINDI, TAMIL, DIGITS, "", " , ", "(", "a,b", "x।"])
def test_the_map_sends_every_character_back_and_inserts_only_spaces(text):
    split, index = presplit.split_punctuation(text)
    assert len(index) == len(split) + 1 and index[-1] == len(text)
    kept = [j for j in range(len(split)) if j == len(split) - 1 or index[j] != index[j + 1]]
    assert "".join(split[j] for j in kept) == text            # dropping the inserted spaces gives the text back
    assert all(split[j] == " " for j in range(len(split)) if j not in set(kept))
    assert index == sorted(index)


def test_marks_are_split_from_words_and_numbers_stay_whole():
    split = presplit.split_punctuation(HINDI)[0]
    for piece in ["( 1857-58 )", '" सिपाही', 'विद्रोह "', "है ;", "1,857", "सैनिक ,", "2.5 %", "थे ।", "है ?"]:
        assert piece in split, piece
    split = presplit.split_punctuation(TAMIL)[0]
    for piece in ["சென்னை ,", "( தமிழ்நாடு ).", "' பெரிய '", "நகரம் :", "12:30", "மணி !", "ஆமாம் …", "சரி ?"]:
        assert piece in split, piece
    assert presplit.split_punctuation(DIGITS)[0] == "१८५७ , १,८५७ और ௧௮௫௭ ."


@pytest.mark.parametrize("name", ["tiny-xlmr", "tiny-bert"])
@pytest.mark.parametrize("text", [HINDI, TAMIL])
def test_context_offsets_cover_the_same_original_text_with_and_without_the_split(tiny_dirs, name, text):
    """Every context token's span is a span of the original text, whole words stay the same text either way."""
    ex = {"id": ["a"], "question": ["क्या, यह?"], "context": [text]}
    for split in (False, True):
        tok = fresh(tiny_dirs, name, split)
        offsets = [o for o in prepare_eval_features(ex, tok, 512, 128)["offset_mapping"][0] if o is not None]
        assert offsets and all(0 <= a < b <= len(text) for a, b in offsets)
        pieces = "".join(text[a:b] for a, b in offsets)
        assert pieces.replace(" ", "") == "".join(text.split()).replace(" ", "")  # every character, once, in order


@pytest.mark.parametrize("answer", ["थे", "सैनिक", "2.5", "1857-58", "सिपाही विद्रोह"])
def test_an_answer_before_a_mark_comes_back_without_it(tiny_dirs, answer):
    """tiny-xlmr glues "थे।" into one piece (as e5-small glues "2.5%"): unsplit, the label can only end after the
    mark; split, the labelled span's text is the gold answer exactly."""
    start = HINDI.index(answer)
    ex = {"id": ["a"], "question": ["क्या?"], "context": [HINDI], "answer_text": [answer], "answer_start": [start]}
    got = {}
    for split in (False, True):
        tok = fresh(tiny_dirs, "tiny-xlmr", split)
        f = prepare_train_features(ex, tok, 512, 128)
        offsets = prepare_eval_features(ex, tok, 512, 128)["offset_mapping"][0]
        s, e = f["start_positions"][0], f["end_positions"][0]
        got[split] = HINDI[offsets[s][0]:offsets[e][1]]
    assert got[True] == answer
    if answer == "थे":
        assert got[False] == "थे।"


def test_the_setting_is_saved_with_the_tokenizer_and_enforced_at_inference(tiny_dirs, tmp_path):
    from src.infer.predict import load_model
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_dirs["tiny-xlmr"], model_dir)
    fresh(tiny_dirs, "tiny-xlmr", True).save_pretrained(model_dir)
    _, tok, _ = load_model(model_dir, device="cpu", max_length=128, doc_stride=48)
    assert presplit.enabled(tok)                             # predicts as trained, with nothing asked
    _, tok, _ = load_model(model_dir, device="cpu", max_length=128, doc_stride=48, presplit_punctuation=True)
    assert presplit.enabled(tok)
    with pytest.raises(ValueError, match="trained with presplit_punctuation"):
        load_model(model_dir, device="cpu", max_length=128, doc_stride=48, presplit_punctuation=False)
    fresh(tiny_dirs, "tiny-xlmr", False).save_pretrained(model_dir)
    with pytest.raises(ValueError, match="trained without presplit_punctuation"):
        load_model(model_dir, device="cpu", max_length=128, doc_stride=48, presplit_punctuation=True)


def test_a_tokenizer_with_no_record_counts_as_trained_without(tiny_dirs):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-xlmr"])
    assert not presplit.enabled(tok)
    with pytest.raises(ValueError, match="has no presplit_punctuation"):
        presplit.configure(tok, True, where="hub model")
    assert presplit.enabled(presplit.configure(tok, True, training=True))   # training may choose it


def test_the_boundary_count_sees_a_glued_mark_and_the_split_removes_it(tiny_dirs):
    """tiny-xlmr glues "थे।": unsplit, the best span for "थे" carries the danda (end inside a token, not exact);
    split, it is exact; strip_edges also fixes it, and loses "1857-58)"'s closing bracket when the gold has it."""
    import pandas as pd
    from transformers import AutoTokenizer

    from research.experiments.presplit_boundaries import boundary_table
    ctx = HINDI
    df = pd.DataFrame({"context": [ctx, ctx], "answer_text": ["थे", "(1857-58)"],
                       "answer_start": [ctx.index("थे"), ctx.index("(1857-58)")]})
    t = boundary_table({"hindi": df}, {"tiny-xlmr": AutoTokenizer.from_pretrained(tiny_dirs["tiny-xlmr"])})
    unsplit, split = (t[t["presplit"] == s].iloc[0] for s in (False, True))
    assert unsplit["end inside a token"] == 0.5 and unsplit["best span = gold"] == 0.5
    assert split["end inside a token"] == 0.0 and split["best span = gold"] == 1.0
    assert split["best span = gold after strip_edges"] == 0.5     # strip_edges cuts the gold's own brackets
