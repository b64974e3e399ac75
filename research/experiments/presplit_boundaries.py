"""Where gold answers end inside a token, without and with the punctuation split (`src.data.presplit`).

A model can only answer with whole tokens: the best span it can give for a gold answer is the shortest run of
tokens that covers it. When a piece joins the answer's last letter to the comma after it ("थी।", "2." "5%"), that
span carries the mark and, in word-level Jaccard, the whole word is lost. This counts, per tokenizer and language:
how often the answer's start or end falls inside a token, how often the covering span is the gold text exactly, and
the Jaccard that span scores (the ceiling a perfect model reaches), without the split, with it, and with the answer
rule it might replace (`AnswerRules.strip_edges`: marks and spaces dropped from the span's ends after prediction).
Tokenizing only: the same numbers on any machine.

Questions: every Hindi (XQuAD-hi) and Tamil (XQuAD-IN ta) question beside its paragraph, all 48 articles (no model
is trained or scored here, so nothing can leak). Tokenizers: e5-small's (XLM-R's SentencePiece vocabulary: what
XLM-R and, in kind, RemBERT do) when `make e5-small` has built it, and tiny-bert's WordPiece (the MuRIL stand-in: a
BERT basic tokenizer splits every punctuation mark already).

    python -m research.experiments.presplit_boundaries      # -> docs/presplit_boundaries.md
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from research.experiments.evalsets import DATA_DIR
from src.common.io import write_text
from src.common.paths import CACHE_DIR, REPO_ROOT
from src.data import presplit
from src.data.external import load_xquad_json
from src.data.features import lone_underline_id, token_char_spans
from src.infer.answer_rules import AnswerRules, apply_rules
from src.infer.metric import jaccard
from src.train.tokenizer_report import answer_alignment

TABLE = REPO_ROOT / "docs" / "presplit_boundaries.md"
SETS = {"hindi": "xquad/xquad.hi.json", "tamil": "xquad_in/xquad_in.ta.json"}
STRIP = AnswerRules(strip_edges=True)


def token_spans(context: str, tokenizer, split: bool) -> list[tuple[int, int]]:
    """The character spans of `context` a model can cut answers from (whitespace trimmed, as post-processing
    sees them), from the split text mapped back when `split`."""
    text, index = presplit.split_punctuation(context) if split else (context, None)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    spans = token_char_spans(text, enc["offset_mapping"], enc["input_ids"], lone_underline_id(tokenizer))
    spans = [s for s in spans if s[1] > s[0]]
    return [presplit.to_original(s, index) for s in spans] if split else spans


def covering_span(spans: list[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """The shortest run of tokens that holds [start, end): the best span a model can answer with."""
    inside = [(a, b) for a, b in spans if a < end and b > start]
    return (min(a for a, _ in inside), max(b for _, b in inside)) if inside else (start, end)


def answer_rows(df: pd.DataFrame, tokenizer, split: bool) -> pd.DataFrame:
    spans_of: dict[str, list[tuple[int, int]]] = {}
    rows = []
    for context, start, answer in zip(df["context"], df["answer_start"], df["answer_text"], strict=True):
        if context not in spans_of:
            spans_of[context] = token_spans(context, tokenizer, split)
        spans, start = spans_of[context], int(start)
        end = start + len(answer)
        a, b = covering_span(spans, start, end)
        sa, sb = apply_rules(context, (a, b), STRIP)
        aligned = answer_alignment(context, start, answer, spans)
        rows.append({"start_inside": not aligned["start_aligned"], "end_inside": not aligned["end_aligned"],
                     "exact": context[a:b] == answer, "exact_strip": context[sa:sb] == answer,
                     "jaccard": jaccard(context[a:b], answer), "jaccard_strip": jaccard(context[sa:sb], answer)})
    return pd.DataFrame(rows)


def boundary_table(frames: dict[str, pd.DataFrame], tokenizers: dict[str, object]) -> pd.DataFrame:
    """One row per tokenizer x language x (split or not): rates over that language's answers."""
    out = []
    for tname, tok in tokenizers.items():
        for lang, df in frames.items():
            for split in (False, True):
                r = answer_rows(df, tok, split)
                out.append({"tokenizer": tname, "language": lang, "presplit": split, "answers": len(r),
                            "start inside a token": r["start_inside"].mean(),
                            "end inside a token": r["end_inside"].mean(),
                            "best span = gold": r["exact"].mean(),
                            "best span = gold after strip_edges": r["exact_strip"].mean(),
                            "best span Jaccard": r["jaccard"].mean(),
                            "after strip_edges": r["jaccard_strip"].mean()})
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    t = table.copy()
    t["presplit"] = t["presplit"].map({False: "no", True: "yes"})
    for c in t.columns[4:]:
        t[c] = t[c].map(lambda v: f"{v:.3f}")
    head = ("Answer edges and tokens (`python -m research.experiments.presplit_boundaries`; tokenizing only, the same "
            "on any machine): every XQuAD-hi and XQuAD-IN ta question beside its paragraph. \"best span\" is the "
            "shortest run of tokens holding the gold answer, the best a model can answer; its Jaccard is the "
            "ceiling of a perfect model; \"after strip_edges\" applies that answer rule to it.\n\n")
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in t.itertuples(index=False)]
    return head + "\n".join(lines) + "\n"


def load_tokenizers() -> dict[str, object]:
    from transformers import AutoTokenizer

    from src.train.stand_ins import ensure_tiny
    out = {}
    e5 = CACHE_DIR / "e5-small"
    if (e5 / "tokenizer_config.json").is_file() or (e5 / "tokenizer.json").is_file():
        out["e5-small (SentencePiece, XLM-R's vocabulary)"] = AutoTokenizer.from_pretrained(e5)
    else:
        print(f"e5-small not built at {e5} (make e5-small): its rows are left out")
    tiny = ensure_tiny(REPO_ROOT / ".cache" / "backbones")
    out["tiny-bert (WordPiece, the MuRIL stand-in)"] = AutoTokenizer.from_pretrained(tiny["tiny-bert"])
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--table", type=Path, default=TABLE)
    a = ap.parse_args(argv)
    frames = {lang: load_xquad_json(a.data_dir / path, language=lang) for lang, path in SETS.items()}
    text = markdown(boundary_table(frames, load_tokenizers()))
    print(text)
    if a.table:
        write_text(text, a.table)


if __name__ == "__main__":
    main()
