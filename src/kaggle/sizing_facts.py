"""The facts the kernel sizing rests on: Kaggle's limits, its GPUs and their assumed throughput, the backbones'
shapes, each source's size in questions and tokens, and the host/GPU memory assumptions; each with where it came from.

Constants only (and the properties that follow from them); the arithmetic over them is `src/kaggle/sizing.py` and,
for the windows a source is cut into, `src/kaggle/sizing_windows.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30

# ---------------------------------------------------------------- Kaggle's limits
# kaggle.com was unreachable where this was written: these are the limits Kaggle's notebook docs stated at the time
# of writing (kaggle.com/docs/notebooks); check them there.
RUN_HOURS = 12.0            # one GPU notebook runs at most 12 h, then it is stopped
HOST_RAM_GIB = 29.0         # RAM of a GPU notebook: the docs said 29 GB (30 GB without a GPU); one T4 x2
                            # notebook's wandb-metadata.json (huggingface.co/mohit19906/working, 2024-03-28)
                            # reported 31.4 GiB total
WEEKLY_GPU_HOURS = 30.0     # the weekly GPU quota ("30 h a week or more, varying with demand"): an assumption
# The competition's rerun limit for a code submission: "GPU Notebook <= 5 hours run-time" (chaii Code Requirements,
# as archived in openai/mle-bench@93ef344, mlebench/competitions/chaii-hindi-and-tamil-question-answering/
# description.md); check it on the competition page.
SUBMIT_HOURS = 5.0
# The hidden test set's size is not published; 5,000 rows is the size research/bench/blend_memory.py simulates (the
# public test.csv holds 5 rows). The submission's time grows linearly with it.
TEST_ROWS = 5000
TIME_MARGIN = 0.75          # an estimate must stay under 75% of a time limit: the throughput below is an assumption
MEMORY_MARGIN = 0.90        # and under 90% of a memory limit (fragmentation, the allocator's cache)


# ---------------------------------------------------------------- GPUs and their assumed throughput
@dataclass(frozen=True)
class Gpu:
    name: str
    peak_tflops: float      # fp16 peak, NVIDIA's datasheet
    memory_gib: float       # what torch sees on Kaggle
    peak_fp32_tflops: float = 0.0   # fp32 peak, NVIDIA's datasheet

    @property
    def tflops(self) -> float:
        return self.peak_tflops * UTILISATION

    @property
    def fp32_tflops(self) -> float:
        """fp32 at the same share of its peak as fp16 (an assumption: no fp32 run was measured)."""
        return self.peak_fp32_tflops * UTILISATION


# The T4's fp16 tensor-core peak is 65 TFLOPS (NVIDIA T4 datasheet); the project's assumption is 20 TFLOPS sustained
# in fp16 autocast (research/bench/gpu_estimate.py until now): 31% of the peak, applied to the P100 alike.
T4_TFLOPS = 20.0
# 15.0 GiB: torch's total on a Kaggle T4 (the wandb-metadata.json above); 8.1 TFLOPS fp32 (NVIDIA T4 datasheet)
T4 = Gpu("T4", 65.0, 16_106_127_360 / GIB, 8.1)
UTILISATION = T4_TFLOPS / T4.peak_tflops
P100 = Gpu("P100", 18.7, 16.0, 9.3)          # P100 PCIe 16 GB: 18.7 TFLOPS fp16 (no tensor cores), 9.3 fp32 (datasheet)
DDP_SPEEDUP = 1.8           # two T4s (DistributedDataParallel training, or the test set split over both): ~90%
                            # scaling, gradients all-reduced over PCIe; an assumption until measured


@dataclass(frozen=True)
class Machine:
    shape: str              # kernel-metadata.json `machine_shape` (src/kaggle/metadata.py: MACHINE_SHAPES)
    gpu: Gpu
    gpus: int

    def speedup(self, gpus: int | None = None) -> float:
        return DDP_SPEEDUP if (self.gpus if gpus is None else gpus) == 2 else 1.0

    def __str__(self) -> str:
        return f"{self.gpus} x {self.gpu.name}" if self.gpus > 1 else f"one {self.gpu.name}"


# Kaggle's notebook editor offers "GPU T4 x2" and "GPU P100"; one T4 notebook's wandb-metadata.json (above) shows two
# T4s. Whether the API's NvidiaTeslaT4 gives the same two could not be checked: a kernel must fit on the machine with
# the margin AND finish inside the limit on one of its GPUs.
MACHINES = {"NvidiaTeslaT4": Machine("NvidiaTeslaT4", T4, 2), "NvidiaTeslaP100": Machine("NvidiaTeslaP100", P100, 1)}


# ---------------------------------------------------------------- backbone shapes (the public config.json files)
@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    ffn: int
    heads: int
    vocab: int
    embedding: int = 0      # input embedding width when it differs from hidden (RemBERT: 256, projected up)
    positions: int = 512
    types: int = 2
    sdpa: bool = True       # transformers runs scaled_dot_product_attention (no stored score matrix); RemBERT: eager

    @property
    def dense_params(self) -> int:
        """Parameters of the encoder layers' matrices: what every token multiplies (6 x this x tokens to train)."""
        return self.layers * (4 * self.hidden ** 2 + 2 * self.hidden * self.ffn)

    @property
    def params(self) -> int:
        """All parameters of the QA model (embeddings, layers with biases and layer norms, QA head; no pooler)."""
        e, h = self.embedding or self.hidden, self.hidden
        embeddings = (self.vocab + self.positions + self.types) * e + 2 * e + ((e * h + h) if e != h else 0)
        layer = 4 * (h * h + h) + 2 * h * self.ffn + self.ffn + h + 4 * h
        return embeddings + self.layers * layer + 2 * h + 2


