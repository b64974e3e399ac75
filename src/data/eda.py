"""Exploratory tables and plots over a chaii-format frame (notebook 01)."""
from __future__ import annotations

import pandas as pd


def lengths(df: pd.DataFrame) -> pd.DataFrame:
    """Per-row lengths (characters and whitespace words) and the answer's relative position in the context."""
    out = pd.DataFrame({
        "language": df["language"],
        "context_chars": df["context"].str.len(),
        "context_words": df["context"].str.split().str.len(),
        "question_words": df["question"].str.split().str.len(),
    })
    if "answer_text" in df:
        out["answer_words"] = df["answer_text"].str.split().str.len()
        out["answer_chars"] = df["answer_text"].str.len()
        out["answer_position"] = df["answer_start"] / df["context"].str.len()
    return out


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Rows, distinct contexts and median/max lengths per language."""
    L = lengths(df)
    g = L.groupby("language")
    table = pd.DataFrame({"rows": g.size(), "contexts": df.groupby("language")["context"].nunique()})
    for col in [c for c in L.columns if c != "language"]:
        table[f"{col}_median"] = g[col].median()
        table[f"{col}_max"] = g[col].max()
    return table


def plot(df: pd.DataFrame, save_to: str | None = None):
    """Histograms of context length, answer length and answer position, coloured by language."""
    import matplotlib.pyplot as plt

    L = lengths(df)
    cols = [c for c in ("context_chars", "answer_words", "answer_position") if c in L]
    fig, axes = plt.subplots(1, len(cols), figsize=(5 * len(cols), 3.5), squeeze=False)
    for ax, col in zip(axes[0], cols, strict=True):
        for lang, part in L.groupby("language"):
            ax.hist(part[col].dropna(), bins=20, alpha=0.6, label=lang)
        ax.set_title(col)
        ax.legend()
    fig.tight_layout()
    from pathlib import Path

    from src.common.io import write_figure
    return write_figure(fig, Path(save_to) / "eda.png" if save_to else None)
