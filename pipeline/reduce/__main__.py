"""``python -m pipeline.reduce apply --state DIR --out FILE``: transform feature stores with a saved
reduce state (the reduce stage's ``reduce_state`` folder) without refitting; writes one Parquet file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow as pa

from pipeline.core import store
from pipeline.reduce.fit import load_states


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.reduce.fit")
    sub = parser.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="transform feature stores with a saved state (no refit)")
    apply.add_argument("--state", required=True, type=Path, help="the reduce stage's state folder")
    apply.add_argument("--out", required=True, type=Path, help="Parquet file to write")
    apply.add_argument(
        "--store",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="read modality NAME from PATH instead of the store recorded in the state",
    )
    args = parser.parse_args(argv)
    states, doc = load_states(args.state)
    overrides = dict(item.split("=", 1) for item in args.store)
    columns: dict[str, pa.Array] = {}
    ids: list[str] | None = None
    for name, st in states.items():
        source = doc["sources"][name]
        got = store.read_vectors(overrides.get(name, source["path"]), source["column"], mask=source.get("mask"))
        got_ids, x, present = got.ids, got.x.reshape(len(got.x), -1), got.present
        if ids is None:
            ids = got_ids
        elif got_ids != ids:
            raise store.StoreError(
                f"{name}: its store holds other videos than the first modality's; give stores of one corpus"
            )
        y = st.transform(x)
        y[~present] = 0.0
        columns[name] = store.vector_array(y)
        columns[f"{name}_present"] = pa.array(present)
    table = pa.table({"video_id": ids or [], **columns})
    store.write_table(
        table,
        args.out,
        store.make_meta(
            "reduce.apply", params={"state": str(args.state)}, dims={n: [len(s.components)] for n, s in states.items()}
        ),
    )
    print(f"wrote {table.num_rows} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
