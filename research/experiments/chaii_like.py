"""A chaii-shaped data set from real data: every question beside its whole article, in chaii's own files.

Every other measurement here puts a question beside its own paragraph (~150 words); chaii gives it its whole
Wikipedia article, so a question has many windows and most of them hold no answer. This builds that shape from
the real data in ../shared/data: Hindi = XQuAD-hi, Tamil = XQuAD-IN ta, split by article in XQuAD-hi's title
order (`research.experiments.evalsets`): articles 0-35 train, 36-47 test.

    python -m research.experiments.chaii_like --out runs/chaii_like       # make chaii-like; prints the card

Files, UTF-8 CSV as chaii ships them (read them with `keep_default_na=False`):
    train.csv     id, context, question, answer_text, answer_start, language
    test.csv      id, context, question, language (no answers)
    solution.csv  id, answer_text (the first gold answer), language, answers: every gold answer as a JSON list of
                  strings (`json.loads` reads it back), what `python -m src.blend.submission score` scores against

Context: the article's paragraphs in file order joined with one newline ("\\n"), as chaii's own contexts separate
theirs; every answer offset is moved and checked (`evalsets.whole_articles`). ids: chaii's are 9 hex digits; here
the first 9 hex digits of md5("<language>/<XQuAD id>") (XQuAD-hi and XQuAD-IN ta share SQuAD's ids, so the
language is part of it). XQuAD-IN ta in XQuAD-hi's title order gives 658 training and 170 test questions (its own
file order would give 651 / 177, and would put the translation of a Hindi test article into training).
These are translated SQuAD articles (Hindi ~700 words, Tamil ~480), shorter than chaii's: the card sets them beside
chaii's own public test rows.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from research.experiments import evalsets
from src.common.paths import CACHE_DIR, REPO_ROOT, SHARED_DIR
from src.data.load import TEST_COLUMNS, TRAIN_COLUMNS, read_utf8

DATA_DIR = SHARED_DIR / "data"
CHAII_SAMPLE = DATA_DIR / "chaii_format" / "test_public_sample.csv"
SOLUTION_COLUMNS = ["id", "answer_text", "language", "answers"]
WINDOWS = ((256, 96), (384, 128), (512, 192))      # the recipe's window lengths and strides
TOKENIZERS = (("e5-small", CACHE_DIR / "e5-small"), ("tiny-xlmr", REPO_ROOT / ".cache" / "backbones" / "tiny-xlmr"))
# The 1st-place write-up's own figure for a chaii context; not measured here (chaii's train.csv is not on this machine)
WINNER_QUOTE = '"a context of like 4000 words" (the 1st-place write-up)'


def chaii_id(language: str, qid: str) -> str:
    return hashlib.md5(f"{language}/{qid}".encode()).hexdigest()[:9]


def split(hindi: pd.DataFrame, tamil: pd.DataFrame, titles: list[str],
          n_train: int = evalsets.N_TRAIN_ARTICLES) -> dict[str, pd.DataFrame]:
    """{"train", "test"}: the questions of articles `titles[:n_train]` and of the rest, each beside its whole
    article, with chaii ids (`id`) and, for the leak check and scoring, `source_id` (the XQuAD id), `title`,
    `paragraph` and `answers` (every gold)."""
    frames = [evalsets.whole_articles(df) for df in (hindi, tamil)]
    both = pd.concat(frames, ignore_index=True)
    both = both.assign(source_id=both["id"],
                       id=[chaii_id(lang, q) for lang, q in zip(both["language"], both["id"], strict=True)])
    dup = both["id"].duplicated(keep=False)
    if dup.any():
        raise ValueError(f"two questions share a chaii id: {both.loc[dup, ['id', 'source_id', 'language']].values[:4]}")
    unknown = sorted(set(both["title"]) - set(titles))
    if unknown:
        raise ValueError(f"articles not in the title order: {unknown[:3]}")
    is_train = both["title"].isin(titles[:n_train])
    return {"train": both[is_train].reset_index(drop=True), "test": both[~is_train].reset_index(drop=True)}


def files(parts: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The three files' frames, by file name, in chaii's columns."""
    test = parts["test"]
    solution = test.assign(answers=[json.dumps(list(a), ensure_ascii=False) for a in test["answers"]])
    return {"train.csv": parts["train"][TRAIN_COLUMNS], "test.csv": test[TEST_COLUMNS],
            "solution.csv": solution[SOLUTION_COLUMNS]}


def leaks(parts: dict[str, pd.DataFrame], trains: dict[str, pd.DataFrame]) -> list[str]:
    """Every test id, article title, context or paragraph found in the chaii-like train split or in any of
    `trains` (`evalsets.train_sources`), as readable lines (`evalsets.leaks`; XQuAD ids compared as XQuAD ids)."""
    test = parts["test"].assign(id=parts["test"]["source_id"])
    train = parts["train"].assign(id=parts["train"]["source_id"])
    out = evalsets.leaks({"chaii_like_test": test}, {"chaii_like_train": train, **trains})
    shared = sorted(set(parts["test"]["id"]) & set(parts["train"]["id"]))
    if shared:
        out.append(f"chaii_like_test and chaii_like_train share {len(shared)} chaii id(s), e.g. {shared[:3]}")
    return out


# ---------------------------------------------------------------- the card
def backbone_tokenizer():
    """(name and path, tokenizer): e5-small's where it is cached, else the tiny-xlmr stand-in's."""
    from transformers import AutoTokenizer
    for name, path in TOKENIZERS:
        if (path / "tokenizer_config.json").exists():
            return f"{name} ({path})", AutoTokenizer.from_pretrained(path)
    raise FileNotFoundError(f"no tokenizer at {[str(p) for _, p in TOKENIZERS]}: run `make backbones`")


