# The interface everyone relies on: users, CI and benchmarks.
#   make demo   notebooks 01 -> 05 with tiny backbones on input/, writes runs/demo/submission.csv
#   make test   the test suite
#   make lint   ruff and the import contract (src stages import downward only, src never imports research)
#   make base-qa  the QA-competent base: 12-layer e5-small fine-tuned on English QA (cached, resumable)
#   make ablate the recipe/augmentation ablation from the base on ../shared/data (resumes from docs/experiments.jsonl)
#   make ablate-target  plain on the grouped base with all 925 Hindi questions, 3 seeds: the configuration at 0.45
#   make ablate-long  the same ablation with every question beside its whole article (chaii's shape; Hindi +
#               Tamil), resumes from docs/experiments.jsonl, writes docs/ablation_table_long.md
#   make ablate-winner  the winner's own recipe (his 68-type: two passes with negatives thinned per source, then
#               chaii alone) against plain on the whole-article data, with leave-one-out rows; resumes from
#               docs/experiments.jsonl, writes docs/ablation_table_winner.md
#   make seed-blend  a long-grid variant's seeds averaged window by window vs each alone, from their saved logits
#               (VARIANT=plain, SHAPE=article; LONG_ARGS="--size hindi=925 ..." as ablate-long's) -> docs/seed_blend.md
#   make infer-settings  window/answer-length/rules for plain, chosen on a Hindi dev split, then scored once
#   make presplit-boundaries  gold answer edges inside a token, without and with the punctuation split before
#               tokenizing, beside strip_edges (e5-small's and a WordPiece tokenizer) -> docs/presplit_boundaries.md
#   make chaii-like  real Hindi/Tamil questions beside their whole article, in chaii's train/test/solution CSVs
#               -> runs/chaii_like/ (no test article in any training source), and its size card
#   make batch  notebook 03 per backbone x fold with papermill (tiny stand-ins locally), runs/batch/, summary table
#   make kernels  the winner's 13 models as Kaggle kernels (configs/winner_plan.csv: 12 training runs + 1 submit)
#               + offline wheels dataset in kernels/ (KAGGLE_USER=you or kaggle config; PLAN=folds: n folds per
#               backbone instead, COUNTS=muril-large=3,rembert=5,xlm-roberta-large-squad2=5;
#               MACHINE=NvidiaTeslaT4 (default) or NvidiaTeslaP100), sized to Kaggle's limits (table at the end)
#               EXTRA=infoxlm adds a fourth family: InfoXLM-large on his split's 3 folds (PLAN=folds: 5 folds)
#   make e2e    the whole scheme in a simulated /kaggle tree, "internet" on loopback: make reproduce's chain
#               (wheels and data kernels, 3 backbones x 2 folds fetching tiny stand-ins from a loopback hub and
#               mirror, the offline submit kernel) -> runs/e2e/submission.csv + runs/e2e/oof_blend.csv
#               (EXTRA=infoxlm: four families, InfoXLM on tiny-xlmr too)
#   make e2e-real  the same kernels with a real model on chaii-shaped data: e5-small-qa trained 3 ways x 2 folds,
#               scored on the held-out articles (each model, family, vote) -> docs/e2e_real.md (resumes)
#   make reproduce  from a fresh clone to the submit kernel's submission.csv on Kaggle, nothing uploaded by hand:
#               the kernels that fetch their own inputs (wheels, data, training with internet, submit without),
#               pushed in order, polled, resumed on a rerun (KAGGLE_USER=you; DRY_RUN=1: the plan and GPU hours only;
#               PLAN, COUNTS, MACHINE, EXTRA as make kernels)
#   make gpu-check  on any CUDA machine before spending Kaggle hours (<= 8 min): notebook 03 and the submit path on
#               CUDA, windows/s of MuRIL-, RemBERT- and XLM-R-large-shaped models against the sizing's assumption
#   make push   kaggle kernels push -p for each built kernel (needs a Kaggle token)
#   make status  kaggle kernels status for each built kernel, polling until every one has finished
#   make bench  inference / post-processing / blend-memory benchmarks, one table (research/bench/run.py)
#   make bench-grouping  training windows/s, length-grouped vs shuffled batches (research/bench/grouping.py)
#   make blend-check  char-level blend of 3 e5-small models vs the best single one on held-out XQuAD-hi
#   make bf16-check  bf16 autocast vs fp32 training of e5-small on this CPU, 2 seeds each (docs/bf16_check.md)
#   make e5-qa  e5-small fine-tuned on XQuAD-hi articles 0-35 for bench and blend-check (cached beside e5-small)
#   make e5-small  the real pretrained multilingual e5-small, built by ../shared/tools/e5_small outside the repo
#   make backbones  the tiny stand-in backbones the demo and the tests run on (.cache/backbones)
#   make clean-notebooks  clear outputs of notebooks/*.ipynb before a commit (nbconvert ClearOutputPreprocessor)
#   make clean  remove runs/ and .cache/ (trained models, tiny backbones)
#   make help   this list: every target above with the first line of its description
SHELL := /bin/bash
# glibc otherwise returns each step's freed activation buffers to the OS and page-faults them back in (~45% system
# time): kept in the heap, a CPU training step takes half the time, same losses (docs/experiments.md "Step time")
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 17179869184
PY := .venv/bin/python
RUN_DIR ?= runs/demo
MODELS_DIR ?= .cache/backbones

