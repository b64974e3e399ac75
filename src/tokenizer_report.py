"""How each backbone's tokenizer sees chaii text (notebook 02): cost in tokens and windows, answer alignment."""
from __future__ import annotations

import unicodedata

import pandas as pd

from .features import frame_to_batch, lone_underline_id, prepare_eval_features, token_char_spans


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P") or ch in "।॥"


def answer_alignment(context: str, start: int, answer: str, offsets: list[tuple[int, int]]) -> dict:
    """Whether the answer's edges fall on token edges, and whether an edge token carries glued punctuation."""
    end = start + len(answer)
    spans = [(a, b) for a, b in offsets if b > a]
    starts, ends = {a for a, _ in spans}, {b for _, b in spans}
    first = next(((a, b) for a, b in spans if a <= start < b), None)
    last = next(((a, b) for a, b in spans if a < end <= b), None)
    glued = bool(
        (first and first[0] < start and any(_is_punct(c) for c in context[first[0]:start]))
        or (last and last[1] > end and any(_is_punct(c) for c in context[end:last[1]])))
    return {"start_aligned": start in starts, "end_aligned": end in ends, "glued_punctuation": glued}


def tokenizer_report(df: pd.DataFrame, tokenizer, max_length: int = 384, doc_stride: int = 128) -> dict:
    """Tokens per word, windows per context and answer-boundary statistics of one tokenizer over `df`."""
    contexts = df.drop_duplicates("context")
    enc = tokenizer(contexts["context"].tolist(), add_special_tokens=False, return_offsets_mapping=True)
    n_tokens = sum(len(x) for x in enc["input_ids"])
    n_words = int(contexts["context"].str.split().str.len().sum())
    feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), tokenizer, max_length, doc_stride)
    windows = pd.Series(feats["example_id"]).value_counts()
    out = {"tokens_per_word": n_tokens / max(n_words, 1), "windows_per_context_mean": float(windows.mean()),
           "windows_per_context_max": int(windows.max())}
    if "answer_text" in df:
        # the spans post-processing cuts answers from (whitespace trimmed, lone "▁" empty), not the raw offsets
        lone = lone_underline_id(tokenizer)
        offsets_of = {c: token_char_spans(c, o, ids, lone)
                      for c, o, ids in zip(contexts["context"], enc["offset_mapping"], enc["input_ids"])}
        rows = [answer_alignment(c, s, a, offsets_of[c])
                for c, s, a in zip(df["context"], df["answer_start"], df["answer_text"]) if a]
        r = pd.DataFrame(rows)
        out.update(answers_start_aligned=float(r["start_aligned"].mean()),
                   answers_end_aligned=float(r["end_aligned"].mean()),
                   answers_both_aligned=float((r["start_aligned"] & r["end_aligned"]).mean()),
                   answers_glued_punctuation=float(r["glued_punctuation"].mean()))
    return out


def compare_tokenizers(df: pd.DataFrame, tokenizers: dict, max_length: int = 384, doc_stride: int = 128) -> pd.DataFrame:
    """One row per tokenizer name, per language and overall."""
    rows = []
    for name, tok in tokenizers.items():
        for lang, part in [("all", df), *df.groupby("language")]:
            rows.append({"tokenizer": name, "language": lang, **tokenizer_report(part, tok, max_length, doc_stride)})
    return pd.DataFrame(rows).set_index(["tokenizer", "language"])


def load_available_tokenizers(names: list[str], models_dir) -> dict:
    """Tokenizers of the backbones found locally (under `models_dir` or as directories); says what is skipped."""
    from transformers import AutoTokenizer

    from .backbones import resolve_model_path

    out = {}
    for name in [n.strip() for n in names if n.strip()]:
        try:
            path = resolve_model_path(name, models_dir)
            out[name] = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, FileNotFoundError, ValueError) as e:
            print(f"skipping {name}: not available locally ({e})")
    if not out:
        raise FileNotFoundError(f"none of {names} is available under {models_dir}")
    return out
