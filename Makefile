# `make demo`: set up (without the test/Ray extras), then the DAG on the sample corpus as the DVC
# experiment `demo` (scripts/demo.sh: run in a temporary copy, the checkout stays clean).
# `make test`: set up with the dev extra (pytest, Ray, MkDocs, ruff), then lint, the docs build and the tests.
# `make docs`: the documentation site (docs/ -> site/), strict: a broken link or a stale page fails.
SHELL := /bin/bash
BIN := $(CURDIR)/.venv/bin
RUN := PATH="$(BIN):$$PATH" DVC_NO_ANALYTICS=1
# mkdocs-material prints an end-of-life banner on every build (not a build warning); keep the log clean
DOCS := NO_MKDOCS_2_WARNING=1
PYTEST_ARGS ?=
# two pytest workers: most tests are single-threaded Python and subprocesses (docs/development.md)
TEST_WORKERS ?= 2

.PHONY: setup demo test lint docs docs-serve bench clean
setup:
	@bash scripts/bootstrap.sh

demo:
	@EXTRAS= bash scripts/bootstrap.sh
	@$(RUN) bash scripts/demo.sh

test: setup lint docs
	$(RUN) python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .

docs: setup
	$(RUN) $(DOCS) mkdocs build --strict

docs-serve: setup
	$(RUN) $(DOCS) mkdocs serve

bench:
	@EXTRAS=dev,bench bash scripts/bootstrap.sh  # bench: deepctr-torch, the reference for bench/ctr.py
	$(RUN) python bench/decode.py
	$(RUN) python bench/extract.py --rss --precisions fp32,int8 --compiled
	$(RUN) python bench/precision.py  # the sample pipeline at fp32 and int8 (dvc exp run, ~15 min)
	$(RUN) python bench/audio.py
	$(RUN) python bench/ctr.py

clean:
	rm -rf data .venv site
