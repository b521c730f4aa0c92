#!/usr/bin/env bash
# `make demo`: the whole DAG on the built-in sample corpus, as the DVC experiment `demo`.
# It runs in a temporary copy of the working tree (`dvc exp run --temp`), so the checkout stays exactly
# as cloned: outputs depend on the CPU (float kernels), so no committed dvc.lock or metrics file could
# match them on every machine, and a demo that rewrote tracked files would leave `git status` dirty.
# The outputs land in DVC's cache and the experiment's commit; `dvc exp apply demo` puts them here.
set -euo pipefail
cd "$(dirname "$0")/.."

# a second `make demo` replaces the first; the stages' run cache makes it quick when nothing changed
if dvc exp list --name-only 2>/dev/null | grep -qx demo; then
  dvc exp remove demo >/dev/null
fi
# A fresh checkout has no dvc.lock, so the experiment's first step (restoring the outputs the lock names)
# has nothing to restore and DVC says so once per output: noise, not a problem a user can act on.
dvc exp run --temp --name demo 2>&1 | { grep --line-buffered -v "^WARNING: No file hash info found for" || true; }
python -m pipeline.show --experiment demo
echo "[demo] every param and metric: dvc exp show | its outputs into this working tree: dvc exp apply demo"
