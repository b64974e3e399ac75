"""Notebooks 01/02 logic: EDA tables and the tokenizer report on data whose answers we control."""
import pandas as pd

from src.eda import lengths, summary
from src.tokenizer_report import answer_alignment, tokenizer_report


def test_answer_alignment_detects_misaligned_and_glued_edges():
    ctx = "विद्रोह (1857), राम"
    start = ctx.index("1857")
    # one token "(1857)," covering the answer plus punctuation on both sides
    glued = answer_alignment(ctx, start, "1857", [(8, 15)])
    assert glued == {"start_aligned": False, "end_aligned": False, "glued_punctuation": True}
    clean = answer_alignment(ctx, start, "1857", [(8, 9), (9, 13), (13, 15)])
    assert clean == {"start_aligned": True, "end_aligned": True, "glued_punctuation": False}
    # a word piece that ends inside the answer is misaligned but carries no punctuation
    split = answer_alignment("राम अयोध्या", 4, "अयो", [(0, 3), (4, 11)])
    assert split["start_aligned"] and not split["end_aligned"] and not split["glued_punctuation"]


def test_tokenizer_report_on_both_kinds(tokenizer):
    df = pd.DataFrame({"id": ["a", "b"], "context": ["राम का जन्म अयोध्या में हुआ। " * 40, "சென்னை நகரம்."],
                       "question": ["राम का जन्म कहाँ?", "எந்த நகரம்?"], "answer_text": ["अयोध्या", "சென்னை"],
                       "answer_start": [12, 0], "language": ["hindi", "tamil"]})
    r = tokenizer_report(df, tokenizer, max_length=64, doc_stride=16)
    assert r["tokens_per_word"] >= 1.0
    assert r["windows_per_context_max"] > 1 and r["windows_per_context_mean"] > 1
    assert 0 <= r["answers_both_aligned"] <= 1 and 0 <= r["answers_glued_punctuation"] <= 1


def test_eda_tables():
    df = pd.DataFrame({"id": ["a", "b", "c"], "context": ["x y z w", "x y", "x y"], "question": ["q", "q r", "q"],
                       "answer_text": ["z", "x", "y"], "answer_start": [4, 0, 2], "language": ["hindi", "tamil", "tamil"]})
    L = lengths(df)
    assert L["context_words"].tolist() == [4, 2, 2] and L["answer_position"].tolist() == [4 / 7, 0.0, 2 / 3]
    s = summary(df)
    assert s.loc["tamil", "rows"] == 2 and s.loc["tamil", "contexts"] == 1 and s.loc["hindi", "context_chars_max"] == 7
