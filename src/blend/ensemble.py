"""Answers for new questions from fine-tuned model folders: predict with each, combine as blend.json says.

Notebook 05 and the submit kernel call `resolve_blend` (its `blend` parameter: "" / a blend.json / "oof") and
`predict_answers`.
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pandas as pd

from src.blend.combine import BlendConfig, ensemble_spans
from src.blend.settings import BLEND_JSON, BlendSettings, load_blend_json
from src.common.io import write_json
from src.infer.answer_rules import AnswerRules, answers_from_spans
from src.infer.devices import predict_models
from src.infer.predict import MODEL_CONFIG, WindowLogits


def model_backbone(model_dir: str | Path) -> str:
    """The backbone a fine-tuned model directory was trained from (its chaii_config.json), else its folder name."""
    cfg = Path(model_dir) / MODEL_CONFIG
    if cfg.exists():
        return json.loads(cfg.read_text())["backbone"]
    return Path(model_dir).name


def use_blend(model_dirs: list[str], blend: BlendSettings) -> list[str]:
    """The model folders `blend` uses, ordered by its backbones (strongest first); each of them must be there."""
    backbones = [model_backbone(d) for d in model_dirs]
    missing = [b for b in blend.backbones if b not in backbones]
    if missing:
        raise ValueError(f"blend.json combines backbones {blend.backbones}, but no model in model_dirs is "
                         f"{missing} (the models are {sorted(set(backbones))}); give their model folders or refit")
    return [d for b in blend.backbones for d, db in zip(model_dirs, backbones, strict=True) if db == b]


def predict_answers(examples: pd.DataFrame, model_dirs: list[str], weights: list[float] | None = None,
                    batch_size: int = 64, cfg: BlendConfig | None = None, rules: AnswerRules | None = None,
                    blend: BlendSettings | None = None, precision: str = "auto",
                    max_length: int | None = None, doc_stride: int | None = None,
                    num_processes: int = 0, logits_dir: str | Path | None = None) -> dict[str, str]:
    """Answer per example id from fine-tuned model directories of any backbones.

    `num_processes`: 0 = one process per visible GPU, each predicting a share of the models (`devices.predict_models`;
    the logits come back in the models' order, so the answers are those of one process); 1 = all in this process.

    `precision`: inference precision of every model (`predict.PRECISIONS`; "auto" = the measured default for the
    device, `predict.AUTO_PRECISION`). `max_length`/`doc_stride`: windows for models saved without their training
    settings (chaii_config.json, e.g. trained elsewhere); None = the saved ones.

    Without `blend`: the winner's scheme (`blend.ensemble_spans`; `weights` per model, within its backbone).
    With `blend` (a read blend.json): its scheme, backbone weights, decode limits and answer rules (a rule that
    `rules` turns on stays on); models of backbones it does not use are skipped.

    `logits_dir`: also save the window logits of EVERY model in `model_dirs` there (`save_logits`; the ones a blend
    skips are predicted too), to compare or refit blends later without predicting again."""
    cfg = cfg or BlendConfig()
    scheme = backbone_weights = None
    used = model_dirs
    if blend is not None:
        if weights is not None:
            raise ValueError("give per-model weights or a blend.json, not both (blend.json holds backbone weights)")
        used = use_blend(model_dirs, blend)
        cfg, scheme, backbone_weights = blend.blend_config(cfg), blend.scheme, blend.weights
        mine, theirs = rules or AnswerRules(), blend.answer_rules()
        rules = AnswerRules(**{f.name: getattr(mine, f.name) or getattr(theirs, f.name) for f in fields(AnswerRules)})
    predicted = model_dirs if logits_dir is not None else used
    logits = predict_models(predicted, examples, batch_size, precision, max_length, doc_stride, num_processes)
    if logits_dir is not None:
        save_logits(logits, predicted, logits_dir)
        logits = [logits[predicted.index(d)] for d in used]
    model_dirs = used
    spans = ensemble_spans(examples, logits, [model_backbone(d) for d in model_dirs], weights, cfg, scheme,
                           backbone_weights)
    return answers_from_spans(examples, spans, rules)


LOGITS_INDEX = "models.json"


def save_logits(logits: list[WindowLogits], model_dirs: list[str], out_dir: str | Path) -> Path:
    """`<out_dir>/model<i>.npz` per model (`WindowLogits.save`) and `models.json`: per file its model folder and
    backbone, in the models' order. Returns the index's path."""
    out_dir = Path(out_dir)
    index = [{"file": f"model{i}.npz", "model_dir": str(d), "backbone": model_backbone(d)}
             for i, d in enumerate(model_dirs)]
    for entry, x in zip(index, logits, strict=True):
        x.save(out_dir / entry["file"])
    return write_json(index, out_dir / LOGITS_INDEX)


def load_logits(out_dir: str | Path) -> tuple[list[WindowLogits], list[str]]:
    """What `save_logits` wrote: (window logits per model, backbone per model), in the models' order."""
    index = json.loads((Path(out_dir) / LOGITS_INDEX).read_text(encoding="utf-8"))
    return [WindowLogits.load(Path(out_dir) / e["file"]) for e in index], [e["backbone"] for e in index]


def without_oof(run_dir: str | Path) -> bool:
    """A run that held no chaii row out (fold -1: trained on all of them, or a recipe without chaii; the winner's 126
    and 52): its metrics.json counts 0 held-out rows and it has no out-of-fold logits to fit a blend on."""
    run = Path(run_dir)
    metrics = run / "metrics.json"
    if (run / "oof_logits.npz").is_file() or not metrics.is_file():
        return False
    return json.loads(metrics.read_text(encoding="utf-8")).get("metrics", {}).get("n_valid") == 0


def resolve_blend(blend: str, model_dirs: list[str], train_csv: str | Path, work_dir: str | Path,
                  cfg: BlendConfig = BlendConfig(), rules: AnswerRules | None = None) -> BlendSettings | None:
    """Notebook 05's `blend` parameter: "" -> None (the winner's default scheme); "oof" -> fit on the training
    runs above `model_dirs` (`<run>/model`), write blend.json, oof_blend.csv and blend_table.csv into `work_dir`
    and print the table; anything else -> the blend.json at that path.

    A model whose run held no row out (`without_oof`) cannot be scored out of fold, so the fit leaves it out: the
    backbone weights and the scheme are chosen on the other runs, and at inference the model is averaged into its
    backbone with the same weight as each of that backbone's models (the winner's average within a backbone)."""
    if not blend:
        return None
    if blend != "oof":
        path = Path(blend)
        return load_blend_json(path / BLEND_JSON if path.is_dir() else path)
    from src.blend.fit import fit_blend
    from src.data.load import load_chaii_csv

    runs = [str(Path(d).parent) for d in model_dirs]
    skipped = [r for r in runs if without_oof(r)]
    fit = fit_blend(load_chaii_csv(train_csv), [r for r in runs if r not in skipped], cfg, rules)
    if skipped:
        fit.settings.cv["without_oof"] = skipped
        print(f"not in the fit (no out-of-fold rows): {', '.join(skipped)}; each joins its backbone's average with "
              "an equal weight, a backbone the blend leaves out is not used")
    fit.save(work_dir)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(fit.table.round(4).to_string())
    print(f"chosen: {fit.chosen} -> {Path(work_dir) / BLEND_JSON}")
    return fit.settings
