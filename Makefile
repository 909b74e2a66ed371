# make demo: fine-tune a pretrained image classifier on the built-in dataset, then predict.
# make test: the whole test suite, course notebooks included.
# Both build everything they need from nothing: the virtual environment, torch, the package
# (editable, with its test extras) and the offline dataset sources.
# make notebooks: execute the course notebooks and save them with their outputs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The package is installed in setuptools' strict editable mode: a tree of links under build/ named
# as the package imports (fastlearn/data/... → data_blocks/...), which editors and type checkers
# resolve. A module added or removed needs new links: MODULES lists the source files (rewritten
# only when that list changes) and the links are remade when it does.
EDITABLE := --config-settings editable_mode=strict
MODULES := .cache/modules.txt
LINKS := $(VENV)/.linked
SOURCES_STAMP := .cache/sources/.installed
# torch's OpenMP threads spin while waiting when another process is busy; keep them passive.
export OMP_WAIT_POLICY ?= PASSIVE
export MPLBACKEND ?= Agg
# where fastlearn.datasets finds the unpacked R data packages (filled by tools/install_sources.sh)
export FASTLEARN_SOURCES ?= $(CURDIR)/.cache/sources
PYTEST_ARGS ?=

.PHONY: install sources test notebooks demo bench bench-transfer bench-env clean FORCE bench-text readme-figures bench-text-transfer

install: $(LINKS) $(SOURCES_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'setuptools>=64' wheel
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test]' $(EDITABLE)
	touch $@

$(MODULES): FORCE
	@mkdir -p $(@D)
	@find lib data_blocks applications -name '*.py' -not -path '*/__pycache__/*' | LC_ALL=C sort > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(LINKS): $(STAMP) $(MODULES)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . $(EDITABLE)
	touch $@

sources: $(SOURCES_STAMP)

$(SOURCES_STAMP): tools/install_sources.sh $(STAMP)
	PY=$(PY) bash tools/install_sources.sh .cache/sources
	touch $@

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

notebooks: install
	$(PY) tools/run_notebooks.py

demo: install
	$(PY) -m fastlearn.vision.cli demo

bench: install
	$(PY) bench/run_all.py $(BENCH_ARGS)
	$(PY) tools/readme_figures.py

# the one-liner against a plain PyTorch fine-tune and two baselines: bench/TRANSFER.md (slow on a
# CPU; BENCH_ARGS="--quick" for a smoke run, "--tasks fashion10 fashion5" for a subset)
bench-transfer: install
	$(PY) bench/transfer.py $(BENCH_ARGS)
	$(PY) tools/readme_figures.py

bench-env: install
	bash tools/bench_env.sh $(VENV) .venv-bench

bench-text: install
	$(PY) bench/text_speed.py $(BENCH_ARGS)
	$(PY) tools/readme_figures.py

# the README's benchmark block, rewritten from the pages under bench/ (RESULTS, TRANSFER, TEXT_SPEED, PRINTED)
readme-figures:
	$(PY) tools/readme_figures.py

# text classification on the food reviews: all-MiniLM-L6-v2 fine-tuned vs ULMFiT from scratch vs
# TF-IDF + logistic regression, accuracy and time per epoch: bench/TEXT.md (about an hour on 2 CPU
# cores; BENCH_ARGS="--quick" for a smoke run, "--arms minilm" for one arm)
bench-text-transfer: install
	HF_HUB_OFFLINE=1 $(PY) bench/text_transfer.py $(BENCH_ARGS)
	$(PY) tools/readme_figures.py

clean:
	rm -rf $(VENV) .cache build *.egg-info