BATCH_DIR ?= runs/batch
BATCH_ARGS ?= --tiny
KERNELS_DIR ?= kernels
KAGGLE_USER ?= $(KAGGLE_USERNAME)
PLAN ?= winner
COUNTS ?=
MACHINE ?=
E2E_DIR ?= runs/e2e

.PHONY: demo test lint help backbones clean clean-notebooks batch kernels reproduce gpu-check push status e2e e2e-real bench blend-check e5-small e5-qa bf16-check bench-grouping base-qa ablate ablate-target ablate-long ablate-winner seed-blend infer-settings chaii-like presplit-boundaries

# torch first: a plain `pip install torch` (or one pulled in by another package) fetches a multi-GB CUDA build
.venv/.installed: requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(MODELS_DIR)/tiny-bert/config.json $(MODELS_DIR)/tiny-xlmr/config.json: .venv/.installed
	$(PY) -m src.train.backbones build-tiny --out $(MODELS_DIR)

backbones: $(MODELS_DIR)/tiny-bert/config.json $(MODELS_DIR)/tiny-xlmr/config.json

demo: backbones
	$(PY) -m src.notebooks demo --run-dir $(RUN_DIR) --models-dir $(MODELS_DIR)
	$(PY) -m src.blend.submission check $(RUN_DIR)/submission.csv --test input/test.csv

test: backbones
	$(PY) -m pytest -q tests

# ruff's settings and the import contract are in pyproject.toml; lint-imports has no `python -m` form
lint: .venv/.installed
	$(PY) -m ruff check .
	PYTHONPATH=. .venv/bin/lint-imports --no-logo

# the top comment block is the list: each `#   make NAME  description` line (continuation lines are left out)
help:
	@awk '!/^#/ {exit} /^#   make [a-z]/ {name = $$3; $$1 = $$2 = $$3 = ""; sub(/^ +/, ""); \
	printf "  make %-16s %s\n", name, $$0}' $(firstword $(MAKEFILE_LIST))

# Pass 1 adds a run that fails for real (its weights are missing) and must exit 1 with the others complete;
# pass 2 skips everything complete and exits 0 only if every backbone's run is.
batch: backbones
	@$(PY) -m src.notebooks.batch $(BATCH_ARGS) --fail-run --runs-dir $(BATCH_DIR) --models-dir $(MODELS_DIR); rc=$$?; \
	if [ $$rc -ne 1 ]; then echo "make batch: expected exit 1 from the deliberately failing run, got $$rc" >&2; exit 1; fi
	$(PY) -m src.notebooks.batch $(BATCH_ARGS) --runs-dir $(BATCH_DIR) --models-dir $(MODELS_DIR)

kernels: .venv/.installed
	$(PY) -m src.kaggle build --out $(KERNELS_DIR) --plan $(PLAN) $(if $(KAGGLE_USER),--user $(KAGGLE_USER)) $(if $(COUNTS),--counts $(COUNTS)) $(if $(MACHINE),--machine $(MACHINE)) $(foreach r,$(RECIPES),--recipe-for $(r)) $(foreach e,$(EXTRA),--with $(e))

