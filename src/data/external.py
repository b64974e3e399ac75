"""External QA data -> the same validated frame as the chaii CSV (id, context, question, answer_text, answer_start,
language, source, plus `title` for splitting by article and `answers`: every gold answer text, for evaluation).

SQuAD v1.1/v2.0, TyDi QA GoldP, XQuAD and MLQA all use the SQuAD JSON layout (`data[].paragraphs[].qas[]`), so one
reader serves them; the wrappers only fix the language and the source name. A bad record either raises a `DataError`
naming the file and the record (`on_error="raise"`), or is dropped and counted (`on_error="drop"`: the count is in
`df.attrs["n_dropped"]`, the reasons in `df.attrs["dropped"]`).
"""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from src.data.load import (
    ALL_LANGUAGES,
    FRAME_COLUMNS,
    DataError,
    context_title,
    load_chaii_csv,
    read_utf8,
    validate_frame,
)
from src.data.nq import load_nq_documents
from src.data.tydi_primary import load_tydi_primary
from src.data.winner_csv import load_chaii_mlqa_xquad

# TyDi QA ids start with the language name ("telugu--2245295572008910947-0").
TYDI_PREFIXES = {"english", "bengali", "telugu", "hindi", "tamil", "marathi"}
ISO = {"en": "english", "hi": "hindi", "ta": "tamil", "bn": "bengali", "te": "telugu", "mr": "marathi"}


def _language(name: str | None) -> str | None:
    return ISO.get(name, name) if name else None


def load_squad_json(path: str | os.PathLike, language: str = "english", source: str = "squad",
                    impossible: str = "keep", on_error: str = "raise") -> pd.DataFrame:
    """Read a SQuAD-layout JSON file; the first answer of each question is its label (`answer_text`,
    `answer_start`: what training uses), and `answers` lists every distinct gold text (what evaluation scores
    against, the best over them as SQuAD does; TyDi dev and XQuAD-IN carry several).

    Args:
        language: the language of every row (full name or ISO code), or "tydi" to read it from each TyDi id prefix.
        impossible: SQuAD v2 questions without an answer: "keep" them as no-answer rows (answer_text "",
            answer_start -1) or "drop" them.
        on_error: "raise" a `DataError` at the first bad record, or "drop" bad records and count them.
    """
    if impossible not in ("keep", "drop") or on_error not in ("raise", "drop"):
        raise ValueError(f"impossible must be keep|drop and on_error raise|drop, got {impossible!r}, {on_error!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{source} file not found: {path}")
    try:
        doc = json.loads(read_utf8(path))
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(path, "not SQuAD layout: expected a top-level object with a 'data' list")

    rows, dropped, seen = [], [], set()

    def bad(where: str, message: str, field: str | None = None) -> None:
        if on_error == "raise":
            raise DataError(path, f"{where}: {message}", field=field)
        dropped.append(f"{where}: {message}")

    for a, article in enumerate(doc["data"]):
        title = str(article.get("title", a))
        for p, para in enumerate(article.get("paragraphs", [])):
            context = para.get("context")
            for q, qa in enumerate(para.get("qas", [])):
                where = f"record data[{a}].paragraphs[{p}].qas[{q}] (id {qa.get('id')!r})"
                if not isinstance(context, str) or not context.strip():
                    bad(where, "empty or missing context", "context")
                    continue
                qid, question = qa.get("id"), qa.get("question")
                if not qid or not isinstance(question, str) or not question.strip():
                    bad(where, "missing id or empty question", "question" if qid else "id")
                    continue
                qid = str(qid)
                if qid in seen:
                    bad(where, "duplicate id", "id")
                    continue
                lang = _language(language)
                if lang == "tydi":
                    lang = qid.split("-", 1)[0]
                    if lang not in TYDI_PREFIXES:
                        bad(where, f"cannot read the language from the id prefix {lang!r}; pass language=", "id")
                        continue
                answers = qa.get("answers") or []
                if qa.get("is_impossible") or not answers:
                    if not qa.get("is_impossible"):
                        bad(where, "no answers (and not marked is_impossible)", "answers")
                        continue
                    if impossible == "drop":
                        continue
                    text, start, golds = "", -1, [""]
                else:
                    text, start = answers[0].get("text"), answers[0].get("answer_start")
                    if not isinstance(text, str) or not text or not isinstance(start, int) or isinstance(start, bool):
                        bad(where, f"answer needs a non-empty text and an integer answer_start, got {answers[0]!r}",
                            "answers")
                        continue
                    if not 0 <= start <= len(context) - len(text) or context[start:start + len(text)] != text:
                        found = context.find(text)
                        hint = f"; the text occurs at {found}" if found >= 0 else "; the text is not in the context"
                        bad(where, f"answer_start {start} does not point at {text!r}{hint}", "answer_start")
                        continue
                    golds = list(dict.fromkeys(str(x.get("text")) for x in answers if str(x.get("text") or "").strip()))
                seen.add(qid)
                rows.append((qid, context, question, text, start, lang, source, title, golds))

    df = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    df["answer_start"] = df["answer_start"].astype("int64")
    df = validate_frame(df, path, languages=ALL_LANGUAGES, answers=True)  # the same checks as every other frame
    df.attrs.update(n_dropped=len(dropped), dropped=dropped, file=str(path))
    return df


