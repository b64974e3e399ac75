"""Natural Questions (simplified JSONL) -> extractive rows, and the classifier that picks the NQ subset.

Mapping of an NQ record (one JSON object per line, `document_text` whitespace-tokenized with HTML tags as tokens):
- a record whose first annotation has a short answer becomes one row: the context is the long-answer paragraph
  (or the whole document with `context="document"`), HTML tag tokens removed and tokens joined by single spaces; the
  answer is the first short-answer span, its `answer_start` the character offset of its first token in that context;
- records with only a long answer, a yes/no answer or no answer are dropped and counted (chaii answers are short
  spans; a whole paragraph as the "answer" would teach the wrong length).

The winner kept only NQ questions that look like chaii/TyDi ones. `fit_similarity` trains a TF-IDF + logistic
regression classifier (scikit-learn) to tell target-like questions (TyDi, written without seeing the answer) from
others (SQuAD, written while reading the passage); `select_similar` keeps the NQ rows it scores highest.

The kept rows are written in SQuAD layout (`write_subset`: `<dir>/nq_subset.json` + Kaggle `dataset-metadata.json`),
the one format the recipe's `nq` source reads (`load_nq_subset`, through the SQuAD reader and its checks):
    python -m src.data.nq --target tydi_en.json --other squad.json --nq simplified-nq-train.jsonl --out-dir nq-subset
The file records which context it was built with (`nq_context`). The winner's NQ data are whole documents (his
data set thedrcat/nqsmall, `nq_small.csv`): the recipe's `nq_documents` source reads his CSV or a subset built with
`--context document` (`load_nq_documents`), and refuses one built from long-answer paragraphs.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from src.data.load import DataError, validate_frame
from src.data.winner_csv import load_nq_small_csv

HTML_TOKEN = re.compile(r"^</?[A-Za-z][^>]*>$")
SUBSET_FILE = "nq_subset.json"   # what the recipe's `nq` source reads: configs/recipe_kaggle.yaml, nq-subset/...
DATASET_SLUG = "nq-subset"       # the Kaggle dataset folder: /kaggle/input/nq-subset/nq_subset.json
COLUMNS = ["id", "context", "question", "answer_text", "answer_start", "language", "source", "title"]


def _text_and_starts(tokens: list[str]) -> tuple[str, dict[int, int]]:
    """Join non-HTML tokens with spaces; map each kept token index to its character offset."""
    starts, parts, pos = {}, [], 0
    for i, tok in enumerate(tokens):
        if HTML_TOKEN.match(tok):
            continue
        starts[i] = pos
        parts.append(tok)
        pos += len(tok) + 1
    return " ".join(parts), starts


def nq_record_to_row(record: dict, context: str = "long_answer") -> tuple[dict | None, str]:
    """One NQ record -> (row or None, outcome); outcome counts why records were kept or dropped."""
    question, tokens, annotations = record["question_text"], record["document_text"].split(" "), record["annotations"]
    ann = annotations[0] if annotations else None
    if ann is None or not ann.get("short_answers"):
        if ann and ann.get("yes_no_answer", "NONE") != "NONE":
            return None, "yes_no"
        if ann and ann["long_answer"]["start_token"] >= 0:
            return None, "long_only"
        return None, "no_answer"
    short = ann["short_answers"][0]
    if context == "long_answer":
        lo, hi = ann["long_answer"]["start_token"], ann["long_answer"]["end_token"]
    elif context == "document":
        lo, hi = 0, len(tokens)
    else:
        raise ValueError(f"context must be 'long_answer' or 'document', got {context!r}")
    text, starts = _text_and_starts(tokens[lo:hi])
    answer_tokens = [t for t in tokens[short["start_token"]:short["end_token"]] if not HTML_TOKEN.match(t)]
    first = next((i - lo for i in range(short["start_token"], short["end_token"]) if (i - lo) in starts), None)
    if not answer_tokens or first is None:
        return None, "empty_short_answer"
    return dict(id=f"nq-{record['example_id']}", context=text, question=question, answer_text=" ".join(answer_tokens),
                answer_start=starts[first], language="english", source="nq", title=_title(record)), "kept"


def _title(record: dict) -> str:
    """The Wikipedia article (from `document_title`, else the URL's `title=`): rows of one page share a title,
    so `split_by_title` keeps a page on one side."""
    url = record.get("document_url") or ""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url.replace("&amp;", "&")).query)
    return record.get("document_title") or (query.get("title") or [""])[0] or url or f"nq-{record['example_id']}"


def load_nq_jsonl(path: str | os.PathLike, context: str = "long_answer", on_error: str = "raise",
                  limit: int | None = None) -> tuple[pd.DataFrame, Counter]:
    """Read NQ simplified JSONL into the validated frame; returns (frame, outcome counts).

    `on_error="raise"` stops at the first bad record with its file and line; `"drop"` skips it and counts it.
    """
    if on_error not in ("raise", "drop"):
        raise ValueError(f"on_error must be 'raise' or 'drop', got {on_error!r}")
    rows, counts = [], Counter()
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                row, outcome = nq_record_to_row(json.loads(line), context)
            except (json.JSONDecodeError, KeyError, TypeError, IndexError) as e:
                what = "not valid JSON" if isinstance(e, json.JSONDecodeError) else f"missing or malformed field {e}"
                if on_error == "raise":
                    raise DataError(path, f"record {line_no}: {what}", row=line_no) from None
                counts["bad_record"] += 1
                continue
            counts[outcome] += 1
            if row:
                rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS)
    return validate_frame(df, path), counts


# ------------------------------------------------------------------ the subset file (written here, read by the recipe)
def subset_to_squad(df: pd.DataFrame, context: str | None = None) -> dict:
    """Rows -> SQuAD-layout JSON: one article per NQ page (`title`), one paragraph per context; a `similarity`
    column, when present, is kept on each question for inspection; `context` (long_answer / document: how the rows
    were cut, `nq_record_to_row`) is recorded as `nq_context`, before `data` so a reader finds it in the first lines."""
    data = []
    for title, article in df.groupby("title", sort=False):
        paragraphs = []
        for text, para in article.groupby("context", sort=False):
            qas = []
            for r in para.itertuples(index=False):
                qa = {"id": r.id, "question": r.question,
                      "answers": [{"text": r.answer_text, "answer_start": int(r.answer_start)}]}
                if "similarity" in para.columns:
                    qa["similarity"] = round(float(r.similarity), 6)
                qas.append(qa)
            paragraphs.append({"context": text, "qas": qas})
        data.append({"title": title, "paragraphs": paragraphs})
    return {"version": "nq-subset-1", **({"nq_context": context} if context else {}), "data": data}


def write_subset(df: pd.DataFrame, out_dir: str | os.PathLike, user: str | None = None,
                 context: str | None = None) -> Path:
    """`<out_dir>/nq_subset.json` (SQuAD layout) and a Kaggle `dataset-metadata.json`: upload the folder with
    `kaggle datasets create -p <out_dir>`; written atomically. `context`: how the rows were cut (recorded in the
    file). Returns the subset file's path."""
    from src.common.io import write_json

    out = Path(out_dir)
    path = write_json(subset_to_squad(df, context), out / SUBSET_FILE)
    # INSERT_...: the placeholder `kaggle datasets init` writes when it does not know the owner
    write_json({"title": "NQ subset (chaii-like questions)", "id": f"{user or 'INSERT_USERNAME'}/{DATASET_SLUG}",
                "licenses": [{"name": "CC-BY-SA-3.0"}]}, out / "dataset-metadata.json")
    return path


def load_nq_subset(path: str | os.PathLike) -> pd.DataFrame:
    """The subset `write_subset` wrote (the recipe's `kind: nq` source): English rows, source "nq", with titles."""
    from src.data.external import load_squad_json

    path = Path(path)
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
        if '"document_text"' in head or '"question_text"' in head:
            raise DataError(path, "this is raw Natural Questions JSONL, not the NQ subset; make the subset with "
                                  "`python -m src.data.nq --target ... --other ... --nq FILE --out-dir DIR` and point "
                                  f"the recipe at DIR/{SUBSET_FILE}")
    return load_squad_json(path, language="english", source="nq")


def subset_context(path: str | os.PathLike) -> str | None:
    """The `nq_context` a subset file records (None when it records none), read from its first lines."""
    with open(path, encoding="utf-8") as f:
        found = re.search(r'"nq_context"\s*:\s*"(\w+)"', f.read(4096).split('"data"', 1)[0])
    return found.group(1) if found else None


def load_nq_documents(path: str | os.PathLike, on_error: str = "raise", **_) -> pd.DataFrame:
    """The recipe's `kind: nq_documents`: NQ questions beside their whole documents, from his `nq_small.csv`
    (`.csv`, `.csv.zip`: `src.data.winner_csv.load_nq_small_csv`) or from a subset this module wrote with
    `--context document`."""
    path = Path(path)
    if path.name.endswith((".csv", ".csv.zip", ".csv.gz")):
        return load_nq_small_csv(path, on_error=on_error)
    if path.is_file() and subset_context(path) != "document":
        raise DataError(path, f"an nq_documents source needs whole documents, and this subset records nq_context="
                              f"{subset_context(path)!r}; rebuild it with `python -m src.data.nq ... --context "
                              "document`, or read it as `kind: nq` (paragraphs)")
    return load_nq_subset(path)


# ------------------------------------------------------------------ similarity classifier
@dataclass(frozen=True)
class SimilarityConfig:
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = 2
    C: float = 1.0
    keep_fraction: float = 0.3  # of NQ rows, the most target-like
    seed: int = 0


def similarity_model(cfg: SimilarityConfig = SimilarityConfig()):
    """Unfitted TF-IDF + logistic regression pipeline: P(question looks like the target data)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=cfg.ngram_range, min_df=cfg.min_df, sublinear_tf=True),
                         LogisticRegression(C=cfg.C, max_iter=1000, class_weight="balanced", random_state=cfg.seed))


def _xy(target_questions: list[str], other_questions: list[str]):
    X = list(target_questions) + list(other_questions)
    return X, np.r_[np.ones(len(target_questions)), np.zeros(len(other_questions))]


def fit_similarity(target_questions: list[str], other_questions: list[str], cfg: SimilarityConfig = SimilarityConfig()):
    return similarity_model(cfg).fit(*_xy(target_questions, other_questions))


def holdout_auc(target_questions: list[str], other_questions: list[str], cfg: SimilarityConfig = SimilarityConfig(),
                folds: int = 5) -> float:
    """Cross-validated ROC AUC: can the classifier tell the two kinds of question apart at all?"""
    from sklearn.model_selection import cross_val_score

    X, y = _xy(target_questions, other_questions)
    return float(cross_val_score(similarity_model(cfg), X, y, cv=folds, scoring="roc_auc").mean())


def select_similar(df: pd.DataFrame, model, keep_fraction: float | None = 0.3,
                   threshold: float | None = None) -> tuple[pd.DataFrame, dict]:
    """Keep the rows whose question the classifier scores highest: a fraction, or all above `threshold`."""
    scores = model.predict_proba(df["question"].tolist())[:, 1]
    if threshold is None:
        if keep_fraction is None or not 0 < keep_fraction <= 1:
            raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
        threshold = float(np.quantile(scores, 1 - keep_fraction)) if len(scores) else 1.0
    keep = scores >= threshold
    report = {"n": int(len(scores)), "kept": int(keep.sum()), "threshold": float(threshold),
              **{f"q{int(q * 100):02d}": float(np.quantile(scores, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)}}
    return df[keep].assign(similarity=scores[keep]), report


def squad_questions(path: str | os.PathLike) -> list[str]:
    """Questions of a SQuAD-layout JSON file (SQuAD, TyDi GoldP, XQuAD, MLQA)."""
    from src.data.external import load_squad_json

    return load_squad_json(path, on_error="drop")["question"].tolist()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Select the Natural Questions that look like the target questions and "
                                             "write them as the recipe's NQ subset.")
    ap.add_argument("--target", nargs="+", required=True, help="SQuAD-layout files of target-like questions (TyDi)")
    ap.add_argument("--other", nargs="+", required=True, help="SQuAD-layout files of other questions (SQuAD)")
    ap.add_argument("--nq", help="raw NQ simplified JSONL to select from (optional: without it, only the AUC)")
    ap.add_argument("--keep-fraction", type=float, default=SimilarityConfig.keep_fraction)
    ap.add_argument("--context", default="long_answer", choices=["long_answer", "document"],
                    help="each question's context: its long-answer paragraph (the recipe's `kind: nq`) or its whole "
                         "document (`kind: nq_documents`, as the winner's nq_small.csv)")
    ap.add_argument("--out-dir", help=f"write {SUBSET_FILE} + dataset-metadata.json here (a Kaggle dataset folder)")
    ap.add_argument("--user", help="Kaggle user in dataset-metadata.json")
    args = ap.parse_args(argv)
    if args.out_dir and not args.nq:
        ap.error("--out-dir needs --nq (the raw NQ JSONL to select from)")
    target = [q for p in args.target for q in squad_questions(p)]
    other = [q for p in args.other for q in squad_questions(p)]
    print(f"target questions {len(target)}, other questions {len(other)}; "
          f"5-fold ROC AUC {holdout_auc(target, other):.3f}")
    model = fit_similarity(target, other)
    if args.nq:
        nq, counts = load_nq_jsonl(args.nq, context=args.context, on_error="drop")
        print(f"NQ records: {dict(counts)}")
        kept, report = select_similar(nq, model, args.keep_fraction)
        print("similarity score distribution and what the threshold keeps:")
        print(pd.Series(report).to_string())
        if args.out_dir:
            print(f"wrote {len(kept)} rows to {write_subset(kept, args.out_dir, args.user, args.context)}")


if __name__ == "__main__":
    main()
