"""Context and question lengths in tokens of the recipe's sources: the constants of `src.kaggle.sizing_facts.SOURCES`.

XLM-R's SentencePiece tokenizer (multilingual-e5-small ships the same 250k vocabulary; RemBERT's is of the same kind,
MuRIL's Indic WordPiece is coarser on Hindi and Tamil) over the real files in ../shared/data. Sources that are not on
this machine are measured on a stand-in named beside them (the same kind of text):

    python -m research.bench.source_tokens        # prints one line per source: questions, 20 context quantiles
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from src.common.paths import CACHE_DIR, SHARED_DIR
from src.data.external import load_source

DATA = SHARED_DIR / "data"
QUANTILES = 20   # context lengths kept as the midpoints of 20 equal-count bins
# source -> (kind, file here, what it stands in for)
FILES = {
    "squad": ("squad", "squad/dev-v1.1.json",
              "SQuAD v1.1 dev paragraphs for SQuAD 2.0 train (same Wikipedia paragraphs)"),
    "tydi_en": ("tydi", "tydiqa_goldp/english_tydiqa_train.json", "itself"),
    "tydi_bn": ("tydi", "tydiqa_goldp/bengali_tydiqa_dev.json", "TyDi GoldP bn dev for bn train"),
    "tydi_te": ("tydi", "tydiqa_goldp/telugu_tydiqa_dev.json", "TyDi GoldP te dev for te train"),
    "xquad_hi": ("xquad", "xquad/xquad.hi.json", "itself"),
    "chaii": ("csv", "chaii_format/test_public_sample.csv", "the 5 public chaii test rows for chaii train"),
}


def lengths(tokenizer, texts: list[str]) -> np.ndarray:
    return np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]])


def stats(tokenizer, df: pd.DataFrame) -> dict:
    ctx = lengths(tokenizer, df["context"].tolist())
    q = lengths(tokenizer, df["question"].tolist())
    qs = ctx if len(ctx) <= QUANTILES else np.quantile(ctx, (np.arange(QUANTILES) + 0.5) / QUANTILES)
    return dict(n=len(df), question=round(float(q.mean()), 1), context_mean=round(float(ctx.mean())),
                context=tuple(int(round(x)) for x in qs))


def main() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(CACHE_DIR / "e5-small")
    for name, (kind, rel, stands_for) in FILES.items():
        path = DATA / rel
        kw = {"language": "hindi"} if kind == "xquad" else {}
        df = pd.read_csv(path) if kind == "csv" else load_source(kind, path, **kw)
        print(f"{name}: {stats(tok, df)}  # {rel}: {stands_for}")


if __name__ == "__main__":
    main()