def context_lengths(df: pd.DataFrame, tokenizer) -> pd.DataFrame:
    """Per language: how many distinct contexts, and their mean and largest length in words, characters and
    tokens (no special tokens)."""
    ctx = df[["language", "context"]].drop_duplicates()
    enc = tokenizer(ctx["context"].tolist(), add_special_tokens=False, verbose=False)
    n_tokens = [len(x) for x in enc["input_ids"]]
    ctx = ctx.assign(words=ctx["context"].str.split().map(len), chars=ctx["context"].str.len(), tokens=n_tokens)
    g = ctx.groupby("language")
    return pd.concat([g.size().rename("contexts"), g[["words", "chars", "tokens"]].mean().round(0).add_suffix("_mean"),
                      g[["words", "chars", "tokens"]].max().add_suffix("_max")], axis=1)


def windows(df: pd.DataFrame, tokenizer, lengths=WINDOWS) -> pd.DataFrame:
    """Per language and window length: windows per question (the recipe's own `prepare_train_features`) and the
    share of windows that hold the answer (NaN where the frame has no answers)."""
    from src.data.features import frame_to_batch, prepare_train_features
    answered = "answer_text" in df
    batch = df.assign(answer_text=df["answer_text"] if answered else "", answer_start=df.get("answer_start", 0))
    rows = []
    for length, stride in lengths:
        f = prepare_train_features(frame_to_batch(batch[["id", "question", "context", "answer_text", "answer_start"]]),
                                   tokenizer, length, stride)
        w = pd.DataFrame({"id": f["example_id"], "has_answer": f["has_answer"]})
        w["language"] = w["id"].map(df.set_index("id")["language"])
        for lang, g in w.groupby("language"):
            rows.append({"language": lang, "window": f"{length}/{stride}",
                         "per_question": len(g) / (df["language"] == lang).sum(),
                         "with_answer": g["has_answer"].mean() if answered else np.nan})
    return pd.DataFrame(rows)


def card(parts: dict[str, pd.DataFrame], tokenizer, tokenizer_name: str, chaii: pd.DataFrame | None = None) -> str:
    """Sizes per split and language, context lengths, windows per question, beside chaii's public test rows."""
    sizes = pd.DataFrame({k: v.groupby("language").size() for k, v in parts.items()}).T
    sizes["articles"] = [v["title"].nunique() for v in parts.values()]
    both = pd.concat(parts.values(), ignore_index=True)
    shapes = {"chaii-like": both}
    if chaii is not None:
        shapes[f"chaii public test rows ({CHAII_SAMPLE.name})"] = chaii
    lines = ["chaii-like data set: XQuAD-hi (Hindi) and XQuAD-IN ta (Tamil), each question beside its whole article",
             "(paragraphs in file order joined with one newline); articles 0-35 of XQuAD-hi's title order train, 36-47 "
             "test", "", "questions per split and language:", sizes.to_string(), "",
             f"context length per language (distinct contexts; tokens of {tokenizer_name}):"]
    for name, df in shapes.items():
        lines += [f"  {name}:", context_lengths(df, tokenizer).to_string(), ""]
    lines.append("windows per question at the recipe's lengths (max_length/doc_stride), and the share of windows "
                 "holding the answer:")
    for name, df in shapes.items():
        w = windows(df, tokenizer).pivot(index="language", columns="window")
        lines += [f"  {name}:", w.round(3).to_string(), ""]
    lines.append(f"chaii's own contexts: the winner's figure is {WINNER_QUOTE}; the public test rows above are only "
                 f"{0 if chaii is None else len(chaii)} of them (not a sample of the train set).")
    return "\n".join(lines)


# ---------------------------------------------------------------- the edges: read, write, report
def load(data_dir: str | os.PathLike = DATA_DIR) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(Hindi, Tamil, the 48 titles in XQuAD-hi's order) from the shared data."""
    from src.data.external import load_xquad_json
    d = Path(data_dir)
    hindi = load_xquad_json(d / "xquad" / "xquad.hi.json", language="hindi")
    tamil = load_xquad_json(d / "xquad_in" / "xquad_in.ta.json", language="tamil").assign(source="xquad_in")
    return hindi, tamil, evalsets.xquad_titles(d)


def write(out: dict[str, pd.DataFrame], out_dir: str | os.PathLike) -> list[Path]:
    from src.common.io import write_csv
    return [write_csv(df, Path(out_dir) / name) for name, df in out.items()]


def read_chaii_sample(path: Path = CHAII_SAMPLE) -> pd.DataFrame | None:
    if not path.exists():
        return None
    return pd.read_csv(io.StringIO(read_utf8(path)), dtype=str, keep_default_na=False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m research.experiments.chaii_like", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for train.csv, test.csv and solution.csv")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--no-card", action="store_true", help="write the files only (the card tokenizes every question)")
    a = ap.parse_args(argv)
    hindi, tamil, titles = load(a.data_dir)
    parts = split(hindi, tamil, titles)
    problems = leaks(parts, evalsets.train_sources(a.data_dir))
    if problems:
        raise SystemExit("the test split leaks into training:\n" + "\n".join(problems))
    for path in write(files(parts), a.out):
        print(f"wrote {path}")
    print("no test id, title, context or paragraph in the chaii-like train split or any training source of evalsets")
    if not a.no_card:
        name, tokenizer = backbone_tokenizer()
        print(card(parts, tokenizer, name, read_chaii_sample()))


if __name__ == "__main__":
    main()
