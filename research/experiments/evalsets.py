"""Leak-free evaluation sets and the training sources they are kept apart from, built from ../shared/data.

XQuAD (hi, en) and XQuAD-IN (hi, ta) translate the same 48 SQuAD v1.1 dev articles, so the split is by article
in file order: articles 36-47 (the last 12; 265 XQuAD-hi questions) are evaluation everywhere, 0-35 may train.
Every training source loses the 12 evaluated titles: SQuAD dev (2,447 questions are their English originals) and
TyDi-en train (its article "Force" is one of them, 2 questions). SQuAD v1.1 dev has exactly 48 articles, all of
them XQuAD's, so dropping all 48 (the shared README's wording) would leave no SQuAD at all; articles 0-35 are on
the training side in every language anyway, so dropping the evaluated 12 is what keeps evaluation unseen.
TyDi te and bn dev are evaluation only. XQuAD-IN is evaluation only (its README), on the
held-out articles; its answers can occur twice in a paragraph, which is why every score is by text.

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


def xquad_titles(data_dir: str | os.PathLike = DATA_DIR) -> list[str]:
    """The 48 XQuAD article titles in file order (the same in every XQuAD and XQuAD-IN file)."""
    doc = json.loads((Path(data_dir) / "xquad" / "xquad.hi.json").read_text(encoding="utf-8"))
    return [str(a["title"]) for a in doc["data"]]


def held_out_titles(data_dir: str | os.PathLike = DATA_DIR) -> list[str]:
    return xquad_titles(data_dir)[N_TRAIN_ARTICLES:]


def _tag(df: pd.DataFrame, name: str) -> pd.DataFrame:
    return df.assign(eval_set=name).reset_index(drop=True)


def eval_sets(data_dir: str | os.PathLike = DATA_DIR) -> dict[str, pd.DataFrame]:
    """Every evaluation set by name (`EVAL_SETS`), each frame with an `eval_set` column and all gold answers."""
    d = Path(data_dir)
    held = set(held_out_titles(d))
    xq_hi = load_xquad_json(d / "xquad/xquad.hi.json", language="hindi")
    in_hi = load_xquad_json(d / "xquad_in/xquad_in.hi.json", language="hindi").assign(source="xquad_in")
    in_ta = load_xquad_json(d / "xquad_in/xquad_in.ta.json", language="tamil").assign(source="xquad_in")
    return {
        "xquad_hi": _tag(xq_hi[xq_hi["title"].isin(held)], "xquad_hi"),
        "xquad_in_hi": _tag(in_hi[in_hi["title"].isin(held)], "xquad_in_hi"),
        "xquad_in_ta": _tag(in_ta[in_ta["title"].isin(held)], "xquad_in_ta"),
        "tydi_te": _tag(load_tydi_json(d / "tydiqa_goldp/telugu_tydiqa_dev.json"), "tydi_te"),
        "tydi_bn": _tag(load_tydi_json(d / "tydiqa_goldp/bengali_tydiqa_dev.json"), "tydi_bn"),
    }


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
              "xquad_hi_train": load_xquad_json(d / "xquad/xquad.hi.json", language="hindi")}
    return {k: v[~v["title"].isin(held)].reset_index(drop=True) for k, v in frames.items()}


def leaks(evals: dict[str, pd.DataFrame], trains: dict[str, pd.DataFrame]) -> list[str]:
    """Every evaluation question id or article title found in a training source, as readable lines."""
    out = []
    for e_name, e in evals.items():
        for t_name, t in trains.items():
            for col in ("id", "title"):
                shared = sorted(set(e[col]) & set(t[col]))
                if shared:
                    out.append(f"{e_name} and {t_name} share {len(shared)} {col}(s), e.g. {shared[:3]}")
    return out


def sizes(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    return {k: len(v) for k, v in frames.items()}


def main() -> None:
    evals, trains = eval_sets(), train_sources()
    print("evaluation:", sizes(evals))
    print("training:  ", sizes(trains))
    problems = leaks(evals, trains)
    print("\n".join(problems) if problems else "no evaluation id or title in any training source")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
