"""``python -m pipeline.show PATH``: a store's schema, metadata, row count and column summary.

PATH may be a Parquet file or a sharded store folder: the decoded clips (the summary covers
``index.parquet`` and the shard schema) or a feature store such as ``features/stores/audio.parquet``
(all its shards as one table, metadata checked consistent across them). ``--outputs`` lists
every output path named in params.yaml with its row count (and shard count). ``--experiment NAME`` prints
the headline metrics of a DVC experiment (or any git revision), e.g. ``make demo``'s ``demo``, read from its
commit without touching the working tree.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core import store
from pipeline.core.store import META_KEY


def summarize_column(column: pa.ChunkedArray) -> str:
    t = column.type
    nulls = column.null_count
    if pa.types.is_fixed_size_list(t):
        values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)] if values.size else values
        nan = int(values.size - finite.size)
        if not finite.size:
            return f"dim={t.list_size} nulls={nulls} all non-finite"
        return (
            f"dim={t.list_size} min={finite.min():.4g} mean={finite.mean():.4g} "
            f"max={finite.max():.4g} nan/inf={nan} nulls={nulls}"
        )
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        return f"lengths min={lengths.min() if lengths.size else 0} max={lengths.max() if lengths.size else 0} nulls={nulls}"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        sizes = pc.binary_length(column).to_numpy(zero_copy_only=False)
        return f"bytes min={sizes.min() if sizes.size else 0} max={sizes.max() if sizes.size else 0} total={int(sizes.sum())}"
    if pa.types.is_boolean(t):
        return f"true={pc.sum(column).as_py() or 0} false={len(column) - nulls - (pc.sum(column).as_py() or 0)} nulls={nulls}"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        if len(column) == nulls:
            return f"nulls={nulls}"
        mm = pc.min_max(column)
        return (
            f"min={mm['min'].as_py():.6g} mean={pc.mean(column).as_py():.6g} max={mm['max'].as_py():.6g} nulls={nulls}"
        )
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        counts = pc.value_counts(column).to_pylist()
        top = sorted(counts, key=lambda c: -c["counts"])[:5]
        shown = ", ".join(f"{c['values']!r}:{c['counts']}" for c in top)
        return f"unique={len(counts)} nulls={nulls} top: {shown}"
    return f"type={t} nulls={nulls}"


def describe(path: Path) -> str:
    lines = [f"== {path}"]
    target = path
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            return f"== {path}: no Parquet files"
        lines.append("files: " + ", ".join(f"{f.name} ({f.stat().st_size:,} B)" for f in files))
        shards = [f for f in files if f.name.startswith("shard-")]
        if shards:
            lines.append(
                f"shard schema ({len(shards)} shards, {sum(pq.ParquetFile(f).metadata.num_rows for f in shards)} rows):"
            )
            lines += [f"  {field.name}: {field.type}" for field in pq.read_schema(shards[0])]
        if shards:
            record = store.completion(path)
            if record is None and (path / "index.parquet").exists():  # the decoded store: its index is written last
                record = {"index": "index.parquet"}
            lines.append(
                f"complete: {json.dumps(record, sort_keys=True)}"
                if record
                else "INCOMPLETE: no completion record (a killed or running run); readers refuse this store"
            )
        target = path / "index.parquet" if (path / "index.parquet").exists() else files[0]
        if shards and target == files[0]:  # a feature store: its shards are one table
            target = path
        lines.append(f"-- {target.name if target != path else 'all shards'}")
    table = store.read_table(target, complete=False) if target.is_dir() else pq.read_table(target)
    meta = (table.schema.metadata or {}).get(META_KEY)
    lines.append(f"rows: {table.num_rows}")
    lines.append(
        "metadata: "
        + (json.dumps(json.loads(meta), indent=2, sort_keys=True) if meta else "none (not written by this pipeline)")
    )
    lines.append("columns:")
    for name, column in zip(table.column_names, table.columns):
        lines.append(f"  {name}: {column.type} | {summarize_column(column)}")
    return "\n".join(lines)


def written_paths(params) -> set[str]:
    """The ``paths`` keys that some stage of the DAG these params generate writes (``flow`` only when an
    extractor reads optical flow, for example): a key outside it is not "missing", just not produced."""
    from pipeline import dag

    stages = [stage.get("do", stage) for stage in dag.stages(params).values()]  # foreach stages: their body
    text = json.dumps([{k: v for k, v in stage.items() if k in ("outs", "metrics", "plots")} for stage in stages])
    return {key for key in asdict(params.paths) if "${paths." + key + "}" in text}


def outputs(params_path: str = "params.yaml") -> str:
    from pipeline.params import load_params

    params = load_params(params_path)
    paths = asdict(params.paths)
    written = written_paths(params)
    lines = ["outputs (params.yaml, section paths):"]
    for key, value in paths.items():
        p = Path(value)
        shards = store.shard_files(p) if p.is_dir() else []
        if p.is_file() and p.suffix == ".parquet":
            state = f"{pq.ParquetFile(p).metadata.num_rows} rows"
        elif shards:
            state = f"{sum(pq.ParquetFile(f).metadata.num_rows for f in shards)} rows in {len(shards)} shards"
            state += "" if store.completion(p) else " INCOMPLETE (re-run its stage)"
        elif p.is_dir():
            state = f"{sum(1 for _ in p.rglob('*') if _.is_file())} files"
        else:
            state = (
                "present"
                if p.exists()
                else "missing"
                if key in written
                else "not in the pipeline (no stage writes it with these params)"
            )
        lines.append(f"  {key:<16} {value:<40} {state}")
    lines.append("inspect any of them with: python -m pipeline.show PATH")
    return "\n".join(lines)


def _num(value) -> str:
    """A metric as 4 decimals; ``n/a`` where it could not be computed (one class in the test split, no
    test split at all): a tiny corpus's metrics files hold ``null`` there."""
    return "n/a" if value is None or value != value else f"{value:.4f}"