# DRY_RUN=1: the plan, the order, each kernel's inputs, internet and GPU hours; no network, nothing written
DRY_RUN ?=
reproduce: .venv/.installed
	$(PY) -m src.kaggle.reproduce --out $(KERNELS_DIR) --plan $(PLAN) $(if $(KAGGLE_USER),--user $(KAGGLE_USER)) $(if $(COUNTS),--counts $(COUNTS)) $(if $(MACHINE),--machine $(MACHINE)) $(foreach e,$(EXTRA),--with $(e)) $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run)

# On a CUDA machine (not Kaggle's): exits non-zero with a message where there is none
gpu-check: backbones
	$(PY) -m research.bench.gpu_check

push:
	$(PY) -m src.kaggle push --out $(KERNELS_DIR)

status:
	$(PY) -m src.kaggle status --out $(KERNELS_DIR) --wait

e2e: backbones
	$(PY) -m research.kaggle_sim.e2e --out $(E2E_DIR) $(foreach e,$(EXTRA),--with $(e))

# Needs ../shared/data and the grouped base (cached, else built: ~64 min on 2 cores in bf16); a finished kernel whose
# notebook and inputs are unchanged is reused on a rerun. E2E_REAL_ARGS: --size hindi=N, --test-size ... (a trial).
E2E_REAL_ARGS ?=
e2e-real: backbones
	OMP_NUM_THREADS=2 $(PY) -m research.kaggle_sim.e2e_real --out runs/e2e-real $(E2E_REAL_ARGS)
# e5-small (real pretrained multilingual encoder) is built outside the repo; reused when already there
SHARED ?= $(or $(CHAII_SHARED),../shared)
E5_DIR ?= $(HOME)/.cache/chaii-recipes/e5-small
$(E5_DIR)/model.safetensors: .venv/.installed
	test -f $(E5_DIR)/config.json -a -f $@ || $(PY) $(SHARED)/tools/e5_small/build_e5_small.py $(E5_DIR)

e5-small: $(E5_DIR)/model.safetensors

# a QA fine-tune of e5-small: one epoch on XQuAD-hi articles 0-35 (about 6 min on 2 quiet cores), cached beside it
e5-qa: e5-small
	OMP_NUM_THREADS=2 $(PY) -m research.bench.models e5

bench: backbones e5-qa
	OMP_NUM_THREADS=2 $(PY) -m research.bench.run

blend-check: e5-qa
	OMP_NUM_THREADS=2 $(PY) -m research.experiments.blend_check $(MODELS)

clean:
	rm -rf runs .cache

