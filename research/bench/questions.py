"""The questions the benchmarks run on: XQuAD-hi whole articles (real Hindi, several windows each) and synthetic
ones."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from src.common.paths import SHARED_DIR

XQUAD_HI = SHARED_DIR / "data" / "xquad" / "xquad.hi.json"
TRAIN_ARTICLES = 36   # XQuAD-hi articles 0-35 train the bench's own e5-small model; 36-47 are held out
HELD_OUT = slice(TRAIN_ARTICLES, None)


def long_hindi_questions(n: int, path: Path = XQUAD_HI, articles: slice = slice(None)) -> pd.DataFrame:
    """XQuAD-hi questions with their whole article as context (about 3,000 characters, several windows each),
    from `articles` (file order), taken round-robin over them so every article appears."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"][articles]
    per_article = []
    for art in data:
        context, rows = "", []
        for p in art["paragraphs"]:
            base = len(context) + (1 if context else 0)
            context = (context + "\n" + p["context"]) if context else p["context"]
            for q in p["qas"]:
                a = q["answers"][0]
                rows.append(dict(id=q["id"], question=q["question"], answer_text=a["text"],
                                 answer_start=a["answer_start"] + base, language="hindi"))
        per_article.append([dict(r, context=context) for r in rows])
    out = []
    for i in range(max(len(a) for a in per_article)):
        out += [a[i] for a in per_article if i < len(a)]
    return pd.DataFrame(out[:n])


def xquad_frame(path: Path = XQUAD_HI, articles: slice = slice(None)) -> pd.DataFrame:
    """XQuAD-hi as a chaii-style frame (one row per question, its paragraph as context), articles in file order."""
    from src.data.external import load_xquad_json

    df = load_xquad_json(path, language="hindi")
    titles = list(dict.fromkeys(df["title"]))[articles]
    return df[df["title"].isin(titles)].reset_index(drop=True)


def synthetic_long_questions(n: int, seed: int = 1, people: int = 16) -> pd.DataFrame:
    """Hindi and Tamil synthetic questions whose contexts list `people` persons (~350 tiny-bert tokens: 4-5
    windows of 128), the task `bench_models.tiny_qa_model` is trained on, with other people and values."""
    from src.data.synthetic import make_synthetic_qa
    return make_synthetic_qa(n, seed=seed, people=people)
