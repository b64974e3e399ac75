"""Out-of-fold predictions per backbone: each training run's held-out logits read (`oof_logits.npz`), checked
against train.csv, and merged over a backbone's runs: runs on different folds concatenated (every row scored once,
by the model that held it out), runs on the same fold (seeds, checkpoints of one run) averaged.

`src/blend/fit.py` fits the blend on what this returns.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from src.blend.chars import CharScores, concat_char_scores, group_char_scores, select_char_scores
from src.blend.combine import BlendConfig, group_spans, merge_windows, run_name
from src.infer.predict import WindowLogits


def run_backbone(run_dir: str | Path) -> str:
    """Backbone of a training run folder (metrics.json), else the folder above `fold<k>`."""
    m = Path(run_dir) / "metrics.json"
    if m.exists():
        return json.loads(m.read_text())["config"]["backbone"]
    return Path(run_dir).parent.name


@dataclass
class BackboneOof:
    """One backbone's out-of-fold predictions, merged over its runs: row i is example ids[i], held out in fold[i]."""
    name: str
    runs: list[str]
    ids: np.ndarray
    fold: np.ndarray
    spans: np.ndarray      # (n, 2) decoded per fold (token level when the fold's windows match)
    scores: CharScores     # for blending across backbones

    def at(self, ids) -> tuple[np.ndarray, CharScores]:
        """Spans and character scores of the examples `ids`, in that order."""
        pos = pd.Index(self.ids).get_indexer(ids)
        return self.spans[pos], select_char_scores(self.scores, ids)


def train_rows(train: pd.DataFrame, ids) -> pd.DataFrame:
    """The training rows of `ids`, in train.csv order."""
    return train[train["id"].isin(set(ids))].reset_index(drop=True)


def merge_backbone(train: pd.DataFrame, name: str, runs: dict[str, WindowLogits], cfg: BlendConfig) -> BackboneOof:
    """Concatenate runs on different folds, average runs on the same fold (the same held-out rows)."""
    by_rows: dict[frozenset, list[str]] = {}
    for run, x in runs.items():
        by_rows.setdefault(frozenset(x.example_id.tolist()), []).append(run)
    seen: dict[str, str] = {}
    ids, folds, spans, scores = [], [], [], []
    for rows, members in by_rows.items():
        for eid in rows:
            if eid in seen:
                raise ValueError(f"runs {seen[eid]} and {members[0]} of {name} both hold out row {eid!r} but not the "
                                 "same rows (other n_folds or seed?); cannot merge their folds")
            seen[eid] = members[0]
        ex = train_rows(train, rows)
        group = merge_windows([runs[r] for r in members])
        ids.append(ex["id"].to_numpy())
        folds.append(np.full(len(ex), run_fold(members[0])))
        spans.append(group_spans(ex, group, cfg))
        scores.append(group_char_scores(ids[-1], ex["context"].str.len().to_numpy(), group))
    return BackboneOof(name, list(runs), np.concatenate(ids), np.concatenate(folds), np.concatenate(spans),
                       concat_char_scores(scores))


def run_fold(run: str) -> int:
    """The fold a run held out, from its name: "rembert/fold2", or "fold2/step1000" for a checkpoint exported from
    that run (src/train/exports.py); -1 when no fold is named."""
    found = re.findall(r"(?:^|/)fold(\d+)(?=/|$)", run)
    return int(found[-1]) if found else -1


def load_runs(train: pd.DataFrame, run_dirs: list[str]) -> dict[str, dict[str, WindowLogits]]:
    """{backbone: {run name: out-of-fold logits}}; a missing file or a row not in train.csv is a clear error."""
    known = set(train["id"])
    seen: set[Path] = set()
    out: dict[str, dict[str, WindowLogits]] = {}
    for d in run_dirs:
        path = Path(d) / "oof_logits.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no out-of-fold logits; is {d} a finished training run (notebook 03)?")
        x = WindowLogits.load(path)
        unknown = [e for e in dict.fromkeys(x.example_id.tolist()) if e not in known]
        if unknown:
            raise ValueError(f"{path}: {len(unknown)} held-out ids are not in train.csv (e.g. {unknown[0]!r}); "
                             "was the run trained on other data?")
        if Path(d).resolve() in seen:
            raise ValueError(f"run {d} given twice in run_dirs")
        seen.add(Path(d).resolve())
        name, parts = run_name(d), Path(d).parts
        while any(name in runs for runs in out.values()) and name.count("/") + 1 < len(parts):
            name = "/".join(parts[-name.count("/") - 2:])    # seeds in other work dirs: s2/<backbone>/fold0
        out.setdefault(run_backbone(d), {})[name] = x
    if not out:
        raise ValueError("run_dirs is empty: give the training run folders (<work>/<backbone>/fold<k>)")
    return out
