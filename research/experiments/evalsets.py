"""Leak-free evaluation sets and the training sources they are kept apart from, built from ../shared/data.

XQuAD (hi, en) and XQuAD-IN (hi, ta) translate the same 48 SQuAD v1.1 dev articles, so the split is by article
in file order: articles 36-47 (the last 12; 265 XQuAD-hi questions) are evaluation everywhere, 0-35 may train.
Every training source loses the 12 evaluated titles: SQuAD dev (2,447 questions are their English originals) and
TyDi-en train (its article "Force" is one of them, 2 questions). SQuAD v1.1 dev has exactly 48 articles, all of
them XQuAD's, so dropping all 48 (the shared README's wording) would leave no SQuAD at all; articles 0-35 are on
the training side in every language anyway, so dropping the evaluated 12 is what keeps evaluation unseen.
TyDi te and bn dev are evaluation only. XQuAD-IN hi is evaluation only; XQuAD-IN ta articles 0-35 may train
(`xquad_in_ta_train`, the only real Tamil training data here; the shared README), 36-47 evaluate. XQuAD-IN answers
can occur twice in a paragraph, which is why every score is by text.

Two shapes of every evaluation set, the same questions and gold answers: "paragraph" (each question beside its own
paragraph, ~150 words) and "article" (beside its whole article, `whole_articles`: chaii gives each question its whole
Wikipedia article, so most of its windows hold no answer). Article sets are named `<set>_article`
(`xquad_hi_article`), so both shapes score in one pass (`combined`) and log under their own keys.

    python -m research.experiments.evalsets          # prints every set's size, and checks that nothing leaks
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from src.common.paths import SHARED_DIR
from src.data.external import load_squad_json, load_tydi_json, load_xquad_json

DATA_DIR = SHARED_DIR / "data"
N_TRAIN_ARTICLES = 36           # XQuAD articles 0-35 in file order train; 36-47 are held out
EVAL_SETS = ("xquad_hi", "xquad_in_hi", "xquad_in_ta", "tydi_te", "tydi_bn")
LANGUAGE = {"xquad_hi": "hindi", "xquad_in_hi": "hindi", "xquad_in_ta": "tamil", "tydi_te": "telugu",
            "tydi_bn": "bengali"}
SHAPES = ("paragraph", "article")
ARTICLE_SUFFIX = "_article"     # an article-shaped set's name: xquad_hi -> xquad_hi_article
# chaii's own contexts separate paragraphs with one newline (chaii_format/test_public_sample.csv)
ARTICLE_SEP = "\n"
LANGUAGE.update({name + ARTICLE_SUFFIX: lang for name, lang in LANGUAGE.items()})


def xquad_titles(data_dir: str | os.PathLike = DATA_DIR) -> list[str]:
    """The 48 XQuAD article titles in XQuAD-hi's file order: every split follows it (XQuAD-IN lists the same 48
    titles in another order, so "articles 36-47" of its own file would be other articles)."""
    doc = json.loads((Path(data_dir) / "xquad" / "xquad.hi.json").read_text(encoding="utf-8"))
    return [str(a["title"]) for a in doc["data"]]


def held_out_titles(data_dir: str | os.PathLike = DATA_DIR) -> list[str]:
    return xquad_titles(data_dir)[N_TRAIN_ARTICLES:]


def _tag(df: pd.DataFrame, name: str) -> pd.DataFrame:
    return df.assign(eval_set=name).reset_index(drop=True)


def set_name(name: str, shape: str = "paragraph") -> str:
    """The name a set has in `shape`: itself as paragraphs, `<name>_article` as whole articles."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    return name if shape == "paragraph" else name + ARTICLE_SUFFIX


def whole_articles(df: pd.DataFrame, sep: str = ARTICLE_SEP) -> pd.DataFrame:
    """Each question with its whole article as context: the distinct paragraphs of its `title`, in the frame's
    order (file order for the loaders), joined with `sep`; `answer_start` moves with its paragraph, and the
    paragraph stays in a `paragraph` column. Questions, ids and gold answers are unchanged. Raises a ValueError
    naming the question id if a moved offset does not point at its answer (it cannot, unless the frame is bad).

    An article holds only the paragraphs that have a question in the file: XQuAD-IN dropped every question of a
    few paragraphs (their answers were not verbatim), so its articles are a paragraph short now and then."""
    paras = df[["title", "context"]].drop_duplicates()
    offset, article = {}, {}
    for title, contexts in paras.groupby("title", sort=False)["context"]:
        pos = 0
        for c in contexts:
            offset[(title, c)] = pos
            pos += len(c) + len(sep)
        article[title] = sep.join(contexts)
    moved = [offset[(t, c)] for t, c in zip(df["title"], df["context"], strict=True)]
    out = df.assign(paragraph=df["context"], context=df["title"].map(article),
                    answer_start=df["answer_start"].where(df["answer_start"] < 0, df["answer_start"] + moved))
    for qid, ctx, text, start in zip(out["id"], out["context"], out["answer_text"], out["answer_start"], strict=True):
        if start >= 0 and not ctx.startswith(text, start):
            raise ValueError(f"question {qid}: answer_start {start} in its whole article does not point at {text!r}")
    return out


