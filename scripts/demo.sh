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
dvc exp run --temp --name demo
echo
echo "[demo] the experiment 'demo' (metrics; every params key is in 'dvc exp show'):"
dvc exp show --no-pager --drop '.*' --keep 'Experiment|Created|^(auc|gauc|cold_auc|logloss|accuracy|f1_macro|recall@20|ndcg@20)$'
echo
echo "[demo] its outputs into this working tree (stores, metrics, plots):  dvc exp apply demo"
echo "[demo] then:  python -m pipeline.show --outputs  |  dvc metrics show  |  dvc plots show"