def load_tydi_json(path, language: str | None = None, **kw) -> pd.DataFrame:
    """TyDi QA GoldP (SQuAD layout); the language is `language` or, when None, each id's prefix."""
    return load_squad_json(path, language=language or "tydi", source="tydi", **kw)


def load_xquad_json(path, language: str, **kw) -> pd.DataFrame:
    return load_squad_json(path, language=language, source="xquad", **kw)


def load_mlqa_json(path, language: str = "hindi", **kw) -> pd.DataFrame:
    """MLQA files (SQuAD layout, one answer per question) as one frame: `path` is a file, a glob pattern or a list
    of either (the winner's Hindi data hold MLQA-hi dev and test: `*/*-context-hi-question-hi.json` in MLQA_V1.zip's
    dev/ and test/ folders). An id in two files is an error naming both."""
    paths = _expand(path)
    frames, seen = [], {}
    for p in paths:
        df = load_squad_json(p, language=language, source="mlqa", **kw)
        for qid in df["id"]:
            if qid in seen:
                raise DataError(p, f"id {qid!r} is also in {seen[qid]}: the MLQA files overlap", field="id")
            seen[qid] = p
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(files=[str(p) for p in paths], n_dropped=sum(f.attrs["n_dropped"] for f in frames),
                     dropped=[d for f in frames for d in f.attrs["dropped"]])
    return out


def _expand(path) -> list[Path]:
    """A file, a glob pattern or a list of them -> the files, each pattern's matches sorted; a pattern matching
    nothing is an error (a missing file must not pass as an empty source)."""
    out = []
    for p in ([path] if isinstance(path, (str, os.PathLike)) else list(path)):
        if glob.has_magic(str(p)):
            matches = sorted(glob.glob(str(p)))
            if not matches:
                raise FileNotFoundError(f"no file matches {p}")
            out += [Path(m) for m in matches]
        else:
            out.append(Path(p))
    if not out:
        raise ValueError("no MLQA file given")
    return out


def load_chaii(path, on_error: str = "drop", **_) -> pd.DataFrame:
    """chaii train.csv as a training source: its known label noise is dropped and reported, not fatal."""
    df = load_chaii_csv(path, "train", on_error=on_error)
    df["answers"] = [[a] for a in df["answer_text"]]
    df["title"] = df["context"].map(context_title)   # no titles in chaii: a context is its own article
    return df


# `tydi_primary`, `nq_documents`, `chaii_mlqa_xquad`: the winner's own sources (whole articles and his CSV files:
# src/data/tydi_primary.py, src/data/nq.py, src/data/winner_csv.py); `squad` reads v1.1 (his) and v2.0 alike.
LOADERS = {"squad": load_squad_json, "tydi": load_tydi_json, "xquad": load_xquad_json, "mlqa": load_mlqa_json,
           "chaii": load_chaii, "tydi_primary": load_tydi_primary, "nq_documents": load_nq_documents,
           "chaii_mlqa_xquad": load_chaii_mlqa_xquad}


def load_source(kind: str, path, **kw) -> pd.DataFrame:
    """Dispatch on a source kind (the `kind` field of a recipe source)."""
    if kind not in LOADERS:
        raise ValueError(f"unknown source kind {kind!r}; known: {sorted(LOADERS)}")
    return LOADERS[kind](path, **kw)


def split_by_title(df: pd.DataFrame, test_fraction: float = 0.25, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) with whole articles on one side: parallel XQuAD questions must never straddle the split."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    titles = np.array(sorted(df["title"].unique()))
    rng = np.random.default_rng(seed)
    n_test = max(1, round(len(titles) * test_fraction))
    test_titles = set(rng.permutation(titles)[:n_test])
    is_test = df["title"].isin(test_titles)
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)
