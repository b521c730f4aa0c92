"""Extract one visual store from a decoded store: skip finished shards, run the rest, combine.

Reads the decoded store (``pipeline.decoded`` layout); writes ``<out_dir>/visual_<name>.parquet``
(``video_id``, the extractor's vector columns, ``padded``) and ``visual_<name>_failures.parquet``
through ``pipeline.visual.output`` (resumable parts).
"""
from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import decoded, store
from pipeline.failures import Failure
from pipeline.runtime import progress
from pipeline.visual.engine import Engine
from pipeline.visual.output import Parts, ShardPart, shard_keys
from pipeline.visual.runner import Result, extract, read_shard

log = logging.getLogger("visual")


@dataclass(frozen=True)
class Summary:
    rows: int
    failures: list[Failure]
    total: int  # videos in the decoded store
    computed: int  # videos run through the model now (the rest came from finished parts)
    seconds: float


def output_paths(out_dir: str | Path, name: str) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    return out_dir / f"visual_{name}.parquet", out_dir / f"visual_{name}_failures.parquet"


def store_meta(engine: Engine, weights: str, weights_detail: str, decoded_meta: dict[str, Any]) -> dict[str, Any]:
    ex, rt = engine.extractor, engine.runtime
    # precision changes the numbers, so it is part of params (and params_hash); the device is not.
    return store.make_meta(
        "visual", params={**ex.output_params(), "precision": rt.precision}, extractor=ex.name,
        weights=weights, dims=ex.dims(), weights_detail=weights_detail, precision=rt.precision,
        device=str(rt.device), threads=rt.threads, decoded_params_hash=decoded_meta["params_hash"],
    )


def extract_store(engine: Engine, decoded_root: str | Path, out_dir: str | Path, meta: dict[str, Any],
                  batch_size: int) -> Summary:
    name = engine.extractor.name
    final, failures_path = output_paths(out_dir, name)
    index = decoded.read_index(decoded_root)
    dmeta = decoded.read_meta(decoded_root)
    shape = dmeta["dims"]["frames"]  # (T, S, S, 3)
    keys = shard_keys(index, dmeta["params_hash"])
    counts = Counter(index.column("shard").to_pylist())
    parts = Parts(final, meta, engine.extractor.dims())
    shards = sorted(keys)
    todo = [s for s in shards if not parts.complete(s, keys[s])]
    if len(todo) < len(shards):
        log.info("resuming: %d of %d shards already extracted with the same params", len(shards) - len(todo), len(shards))
    n_todo = sum(counts[s] for s in todo)
    items = itertools.chain.from_iterable(read_shard(decoded_root, s, shape) for s in todo)
    start = time.perf_counter()
    results = progress(extract(engine, items, batch_size), n_todo, f"visual@{name}")
    for shard, group in itertools.groupby(results, key=lambda r: r.shard):
        _write_shard(parts.open(shard, keys[shard], str(decoded.shard_path(decoded_root, shard))), group)
    seconds = time.perf_counter() - start
    rows, failed = parts.combine(shards, failures_path)
    return Summary(rows, failed, len(index), n_todo, seconds)


def _write_shard(part: ShardPart, results: Iterator[Result]) -> None:
    try:
        batch: list[Result] = []
        for result in results:
            batch.append(result)
            if len(batch) >= 64:  # a row group per 64 videos keeps the part's writer memory small
                part.add(batch)
                batch = []
        part.add(batch)
    except BaseException:
        part.abort()  # an interrupted shard leaves no part behind
        raise
    part.close()
