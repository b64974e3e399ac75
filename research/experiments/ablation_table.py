"""The ablation's table, verdicts and plot: pure functions over the logged runs' rows
(`research.experiments.ablate report`).

A difference from plain is beyond the noise when it exceeds twice the combined seed sd; every cell also carries
the mean of the runs' 95% bootstrap intervals over questions. Each score column names its context shape
(`research.experiments.evalsets`): "paragraph" (the question beside its own paragraph, the logged key `<set>`) or
"article" (beside its whole article, the key `<set>_article`); runs logged without article scores show "-" there.

Scores move with the kind of machine a run trained on (its CPU model and native bf16): each kind rebuilds the base
bit for bit, the kinds' bases differ. A grid's cells stay on its first run's kind: a run from another kind is
shifted by that kind's offset, measured on plain (plain's runs repeated there, `ablate reproduce`), and its
variant's seeds cell says how many were (`on_first_machine`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

SHAPE_KEYS = {"paragraph": "{}", "article": "{}_article"}   # a set's logged score key per context shape

def score_columns(sets: Sequence[str], shapes: Sequence[str] = tuple(SHAPE_KEYS)) -> list[tuple[str, str, str]]:
    """(summary column = logged key, set, shape) per set and shape, every set's paragraph column first."""
    return [(SHAPE_KEYS[shape].format(n), n, shape) for shape in shapes for n in sets]


def machine_kind(row: dict) -> tuple:
    """The kind of machine a logged run trained on (CPU model, native bf16); (None, None) where the row predates
    the field. Plain's 3 seeds repeated on machine C's kind scored lower on whole articles than on A's, every seed
    (-0.022 Hindi, -0.034 Tamil: the size of the effects the grid looks for), level on paragraphs
    (docs/experiments.md "Whole articles")."""
    machine = row.get("machine") or {}
    return machine.get("cpu"), machine.get("cpu_bf16")


def plain_repeats(rows: list[dict], repeats: list[dict], kind: tuple) -> list[tuple[dict, list[dict]]]:
    """Each of plain's runs on the first run's kind of machine with its repeats on `kind`; [] unless every one of
    them was repeated there (one seed's repeat would carry that seed's noise)."""
    ref = machine_kind(rows[0]) if rows else None
    pairs = [(p, [x for x in repeats if x.get("reproduces") == p["run_id"] and machine_kind(x) == kind])
             for p in rows if p.get("variant") == "plain" and machine_kind(p) == ref]
    return pairs if pairs and all(reps for _, reps in pairs) else []


def machine_offsets(rows: list[dict], repeats: list[dict], keys: Sequence[str]) -> dict[tuple, dict[str, float]]:
    """Per kind of machine other than the first run's: what to add to a score a run logged there to put it on the
    first run's kind, per key: the mean of plain's runs minus the mean of their repeats on that kind. Only a kind
    that repeated every one of plain's runs gets an offset (`plain_repeats`)."""
    if not rows:
        return {}
    out: dict[tuple, dict[str, float]] = {}
    for kind in {machine_kind(r) for r in repeats} - {machine_kind(rows[0])}:
        pairs = plain_repeats(rows, repeats, kind)
        if pairs:
            out[kind] = {k: float(np.mean([p["metrics"][k] for p, _ in pairs])
                                  - np.mean([np.mean([x["metrics"][k] for x in reps]) for _, reps in pairs]))
                         for k in keys if all(k in p["metrics"] and all(k in x["metrics"] for x in reps)
                                              for p, reps in pairs)}
    return out


def on_first_machine(rows: list[dict], repeats: list[dict], keys: Sequence[str]) -> list[dict]:
    """`rows` with each score (and its bootstrap bounds) of a run from another kind of machine shifted by that
    kind's offset (`machine_offsets`), marked `offset_from`; a run from a kind without an offset stays as logged
    (a grid run with `--any-machine`)."""
    offsets = machine_offsets(rows, repeats, keys)
    out = []
    for r in rows:
        d = offsets.get(machine_kind(r))     # never the first run's kind (`machine_offsets`)
        if not d:
            out.append(r)
            continue
        m = dict(r["metrics"])
        for k, shift in d.items():
            for key in (k, f"{k}_lo", f"{k}_hi"):
                if key in m:
                    m[key] = m[key] + shift
        out.append({**r, "metrics": m, "offset_from": machine_kind(r)[0]})
    return out


def offsets_note(rows: list[dict], repeats: list[dict], keys: Sequence[str]) -> str:
    """A sentence per kind whose runs the table shifted: the kind, how many runs, and the offset per key with its
    standard error (plain's seed sd on each kind over the root of its runs), which the shifted cells' sd leaves out."""
    offsets = machine_offsets(rows, repeats, keys)
    lines = []
    for kind, d in offsets.items():
        n = sum(machine_kind(r) == kind for r in rows)
        if not n:
            continue
        pairs = plain_repeats(rows, repeats, kind)

        def se(k: str, pairs: list[tuple[dict, list[dict]]] = pairs) -> float:
            a = [p["metrics"][k] for p, _ in pairs]
            b = [np.mean([x["metrics"][k] for x in reps]) for _, reps in pairs]
            return math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b)) if len(a) > 1 else math.nan
        lines.append(f"Shifted to {machine_kind(rows[0])[0]} (the first run's machine): {n} run{'s' if n > 1 else ''} "
                     f"trained on {kind[0]} (bf16 {kind[1]}), by plain's offset there (its runs minus their repeats, "
                     "± its standard error): " + ", ".join(f"{k} {v:+.3f} ± {se(k):.3f}" for k, v in d.items()) + ".")
    return "\n".join(lines)