SHAPES = {
    # google/muril-large-cased config.json: BERT-large with a 197,285-token Indic vocabulary
    "muril-large": Shape(24, 1024, 4096, 16, 197_285),
    # google/rembert config.json: 32 layers of 1152, 18 heads, input embeddings of 256 projected up, vocab 250,300;
    # transformers has no SDPA path for it (eager attention stores the score matrices)
    "rembert": Shape(32, 1152, 4608, 18, 250_300, embedding=256, sdpa=False),
    # deepset/xlm-roberta-large-squad2 config.json: XLM-R large
    "xlm-roberta-large-squad2": Shape(24, 1024, 4096, 16, 250_002, positions=514, types=1),
    # xlm-roberta-large config.json (as the winner's XLMR_pretraining68 cell 26 printed it): 24 x 1024, ffn 4096,
    # 16 heads, vocab 250,002, 514 positions, 1 token type
    "xlm-roberta-large": Shape(24, 1024, 4096, 16, 250_002, positions=514, types=1),
    # microsoft/infoxlm-large config.json (hub, commit 7dc8de0): XLM-R large's shape and vocabulary
    "infoxlm-large": Shape(24, 1024, 4096, 16, 250_002, positions=514, types=1),
}


# ---------------------------------------------------------------- the sources' sizes
@dataclass(frozen=True)
class SourceSize:
    questions: int                  # questions (rows) in the file
    question_tokens: float          # mean question length in tokens
    context_tokens: tuple[int, ...]  # context lengths in tokens: an equal-weight sample (20 quantile midpoints)
    answerable: float = 1.0         # share of questions with an answer (negative sampling keeps those windows)
    provenance: str = ""


