"""How each backbone's tokenizer sees chaii text (notebook 02): cost in tokens and windows, answer alignment,
unknown tokens; as a table and as plots."""
from __future__ import annotations

import pandas as pd

from src.data.features import frame_to_batch, lone_underline_id, prepare_eval_features, token_char_spans
from src.data.presplit import is_punct  # the danda and double danda are Unicode punctuation (Po) already


def answer_alignment(context: str, start: int, answer: str, offsets: list[tuple[int, int]]) -> dict:
    """Whether the answer's edges fall on token edges, and whether an edge token carries glued punctuation."""
    end = start + len(answer)
    spans = [(a, b) for a, b in offsets if b > a]
    starts, ends = {a for a, _ in spans}, {b for _, b in spans}
    first = next(((a, b) for a, b in spans if a <= start < b), None)
    last = next(((a, b) for a, b in spans if a < end <= b), None)
    glued = bool(
        (first and first[0] < start and any(is_punct(c) for c in context[first[0]:start]))
        or (last and last[1] > end and any(is_punct(c) for c in context[end:last[1]])))
    return {"start_aligned": start in starts, "end_aligned": end in ends, "glued_punctuation": glued}


def tokenizer_report(df: pd.DataFrame, tokenizer, max_length: int = 384, doc_stride: int = 128) -> dict:
    """Tokens per word, unknown-token rate, windows per context and answer-boundary statistics of one tokenizer
    over `df` (answer edges measured on the spans post-processing cuts answers from)."""
    contexts = df.drop_duplicates("context")
    # whole contexts, longer than the model takes: verbose=False drops the "longer than the maximum" warning
    enc = tokenizer(contexts["context"].tolist(), add_special_tokens=False, return_offsets_mapping=True,
                    verbose=False)
    n_tokens = sum(len(x) for x in enc["input_ids"])
    n_unknown = sum(i == tokenizer.unk_token_id for x in enc["input_ids"] for i in x)
    n_words = int(contexts["context"].str.split().str.len().sum())
    feats = prepare_eval_features(frame_to_batch(df[["id", "question", "context"]]), tokenizer, max_length, doc_stride)
    windows = pd.Series(feats["example_id"]).value_counts()
    out = {"tokens_per_word": n_tokens / max(n_words, 1), "unknown_token_rate": n_unknown / max(n_tokens, 1),
           "windows_per_context_mean": float(windows.mean()), "windows_per_context_max": int(windows.max())}
    if "answer_text" in df:
        # the spans post-processing cuts answers from (whitespace trimmed, lone "▁" empty), not the raw offsets
        lone = lone_underline_id(tokenizer)
        offsets_of = {c: token_char_spans(c, o, ids, lone)
                      for c, o, ids in zip(contexts["context"], enc["offset_mapping"], enc["input_ids"], strict=True)}
        rows = [answer_alignment(c, s, a, offsets_of[c])
                for c, s, a in zip(df["context"], df["answer_start"], df["answer_text"], strict=True) if a]
        r = pd.DataFrame(rows)
        out.update(answers_start_aligned=float(r["start_aligned"].mean()),
                   answers_end_aligned=float(r["end_aligned"].mean()),
                   answers_both_aligned=float((r["start_aligned"] & r["end_aligned"]).mean()),
                   answers_glued_punctuation=float(r["glued_punctuation"].mean()))
    return out


def compare_tokenizers(df: pd.DataFrame, tokenizers: dict, max_length: int = 384,
                       doc_stride: int = 128) -> pd.DataFrame:
    """One row per tokenizer name, per language and overall."""
    rows = []
    for name, tok in tokenizers.items():
        for lang, part in [("all", df), *df.groupby("language")]:
            rows.append({"tokenizer": name, "language": lang, **tokenizer_report(part, tok, max_length, doc_stride)})
    return pd.DataFrame(rows).set_index(["tokenizer", "language"])


def load_available_tokenizers(names: list[str], models_dir) -> dict:
    """Tokenizers of the backbones found locally (under `models_dir` or as directories); says what is skipped."""
    from transformers import AutoTokenizer

    from src.train.backbones import resolve_model_path

    out = {}
    for name in [n.strip() for n in names if n.strip()]:
        try:
            path = resolve_model_path(name, models_dir)
            out[name] = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, FileNotFoundError, ValueError) as e:
            print(f"skipping {name}: not available locally ({e})")
    if not out:
        raise FileNotFoundError(f"none of {names} is available under {models_dir}")
    return out


def context_token_counts(df: pd.DataFrame, tokenizers: dict) -> pd.DataFrame:
    """Tokens per distinct context, one row per tokenizer x context: `tokenizer`, `language`, `tokens`."""
    contexts = df.drop_duplicates("context")
    rows = []
    for name, tok in tokenizers.items():
        ids = tok(contexts["context"].tolist(), add_special_tokens=False, verbose=False)["input_ids"]
        rows.append(pd.DataFrame({"tokenizer": name, "language": contexts["language"].to_numpy(),
                                  "tokens": [len(x) for x in ids]}))
    return pd.concat(rows, ignore_index=True)


# the audit's bar panels: (title, column of `compare_tokenizers`, transform)
AUDIT_BARS = [
    ("answers with a misaligned edge", "answers_both_aligned", lambda x: 1 - x),
    ("answers with glued punctuation", "answers_glued_punctuation", lambda x: x),
    ("unknown-token rate", "unknown_token_rate", lambda x: x),
]


def plot_audit(table: pd.DataFrame, counts: pd.DataFrame, save_to: str | None = None):
    """Tokens per context (box per tokenizer and language) and bars of the alignment / unknown-token shares, per
    tokenizer and language, from `compare_tokenizers` and `context_token_counts`; `save_to`: folder for
    tokenizers.png."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    bars = [b for b in AUDIT_BARS if b[1] in table]
    fig, axes = plt.subplots(1, 1 + len(bars), figsize=(4.5 * (1 + len(bars)), 3.8), squeeze=False)
    ax = axes[0, 0]
    groups = list(counts.groupby(["tokenizer", "language"], sort=True))
    ax.boxplot([g["tokens"].to_numpy() for _, g in groups], tick_labels=[f"{t}\n{lang}" for (t, lang), _ in groups])
    ax.set_title("tokens per context")
    ax.tick_params(axis="x", labelsize=8)
    per_language = table.drop(index="all", level="language", errors="ignore")
    for ax, (title, col, f) in zip(axes[0, 1:], bars, strict=True):
        f(per_language[col]).unstack("language").plot.bar(ax=ax, rot=0)
        ax.set_title(title)
        ax.set_xlabel("")
        ax.set_ylim(0, max(1e-3, ax.get_ylim()[1]))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    fig.tight_layout()
    from pathlib import Path

    from src.common.io import write_figure
    return write_figure(fig, Path(save_to) / "tokenizers.png" if save_to else None)