def timing_setting(row: dict) -> tuple:
    """What a run's minutes depend on besides its work: the CPU and glibc's malloc settings (docs/experiments.md
    "Step time"); rows logged before the log named them read as (None, None)."""
    machine = row.get("machine") or {}
    return machine.get("cpu"), str(sorted((machine.get("malloc") or {}).items()))


def train_minutes(rows: list[dict]) -> float:
    """Mean training minutes of `rows` (one variant's runs, in log order) over those that ran on the first run's
    CPU and malloc settings: minutes from another machine would mix two clocks in one cell."""
    first = timing_setting(rows[0])
    return float(np.mean([r["train_seconds"] for r in rows if timing_setting(r) == first])) / 60


def summary(rows: list[dict], sets: Sequence[str], order: Sequence[str] = ()) -> pd.DataFrame:
    """One row per variant (those in `order` first, then the others by name): mean and seed sd of Jaccard per
    evaluation set and context shape (columns `<set>` and `<set>_article`, NaN where no run has that score; a
    mean over the runs that have it), the mean of the runs' 95% bootstrap bounds, windows, and train time on the
    variant's first run's machine settings (`train_minutes`)."""
    df = pd.json_normalize(rows)
    out = []
    known = [v for v in order if v in set(df["variant"])]
    for v in known + sorted(set(df["variant"]) - set(known)):
        g = df[df["variant"] == v]
        rec = {"variant": v, "n_seeds": len(g),
               "n_offset": sum(bool(r.get("offset_from")) for r in rows if r["variant"] == v),
               "train_min": train_minutes([r for r in rows if r["variant"] == v]),
               "windows": g["n_train_windows"].mean()}
        for n, _, _ in score_columns(sets):
            col = f"metrics.{n}"
            vals = g[col] if col in g else pd.Series([np.nan] * len(g))
            rec[n], rec[f"{n}_sd"] = vals.mean(), vals.std(ddof=1)
            rec[f"{n}_lo"] = g[f"{col}_lo"].mean() if f"{col}_lo" in g else np.nan
            rec[f"{n}_hi"] = g[f"{col}_hi"].mean() if f"{col}_hi" in g else np.nan
        out.append(rec)
    return pd.DataFrame(out)


def markdown_table(s: pd.DataFrame, sets: Sequence[str], shapes: Sequence[str] | None = None) -> str:
    """One row per variant; per set and context shape ("xquad_hi (paragraph)"): mean Jaccard, ± seed sd (two or
    more seeds), [95% interval]; "-" where no run has that score (never a value the log does not hold).

    shapes: the shapes to show, among `SHAPE_KEYS`; None shows every set's paragraph column, and a set's article
    column once any run has an article score for that set (a grid that scores only some sets as whole articles
    gets no column of dashes for the others)."""
    if shapes is None:
        columns = [c for c in score_columns(sets)
                   if c[2] == "paragraph" or (c[0] in s and s[c[0]].notna().any())]
    else:
        columns = score_columns(sets, shapes)

    def cell(r, n):
        if pd.isna(getattr(r, n)):
            return "-"
        sd = getattr(r, f"{n}_sd")
        return (f"{getattr(r, n):.3f}" + (f" ± {sd:.3f}" if r.n_seeds > 1 and not pd.isna(sd) else "")
                + f" [{getattr(r, f'{n}_lo'):.2f}, {getattr(r, f'{n}_hi'):.2f}]")
    lines = ["| variant | seeds | " + " | ".join(f"{n} ({shape})" for _, n, shape in columns)
             + " | train windows | train time (min) |",
             "|---|---|" + "---|" * len(columns) + "---|---|"]
    for r in s.itertuples():
        seeds = f"{r.n_seeds}" + (f" ({r.n_offset} shifted)" if getattr(r, "n_offset", 0) else "")
        lines.append(f"| {r.variant} | {seeds} | " + " | ".join(cell(r, c) for c, _, _ in columns)
                     + f" | {r.windows:.0f} | {r.train_min:.1f} |")
    return "\n".join(lines) + "\n"


def difference_and_noise(r, p: pd.Series, n: str) -> tuple[float, float]:
    """A variant's (summary row `r`) difference from plain (`p`) on `n`, and the noise it must exceed: twice the
    combined seed sd, sqrt(sd_v^2 + sd_plain^2), a one-seed variant borrowing plain's sd for its own."""
    sd_v = getattr(r, f"{n}_sd") if r.n_seeds > 1 else p[f"{n}_sd"]
    return getattr(r, n) - p[n], 2 * math.sqrt(sd_v ** 2 + p[f"{n}_sd"] ** 2)


