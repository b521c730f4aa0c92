# `make demo`: set up (without the test/Ray extras), then `dvc repro` on the sample corpus.
# `make test`: set up with the dev extra (pytest, Ray), then the tests.
SHELL := /bin/bash
BIN := $(CURDIR)/.venv/bin
RUN := PATH="$(BIN):$$PATH" DVC_NO_ANALYTICS=1
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean
setup:
	@bash scripts/bootstrap.sh

demo:
	@EXTRAS= bash scripts/bootstrap.sh
	$(RUN) dvc repro
	@$(RUN) python -m pipeline.show --outputs

test: setup
	$(RUN) python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev,bench]'  # deepctr-torch, the reference for bench/ctr.py
	$(RUN) python bench/decode.py
	$(RUN) python bench/extract.py --rss
	$(RUN) python bench/audio.py
	$(RUN) python bench/ctr.py

clean:
	rm -rf data .venv