def headlines(metrics: dict[str, dict | None]) -> list[str]:
    """One line per trainer's metrics file (``None``: the revision has no such file), the numbers a user
    compares runs on: validation first (what a sweep chooses on), then test."""
    lines = []
    if ctr := metrics.get("ctr_metrics"):
        valid = ctr.get("valid") or {}
        lines.append(
            f"ctr_train ({ctr['model']}): valid AUC {_num(valid.get('auc'))}, test AUC {_num(ctr.get('auc'))}, "
            f"GAUC {_num(ctr.get('gauc'))}, cold-start AUC {_num(ctr.get('cold_auc'))}"
        )
    if rec := metrics.get("rec_metrics"):
        valid = rec.get("valid") or {}
        lines.append(
            f"rec_train ({rec['model']}): valid Recall@20 {_num(valid.get('recall@20'))}, test Recall@20 "
            f"{_num(rec.get('recall@20'))}, NDCG@20 {_num(rec.get('ndcg@20'))}, cold Recall@20 "
            f"{_num((rec.get('cold') or {}).get('recall@20'))}"
        )
    if classify := metrics.get("classify_live"):
        valid, test = classify.get("valid") or {}, classify.get("test") or {}
        lines.append(
            f"classify: valid accuracy {_num(valid.get('accuracy'))}, test accuracy {_num(test.get('accuracy'))}, "
            f"macro F1 {_num(test.get('macro_f1'))}"
        )
    if reduce := metrics.get("reduce_metrics"):
        kept = {k: v for k, v in reduce.items() if isinstance(v, dict) and "explained_variance" in v}
        lines.append(
            "reduce: explained variance "
            + ", ".join(f"{k} {v['explained_variance']:.3f} ({v['n_components']} dims)" for k, v in kept.items())
        )
    return lines or ["no metrics file in this revision"]


def experiment(rev: str, params_path: str = "params.yaml") -> str:
    import dvc.api
    from dvc.exceptions import DvcException, PathMissingError
    from dvc.scm import RevError

    from pipeline.params import load_params

    paths = load_params(params_path).paths
    files = {
        "ctr_metrics": paths.ctr_metrics,
        "rec_metrics": paths.rec_metrics,
        "classify_live": f"{paths.classify_live}/metrics.json",
        "reduce_metrics": paths.reduce_metrics,
    }
    metrics = {}
    for key, path in files.items():
        try:
            metrics[key] = json.loads(dvc.api.read(path, rev=rev))
        except (FileNotFoundError, PathMissingError):  # that trainer did not run in this revision
            metrics[key] = None
        except RevError as err:
            raise SystemExit(f"error: {rev!r} is neither an experiment nor a git revision here ({err})") from err
        except DvcException as err:  # a DVC-tracked path without its cache, for example
            raise SystemExit(f"error: {path} at {rev!r}: {err}") from err
    return "\n".join([f"experiment {rev}:", *("  " + line for line in headlines(metrics))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.show", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="Parquet file or store folder")
    parser.add_argument("--outputs", action="store_true", help="list the pipeline's outputs from params.yaml")
    parser.add_argument("--experiment", metavar="NAME", help="a DVC experiment's (or git revision's) metrics")
    args = parser.parse_args(argv)
    if not args.paths and not args.outputs and not args.experiment:
        parser.error("give a PATH, --outputs or --experiment NAME")
    if args.outputs:
        print(outputs())
    if args.experiment:
        print(experiment(args.experiment))
    for path in args.paths:
        if not path.exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 1
        print(describe(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