# Lengths in tokens: XLM-R's SentencePiece vocabulary (the one multilingual-e5-small ships; RemBERT's is of the same
# kind, MuRIL's Indic WordPiece is coarser on Hindi and Tamil, so its estimates are high), measured by
# `python -m research.bench.source_tokens` over ../shared/data on 2026-12-03. A source that is not on this machine
# is measured on a stand-in of the same kind of text, named in its provenance.
_SQUAD = (65, 95, 115, 124, 131, 136, 141, 149, 155, 163, 170, 178, 187, 198, 210, 221, 238, 261, 295, 379)
_TYDI_EN = (33, 53, 63, 75, 84, 93, 101, 110, 118, 127, 135, 143, 152, 163, 177, 189, 207, 230, 268, 356)
_TYDI_BN = (58, 86, 98, 110, 128, 145, 150, 162, 178, 189, 205, 209, 224, 242, 253, 266, 283, 307, 382, 555)
_TYDI_TE = (23, 57, 86, 99, 118, 124, 129, 138, 142, 143, 145, 146, 148, 150, 153, 162, 185, 232, 298, 458)
_XQUAD_HI = (91, 133, 140, 150, 158, 168, 174, 182, 189, 197, 202, 216, 228, 245, 262, 278, 304, 334, 380, 499)
_CHAII = (742, 11459, 50, 2901, 868)   # the 5 public chaii test rows: the only real chaii contexts here (mean 3,204)
CHAII_TRAIN = 1114          # chaii train.csv: 746 Hindi + 368 Tamil rows (the competition's data page)
# The NQ subset: `python -m src.data.nq` keeps `keep_fraction` 0.3 of the Natural Questions train records that carry
# a short answer: 307,373 records (Kwiatkowski et al. 2019), about 35% of them with a short answer -> ~32,000. Set
# `limit:` on the recipe's nq source to size (and train) another number.
NQ_SUBSET = round(307_373 * 0.35 * 0.3)

SOURCES = {  # keyed by the file name of a recipe source's path
    "train-v2.0.json": SourceSize(130_319, 14.0, _SQUAD, 86_821 / 130_319,
                                  "SQuAD 2.0 train: 130,319 questions, 43,498 without answer (Rajpurkar et al. 2018); "
                                  "lengths: SQuAD v1.1 dev paragraphs (the same Wikipedia paragraphs)"),
    "english_tydiqa_train.json": SourceSize(3_696, 9.8, _TYDI_EN, provenance="TyDi QA GoldP train, English: measured"),
    "bengali_tydiqa_train.json": SourceSize(2_390, 16.8, _TYDI_BN,
                                            provenance="TyDi QA GoldP train, Bengali (TyDi QA paper); lengths: bn dev"),
    "telugu_tydiqa_train.json": SourceSize(5_563, 12.9, _TYDI_TE,
                                           provenance="TyDi QA GoldP train, Telugu (TyDi QA paper); lengths: te dev"),
    "dev-context-hi-question-hi.json": SourceSize(507, 17.2, _XQUAD_HI,
                                                  provenance="MLQA v1 dev hi-hi (Lewis et al. 2020); lengths: XQuAD hi "
                                                             "paragraphs (Hindi Wikipedia paragraphs too)"),
    "xquad.hi.json": SourceSize(1_190, 17.2, _XQUAD_HI, provenance="XQuAD hi: measured"),
    "train.csv": SourceSize(CHAII_TRAIN, 11.6, _CHAII,
                            provenance="chaii train: 1,114 rows; lengths: the 5 public chaii test rows"),
    "nq_subset.json": SourceSize(NQ_SUBSET, 9.8, _TYDI_EN,
                                 provenance="NQ subset, stated default (NQ_SUBSET); lengths: TyDi en train (answer "
                                            "passages of Wikipedia for information-seeking questions, as NQ's)"),
}
SPECIAL_TOKENS = 4          # <s> question </s></s> context </s> (XLM-R, RemBERT); BERT's pair has 3: one spare


# ---------------------------------------------------------------- memory and setup
# host memory: assumptions until measured on Kaggle (`resource.getrusage` in the kernel)
HOST_BASE_GIB = 3.0         # python + torch with the CUDA runtime + transformers/datasets imported
FRAMES_GIB = 1.0            # the sources' frames (SQuAD 2.0 train: ~40 MB of JSON) and the tokenizer
# The windows of one stage while it is permuted and written to disk (`windows.build_dataset`): Arrow, an int32 token
# id + int8 mask + int8 type id per token and ~100 bytes of per-window columns; the finished dataset is memory-mapped
# from disk and not counted. Built up front as Python lists (until 2026-12-04) they took 118 bytes a token
# (research/bench/recipe_memory.py: +2,433 MB for 20.6M tokens; +253 MB streamed; docs/kaggle.md).
ARROW_BYTES_PER_TOKEN = 6
ARROW_BYTES_PER_WINDOW = 100
GPU_OVERHEAD_GIB = 1.0      # CUDA context, cuBLAS workspace, allocator fragmentation
SETUP_HOURS = 0.25          # per kernel: wheels install, loading, tokenizing on the CPU, saving (an assumption)