def verdicts(s: pd.DataFrame, sets: Sequence[str]) -> list[str]:
    """A sentence per variant: is its difference from plain beyond the noise (more than twice the combined seed
    sd, sqrt(sd_v^2 + sd_plain^2)) on each set? A one-seed variant borrows plain's sd for its own."""
    if "plain" not in set(s["variant"]):
        return ["plain has not run: no comparison yet."]
    p = s[s["variant"] == "plain"].iloc[0]
    if p["n_seeds"] < 2:
        return ["plain has one seed: its seed sd, and so the noise, is unknown yet."]
    out = []
    for r in s.itertuples():
        if r.variant == "plain":
            continue
        beyond, within = [], []
        for n in sets:
            diff, noise = difference_and_noise(r, p, n)
            (beyond if abs(diff) > noise else within).append(f"{n} {diff:+.3f}")
        seeds = f"{r.n_seeds} seed{'s' if r.n_seeds > 1 else ''}"
        if beyond:
            out.append(f"{r.variant} ({seeds}): beyond the noise on {', '.join(beyond)}"
                       + (f"; within it on {', '.join(within)}." if within else "."))
        else:
            out.append(f"{r.variant} ({seeds}): within the noise everywhere ({', '.join(within)}).")
    return out


def ahead_of_plain(s: pd.DataFrame, sets: Sequence[str]) -> str:
    """One sentence: which variants beat plain beyond the noise (the rule of `verdicts`), and where; "none" said
    plainly when none does."""
    if "plain" not in set(s["variant"]) or s.loc[s["variant"] == "plain", "n_seeds"].iloc[0] < 2:
        return ""
    p = s[s["variant"] == "plain"].iloc[0]
    wins = []
    for r in s.itertuples():
        if r.variant == "plain":
            continue
        for n in sets:
            diff, noise = difference_and_noise(r, p, n)
            if diff > noise:
                wins.append(f"{r.variant} on {n} ({diff:+.3f}, {r.n_seeds} seed{'s' if r.n_seeds > 1 else ''})")
    return ("Ahead of plain beyond the noise: " + ("; ".join(wins) if wins else "no variant, on any set") + ".")


def repeats_table(rows: list[dict], repeats: list[dict], sets: Sequence[str]) -> str:
    """Each run of `rows` that was reproduced (`research.experiments.ablate reproduce`) beside its `repeats`: the
    machine's CPU, the precision that really ran, training minutes and Jaccard per set, so a difference of machine
    shows."""
    by_id = {r["run_id"]: r for r in rows}
    lines = ["Repeats of logged runs (`reproduce`): the same configuration on another machine or precision", "",
             "| run | cpu | precision | train min | " + " | ".join(sets) + " |",
             "|---|---|---|---|" + "---|" * len(sets)]
    for orig_id in dict.fromkeys(r["reproduces"] for r in repeats):
        for r in [by_id[orig_id]] + [x for x in repeats if x["reproduces"] == orig_id]:
            machine = r.get("machine", {})
            lines.append(f"| {r['run_id']} | {machine.get('cpu') or '?'} | {r.get('precision', '?')} | "
                         f"{r['train_seconds'] / 60:.1f} | "
                         + " | ".join(f"{r['metrics'][n]:.3f}" if n in r["metrics"] else "" for n in sets) + " |")
    by_variant: dict[str, list[dict]] = {}
    for r in repeats:
        by_variant.setdefault(by_id[r["reproduces"]].get("variant", "?"), []).append(r)
    for variant, group in by_variant.items():
        if len(group) < 2:
            continue
        # one variant's repeats as a group, to set beside the table's mean ± seed sd of its originals
        vals = {n: [r["metrics"][n] for r in group if n in r["metrics"]] for n in sets}
        lines.append(f"| the {len(group)} repeats of {variant}, mean ± sd | | | "
                     f"{np.mean([r['train_seconds'] for r in group]) / 60:.1f} | "
                     + " | ".join(f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else ""
                                  for v in vals.values()) + " |")
    return "\n".join(lines) + "\n"


def plot(s: pd.DataFrame, sets: Sequence[str], path: Path) -> None:
    """Bars per variant and set (mean over seeds, ± seed sd), written atomically to `path`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from src.common.io import atomic_path
    x = np.arange(len(s))
    w = 0.8 / len(sets)
    fig, ax = plt.subplots(figsize=(11, 4))
    for k, n in enumerate(sets):
        ax.bar(x + (k - (len(sets) - 1) / 2) * w, s[n], w, yerr=s[f"{n}_sd"].fillna(0), capsize=2, label=n)
    ax.set_ylabel("Jaccard")
    ax.set_title("Ablation from the QA base (e5-small-qa): mean over seeds (seeds under the bars), ± seed sd")
    ax.set_xticks(x, [f"{v}\n({n})" for v, n in zip(s["variant"], s["n_seeds"], strict=True)])
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
