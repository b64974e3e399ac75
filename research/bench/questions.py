"""The questions the benchmarks run on: XQuAD-hi whole articles (real Hindi, several windows each) and synthetic
ones."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from research.experiments.evalsets import whole_articles
from src.common.paths import SHARED_DIR

XQUAD_HI = SHARED_DIR / "data" / "xquad" / "xquad.hi.json"
TRAIN_ARTICLES = 36   # XQuAD-hi articles 0-35 train the bench's own e5-small model; 36-47 are held out
HELD_OUT = slice(TRAIN_ARTICLES, None)


def long_hindi_questions(n: int, path: Path = XQUAD_HI, articles: slice = slice(None)) -> pd.DataFrame:
    """XQuAD-hi questions with their whole article as context (about 3,000 characters, several windows each),
    from `articles` (file order), taken round-robin over them so every article appears."""
    df = whole_articles(xquad_frame(path, articles))
    by_article = df.groupby("title", sort=False)
    # the i-th question of every article before any article's (i+1)-th
    order = df.assign(_i=by_article.cumcount(), _a=by_article.ngroup()).sort_values(["_i", "_a"], kind="stable")
    columns = ["id", "question", "answer_text", "answer_start", "language", "context"]
    return order[columns].head(n).reset_index(drop=True)


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
