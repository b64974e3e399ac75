"""Local stand-ins for the backbones, for offline work: tiny models built here, and the real e5-small.

Model hubs are unreachable in CI, so `build_tiny` trains a WordPiece (MuRIL-like) or a SentencePiece-Unigram
(XLM-R/RemBERT-like) tokenizer on the project's own text and saves a small, randomly initialised model beside it: a
normal model directory that goes through exactly the same loading code as a registered backbone's weights.
`ensure_e5_small` builds the real pretrained multilingual-e5-small from ../shared/tools/e5_small.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.common.paths import CACHE_DIR, REPO_ROOT, SHARED_DIR
from src.train.backbones import get_backbone

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
