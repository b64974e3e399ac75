# The interface everyone relies on: users, CI and benchmarks.
#   make demo   notebooks 01 -> 05 with tiny backbones on input/, writes runs/demo/submission.csv
#   make test   the test suite
#   make ablate the recipe/augmentation ablation on ../shared/data with e5-small (resumable; VARIANTS=plain,cutout)
SHELL := /bin/bash
PY := .venv/bin/python
RUN_DIR ?= runs/demo
MODELS_DIR ?= .cache/backbones

.PHONY: demo test backbones clean ablate

# torch first: a plain `pip install torch` (or one pulled in by another package) fetches a multi-GB CUDA build
.venv/.installed: requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(MODELS_DIR)/tiny-bert/config.json $(MODELS_DIR)/tiny-xlmr/config.json: .venv/.installed
	$(PY) -m src.backbones build-tiny --out $(MODELS_DIR)

backbones: $(MODELS_DIR)/tiny-bert/config.json $(MODELS_DIR)/tiny-xlmr/config.json

demo: backbones
	$(PY) -m src.notebooks demo --run-dir $(RUN_DIR) --models-dir $(MODELS_DIR)
	$(PY) -m src.submission check $(RUN_DIR)/submission.csv --test input/test.csv

test: backbones
	$(PY) -m pytest -q tests

clean:
	rm -rf runs .cache

# Builds e5-small into ~/.cache/chaii-recipes if absent; runs only what the experiment log lacks.
VARIANTS ?= plain,recipe,crop,resize,cutout,negsamp,soft,all
ABLATE_ARGS ?=
ablate: .venv/.installed
	$(PY) -m src.ablate run --variants $(VARIANTS) $(ABLATE_ARGS) --table docs/ablation_table.md --plot docs/ablation.png