def eval_sets(data_dir: str | os.PathLike = DATA_DIR, shape: str = "paragraph") -> dict[str, pd.DataFrame]:
    """Every evaluation set by name (`EVAL_SETS`, or `<set>_article` for `shape="article"`), each frame with an
    `eval_set` column (its name) and all gold answers. Both shapes hold the same questions and golds; only the
    context differs (see the module docstring)."""
    d = Path(data_dir)
    held = set(held_out_titles(d))
    xq_hi = load_xquad_json(d / "xquad/xquad.hi.json", language="hindi")
    in_hi = load_xquad_json(d / "xquad_in/xquad_in.hi.json", language="hindi").assign(source="xquad_in")
    in_ta = load_xquad_json(d / "xquad_in/xquad_in.ta.json", language="tamil").assign(source="xquad_in")
    frames = {
        "xquad_hi": xq_hi[xq_hi["title"].isin(held)],
        "xquad_in_hi": in_hi[in_hi["title"].isin(held)],
        "xquad_in_ta": in_ta[in_ta["title"].isin(held)],
        "tydi_te": load_tydi_json(d / "tydiqa_goldp/telugu_tydiqa_dev.json"),
        "tydi_bn": load_tydi_json(d / "tydiqa_goldp/bengali_tydiqa_dev.json"),
    }
    names = {k: set_name(k, shape) for k in frames}     # checks `shape` before any work
    if shape == "article":
        frames = {k: whole_articles(v) for k, v in frames.items()}
    return {names[k]: _tag(v, names[k]) for k, v in frames.items()}


def combined(evals: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The evaluation sets as one frame for one scoring pass, each id prefixed with its set's name
    ("xquad_in_ta/<id>"): XQuAD and XQuAD-IN share SQuAD's question ids, and windows find their example by id."""
    return pd.concat([df.assign(id=f"{name}/" + df["id"].astype(str)) for name, df in evals.items()],
                     ignore_index=True)


def train_sources(data_dir: str | os.PathLike = DATA_DIR) -> dict[str, pd.DataFrame]:
    """The training sources, none with an evaluated title: English for the base (TyDi-en train, SQuAD dev
    articles 0-35), and for the ablation the Hindi side (XQuAD-hi articles 0-35) with an English replay the base
    never saw (TyDi-en dev)."""
    d = Path(data_dir)
    held = set(held_out_titles(d))
    frames = {"tydi_en": load_tydi_json(d / "tydiqa_goldp/english_tydiqa_train.json"),
              "tydi_en_dev": load_tydi_json(d / "tydiqa_goldp/english_tydiqa_dev.json"),
              "squad_dev": load_squad_json(d / "squad/dev-v1.1.json"),
              "xquad_hi_train": load_xquad_json(d / "xquad/xquad.hi.json", language="hindi"),
              "xquad_in_ta_train": load_xquad_json(d / "xquad_in/xquad_in.ta.json", language="tamil")
              .assign(source="xquad_in")}
    return {k: v[~v["title"].isin(held)].reset_index(drop=True) for k, v in frames.items()}


def leaks(evals: dict[str, pd.DataFrame], trains: dict[str, pd.DataFrame]) -> list[str]:
    """Every evaluation question id, article title, context or paragraph (the `paragraph` column of article-shaped
    frames) found in a training source (a text counts when it occurs inside a training context), as readable
    lines."""
    out = []
    haystack = {t_name: "\0".join(t["context"].unique()) for t_name, t in trains.items()}
    for e_name, e in evals.items():
        texts = set(e["context"]) | (set(e["paragraph"]) if "paragraph" in e else set())
        for t_name, t in trains.items():
            for col in ("id", "title"):
                shared = sorted(set(e[col]) & set(t[col]))
                if shared:
                    out.append(f"{e_name} and {t_name} share {len(shared)} {col}(s), e.g. {shared[:3]}")
            found = sorted(x for x in texts if x in haystack[t_name])
            if found:
                out.append(f"{t_name} holds {len(found)} context(s) or paragraph(s) of {e_name}, e.g. "
                           f"{[x[:60] for x in found[:2]]}")
    return out


def sizes(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    return {k: len(v) for k, v in frames.items()}


def main() -> None:
    evals, trains = {**eval_sets(), **eval_sets(shape="article")}, train_sources()
    print("evaluation:", sizes(evals))
    print("training:  ", sizes(trains))
    problems = leaks(evals, trains)
    print("\n".join(problems) if problems else "no evaluation id, title, context or paragraph in any training source")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
