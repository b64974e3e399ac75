"""blend.json: how the submission combines its models, as chosen on out-of-fold predictions (notebook 04).

Written by `blend_fit.fit_blend` (`BlendFit.save`), read by notebook 05 and the submit kernel (`load_blend_json`),
which check every field so that a hand-edited or stale file fails with its name and the field, not with a wrong
submission.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from src.blend.combine import SCHEMES, BlendConfig
from src.common.io import write_json
from src.infer.answer_rules import AnswerRules

BLEND_JSON = "blend.json"
FORMAT = 1


class BlendFileError(ValueError):
    """A blend.json that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class BlendSettings:
    """The combination a submission applies to its models' logits (see `blend.ensemble_spans`)."""
    scheme: str                      # "vote" | "char" | "single"
    backbones: list[str]             # the backbones used, strongest first (the vote falls back on the first)
    weights: dict[str, float]        # per backbone, for "char" (equal unless tuned); sums to 1
    vote_k: int = 0                  # votes a word needs; 0: a majority (combine.vote_threshold)
    n_best_size: int = 20
    max_answer_length: int = 30
    max_answer_chars: int = 100
    rules: dict = field(default_factory=dict)     # AnswerRules fields
    runs: dict = field(default_factory=dict)      # backbone -> the OOF runs it was fitted on
    cv: dict = field(default_factory=dict)        # out-of-fold scores of every candidate, and the choice
    format: int = FORMAT

    def blend_config(self, base: BlendConfig = BlendConfig()) -> BlendConfig:
        return replace(base, vote_k=self.vote_k, n_best_size=self.n_best_size,
                       max_answer_length=self.max_answer_length, max_answer_chars=self.max_answer_chars)

    def answer_rules(self) -> AnswerRules:
        return AnswerRules(**self.rules)

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(asdict(self), path)


def load_blend_json(path: str | os.PathLike) -> BlendSettings:
    """Read and check a blend.json; any problem is a `BlendFileError` naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise BlendFileError(f"{path}: blend settings not found (notebook 04 writes blend.json into its out_dir)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BlendFileError(f"{path}: not valid JSON ({e})") from None
    return check_settings(raw, str(path))


def check_settings(raw: dict, where: str = "blend.json") -> BlendSettings:
    """A `BlendSettings` from a parsed blend.json, every field checked."""
    def bad(name: str, why: str):
        raise BlendFileError(f"{where}: field {name!r}: {why}")

    if not isinstance(raw, dict):
        raise BlendFileError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    known = {f.name for f in fields(BlendSettings)}
    for name in raw:
        if name not in known:
            bad(name, f"unknown field (known: {', '.join(sorted(known))})")
    for name in ("scheme", "backbones", "weights"):
        if name not in raw:
            bad(name, "missing")
    if raw.get("format", FORMAT) != FORMAT:
        bad("format", f"{raw['format']!r}: this code reads format {FORMAT}; refit the blend (notebook 04)")
    if raw["scheme"] not in SCHEMES:
        bad("scheme", f"{raw['scheme']!r}; expected one of {list(SCHEMES)}")
    backbones = raw["backbones"]
    if not isinstance(backbones, list) or not backbones or not all(isinstance(b, str) and b for b in backbones):
        bad("backbones", "expected a non-empty list of backbone names")
    if len(set(backbones)) != len(backbones):
        bad("backbones", f"repeated names in {backbones}")
    if raw["scheme"] == "single" and len(backbones) != 1:
        bad("backbones", f"scheme 'single' uses one backbone, got {backbones}")
    weights = raw["weights"]
    if not isinstance(weights, dict) or set(weights) != set(backbones):
        bad("weights", f"expected one weight per backbone {backbones}, got {weights!r}")
    for b, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            bad("weights", f"{b}: {w!r} is not a number >= 0")
    if sum(weights.values()) <= 0:
        bad("weights", "all weights are 0")
    for name in ("vote_k", "n_best_size", "max_answer_length", "max_answer_chars"):
        v, least = raw.get(name, 1), 0 if name == "vote_k" else 1     # vote_k 0: a majority
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            bad(name, f"{v!r} is not an integer >= {least}")
    if raw["scheme"] == "vote" and raw.get("vote_k", 0) > len(backbones):
        bad("vote_k", f"{raw['vote_k']} of {len(backbones)} backbones cannot be reached")
    rules = raw.get("rules", {})
    rule_names = {f.name for f in fields(AnswerRules)}
    if not isinstance(rules, dict) or not set(rules) <= rule_names or \
            not all(isinstance(v, bool) for v in rules.values()):
        bad("rules", f"expected true/false for some of {sorted(rule_names)}, got {rules!r}")
    for name in ("runs", "cv"):
        if not isinstance(raw.get(name, {}), dict):
            bad(name, "expected a JSON object")
    total = sum(weights.values())
    return BlendSettings(**{**raw, "weights": {b: float(weights[b]) / total for b in backbones}})
