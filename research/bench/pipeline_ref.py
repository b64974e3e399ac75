"""The reference users would otherwise run: transformers' `pipeline("question-answering")`, in a worker process.

The QA pipeline was removed in transformers 5, so the reference runs transformers 4.57.6 (the last release with
it), pip-installed into a folder of its own beside the project (never into the venv) and put first on the
worker's PYTHONPATH. `pipeline_rule_answers` is the pipeline's span rule applied to our logits, which tells
"other windows or logits" (a bug in ours) from "another rule for choosing the span".

    python -m research.bench.pipeline_ref MODEL_DIR INPUTS.json BATCH MAX_SEQ_LEN DOC_STRIDE MAX_ANSWER_LEN OUT.json
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from src.common.paths import CACHE_DIR

PIPELINE_TRANSFORMERS = "4.57.6"   # last transformers release with pipeline("question-answering")
PIPELINE_SITE = CACHE_DIR / f"hf-pipeline-{PIPELINE_TRANSFORMERS}"
PIPELINE_PINS = [f"transformers=={PIPELINE_TRANSFORMERS}", "tokenizers==0.22.2", "huggingface_hub==0.36.0"]
DEFAULT_BATCH_SIZE = 1   # the pipeline's own default
BATCH_SIZES = (DEFAULT_BATCH_SIZE, 4, 8, 32)   # tried by `make bench`; the ratio is against the fastest


def ensure_pipeline_site() -> Path:
    """transformers 4.57.6 (+ its tokenizers/hub) in a folder of its own, used only by the reference worker."""
    if not (PIPELINE_SITE / "transformers" / "pipelines" / "question_answering.py").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(PIPELINE_SITE),
                        *PIPELINE_PINS], check=True)
    return PIPELINE_SITE


def pipeline_env() -> dict:
    return {"PYTHONPATH": str(ensure_pipeline_site())}


def _tokenizer(model_dir: str):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except ValueError:  # saved by transformers 5 ("TokenizersBackend"): the same tokenizer.json, loaded directly
        cfg = json.loads((Path(model_dir) / "tokenizer_config.json").read_text())
        special = {k: cfg[k] for k in ("bos_token", "eos_token", "unk_token", "sep_token", "cls_token", "pad_token",
                                       "mask_token") if isinstance(cfg.get(k), str)}
        # model_input_names too: without it the tokenizer also returns token_type_ids, which XLM-R's post-processor
        # sets to 1 on the context of every overflow window (0 in the first): other logits for a model whose type
        # embedding has a second row (e5-small: up to 3.1 apart), unlike training and unlike our path
        return PreTrainedTokenizerFast(tokenizer_file=str(Path(model_dir) / "tokenizer.json"), **special,
                                       model_input_names=cfg.get("model_input_names", ["input_ids", "attention_mask"]))


def worker_pipeline(model_dir: str, inputs: str, batch_size: int, max_seq_len: int, doc_stride: int,
                    max_answer_length: int) -> dict:
    """transformers' QA pipeline (4.57.6) with its defaults except the window and answer-length settings,
    `batch_size`, SDPA attention (4.57.6's own default where the model has it; asked for explicitly so both
    sides use it) and `align_to_words=False` (answers at token offsets, as utils_qa's)."""
    import transformers
    from transformers import AutoModelForQuestionAnswering, pipeline

    from research.bench.workers import peak_rss_mb

    assert transformers.__version__ == PIPELINE_TRANSFORMERS, transformers.__version__
    df = pd.read_json(inputs)
    tok = _tokenizer(model_dir)
    try:
        model = AutoModelForQuestionAnswering.from_pretrained(model_dir, attn_implementation="sdpa").eval()
    except ValueError:
        model = AutoModelForQuestionAnswering.from_pretrained(model_dir, attn_implementation="eager").eval()
    qa = pipeline("question-answering", model=model, tokenizer=tok, device="cpu")
    rss_loaded = peak_rss_mb()
    t0 = time.perf_counter()
    res = qa(question=df["question"].tolist(), context=df["context"].tolist(), max_seq_len=max_seq_len,
             doc_stride=doc_stride, max_answer_len=max_answer_length, align_to_words=False, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    res = res if isinstance(res, list) else [res]
    return dict(seconds=seconds, batch_size=batch_size, attention=model.config._attn_implementation,
                answers={i: r["answer"] for i, r in zip(df["id"], res, strict=True)}, peak_rss_mb=peak_rss_mb(),
                rss_after_load_mb=rss_loaded)


def pipeline_rule_answers(examples: pd.DataFrame, logits, max_answer_len: int) -> dict[str, str]:
    """The answer transformers' QA pipeline (4.57, top_k=1, align_to_words=False) would pick from these
    per-window logits: per window a softmax over the context tokens and CLS, the best start x end probability
    with end - start < max_answer_len (CLS excluded); the same answer text (any case) found in several windows
    adds up its scores; the highest score wins, the first on a tie. (utils_qa instead compares raw start+end
    logits across windows.) A plain loop: it only explains the agreement row, it is not timed."""
    from src.infer.predict import NO_OFFSET

    contexts = dict(zip(examples["id"], examples["context"], strict=True))
    found: dict[str, list[list]] = collections.defaultdict(list)
    for w, eid in enumerate(logits.example_id):
        allowed = logits.offsets[w, :, 0] != NO_OFFSET
        allowed[0] = True                                   # CLS stays in the softmax (the pipeline's p_mask)
        probs = []
        for x in (logits.start[w], logits.end[w]):
            x = np.where(allowed, x.astype(np.float32), np.float32(-10000.0))
            x = np.exp(x - x.max())
            x = x / x.sum()
            x[0] = 0.0
            probs.append(x)
        candidates = np.tril(np.triu(np.outer(*probs)), max_answer_len - 1)
        s, e = np.unravel_index(candidates.argmax(), candidates.shape)
        if not (allowed[s] and allowed[e]):
            continue
        text = "" if s == 0 or e == 0 else contexts[eid][logits.offsets[w, s, 0]:logits.offsets[w, e, 1]]
        for answer in found[eid]:
            if answer[0].lower() == text.lower():
                answer[1] += candidates[s, e]
                break
        else:
            found[eid].append([text, candidates[s, e]])
    return {eid: max(found[eid], key=lambda a: a[1])[0] if found[eid] else "" for eid in examples["id"]}


def agreement(a: dict, b: dict) -> tuple[int, int]:
    """Questions whose answers are the same text (surrounding whitespace aside: the pipeline keeps the space
    an XLM-R token carries in front of a word)."""
    return sum(a[k].strip() == b[k].strip() for k in a), len(a)


if __name__ == "__main__":
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model_dir, inputs, *nums, out = sys.argv[1:]
    Path(out).write_text(json.dumps(worker_pipeline(model_dir, inputs, *map(int, nums)), ensure_ascii=False))