# outputs, execution counts and run metadata go; the `parameters` tag stays; clean notebooks are not rewritten
CLEAN_NOTEBOOKS ?= notebooks/*.ipynb
clean-notebooks: .venv/.installed
	$(PY) -m src.notebooks clean $(CLEAN_NOTEBOOKS)


# bf16 autocast vs fp32 training of e5-small on this CPU, 2 seeds each (~25 min; resumes from docs/bf16_check.json)
bf16-check: e5-small
	OMP_NUM_THREADS=2 $(PY) -m research.bench.bf16_check

# length-grouped vs shuffled training batches of e5-small on the base's windows, alternating repeats (~8 min)
bench-grouping: e5-small
	OMP_NUM_THREADS=2 $(PY) -m research.bench.grouping

# The base every ablation run starts from; finds itself when cached. Its time per machine: docs/experiments.md.
# BASE_QA_ARGS="--group-by-length --max-windows 0": the grouped base that plain reaches 0.45 from (docs/ablation.md)
BASE_QA_ARGS ?=
base-qa: e5-small
	OMP_NUM_THREADS=2 $(PY) -m research.experiments.base_qa $(BASE_QA_ARGS)

# Fine-tunes the base per variant (building it first only if a run is missing; the whole scheme right after plain,
# then one idea at a time); runs only what the committed log
# (docs/experiments.jsonl) lacks, then prints the table: on a fresh clone with a complete log, nothing is trained.
# Another configuration (ABLATE_ARGS with --size/--train/--base) gets its own ids; give it its own TABLE and PLOT
# (empty: not written) so that the grid's table stays; `make ablate-target` is the one that reaches 0.45.
VARIANTS ?= plain,all,all-but-soft,recipe,negsamp,resize,crop,cutout,soft
SEEDS ?=                  # e.g. SEEDS=1,2 or SEEDS="1 2" (empty: plain 0,1,2, the others 0, then follow-ups)
ABLATE_ARGS ?=
TABLE ?= docs/ablation_table.md
PLOT ?= docs/ablation.png
ablate: .venv/.installed
	OMP_NUM_THREADS=2 $(PY) -m research.experiments.ablate run --variants $(VARIANTS) --seeds "$(SEEDS)" $(ABLATE_ARGS) $(if $(TABLE),--table $(TABLE)) $(if $(PLOT),--plot $(PLOT))

# plain from the grouped base on all 925 Hindi questions, length-grouped, 3 seeds: XQuAD-hi 0.453-0.457 (docs/ablation.md)
TARGET_ARGS := --base group_by_length=true --base max_windows=0 --train group_by_length=true --size xquad_hi_train=925
ablate-target: .venv/.installed
	$(MAKE) ablate VARIANTS=plain SEEDS=0,1,2 ABLATE_ARGS="$(TARGET_ARGS)" TABLE=docs/ablation_target_table.md PLOT=

# The whole-article grid (research/experiments/ablate_long.py, on the grouped base): ~17 min of training a run on
# 2 cores in bf16 at machine A's rate (docs/experiments.md), plain first, then the whole scheme, then one idea at a
# time; like `make ablate` it runs only what the committed log lacks, then prints the table. LONG_ARGS takes
# --size hindi=N (tamil=, tydi_en_dev=), --train or --base: new run ids, so give it its own LONG_TABLE. A grid
# logged on another kind of machine gets new runs there only once plain's runs are repeated there (`ablate
# reproduce`): the table shifts them by that measured offset, since each kind builds its own base.
LONG_VARIANTS ?= plain,all,all-but-soft,recipe,negsamp30,negsamp30-eqc,hardneg,negsamp50,negsamp10,resize,crop,cutout,soft,presplit
LONG_ARGS ?=
LONG_TABLE ?= docs/ablation_table_long.md
ablate-long: .venv/.installed
	OMP_NUM_THREADS=2 $(PY) -m research.experiments.ablate run --shape article --variants $(LONG_VARIANTS) --seeds "$(SEEDS)" $(LONG_ARGS) $(if $(LONG_TABLE),--table $(LONG_TABLE))

# The winner's own recipe against plain (research/experiments/ablate_winner.py, on the whole-article grid's base and
# data): plain and winner 3 seeds each first, then one leave-one-out row at a time; a winner run trains ~6,070
# windows (~26 min on machine A's kind), winner-no-negsamp ~15,800 (~65 min). Like `make ablate-long` it runs only
# what the committed log lacks, then prints the table; WINNER_ARGS takes --size/--train/--base (new run ids).
WINNER_VARIANTS ?= plain,winner,plain-eqc,winner-no-tail,winner-thin-tail,winner-119,winner-raw,winner-no-negsamp
WINNER_ARGS ?=
WINNER_TABLE ?= docs/ablation_table_winner.md
ablate-winner: .venv/.installed
	OMP_NUM_THREADS=2 $(PY) -m research.experiments.ablate run --shape winner --variants $(WINNER_VARIANTS) --seeds "$(SEEDS)" $(WINNER_ARGS) $(if $(WINNER_TABLE),--table $(WINNER_TABLE))

# Reads the variant's runs' saved logits (their folders under ~/.cache/chaii-recipes): under a minute, no training
VARIANT ?= plain
SHAPE ?= article
seed-blend: .venv/.installed
	$(PY) -m research.experiments.seed_blend --shape $(SHAPE) --variant $(VARIANT) $(LONG_ARGS)

# Needs plain's saved models (make ablate); 10 min on 2 cores (measured); writes docs/infer_settings.md
infer-settings: .venv/.installed
	OMP_NUM_THREADS=2 $(PY) -m research.experiments.infer_settings

# Tokenizing only (~1 min): how often gold answers end inside a token, without and with the punctuation split
presplit-boundaries: e5-small backbones
	$(PY) -m research.experiments.presplit_boundaries

chaii-like: .venv/.installed
	$(PY) -m research.experiments.chaii_like --out runs/chaii_like
