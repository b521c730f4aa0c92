"""The one place stages read and write Parquet.

Conventions every store follows:
- one row per video, keyed by the string column ``video_id``;
- vectors are ``fixed_size_list<float32>[D]`` columns (``vector_array`` / ``vectors``);
- the schema metadata key ``pipeline`` holds JSON: ``stage``, ``extractor``, ``weights``,
  ``dims`` (column -> shape), ``params`` and ``params_hash``, plus ``schema_version``;
- writes are atomic: a temp file in the same folder is renamed over the target only once
  it is complete, so a killed run never leaves a truncated file that looks finished.
Readers call ``read_table(path, expect={...})`` to check the metadata before use.

A store may also be a folder of ``shard-XXX.parquet`` files (a Hive-style dataset that
``pq.read_table(dir)``, polars and DuckDB read as one table, see ``pipeline.core.shards``):
``read_table`` and ``read_meta`` then check that every shard carries the same metadata and that the
folder holds its completion record (``_complete.json``, written last by the run that completed it),
and return the shards concatenated, sorted by ``video_id``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

META_KEY = b"pipeline"
SHARD_GLOB = "shard-*.parquet"
# Written last into a sharded store folder by the run that completed it, removed before a run changes
# any shard: a folder without it is a killed or running run's, and readers refuse it. The leading
# underscore keeps it out of pyarrow / polars / DuckDB dataset reads of the folder.
COMPLETE_NAME = "_complete.json"
SCHEMA_VERSION = 1
COMPRESSION = "zstd"
_UMASK = os.umask(0)
os.umask(_UMASK)


class StoreError(ValueError):
    """A store that is missing, malformed, or not what the reader expects."""


def plain(value: Any) -> Any:
    """Dataclasses (nested too) and tuples as JSON-ready dicts and lists."""
    if is_dataclass(value) and not isinstance(value, type):
        out = plain(asdict(value))
        sections = getattr(value, "__sections__", None)
        if sections is not None:  # registry-keyed subsections sit at the section's top level, as in params.yaml
            out.update(out.pop(sections.field))
        return out
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def params_hash(params: Any) -> str:
    """Short stable hash of a params mapping or dataclass (canonical JSON)."""
    blob = json.dumps(plain(params), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_meta(
    stage: str,
    *,
    params: Any = None,
    extractor: str | None = None,
    weights: str | None = None,
    dims: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata dict stored under the ``pipeline`` schema key."""
    params = plain(params)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "stage": stage,
        "extractor": extractor,
        "weights": weights,
        "dims": dict(dims or {}),
        "params": params,
        "params_hash": params_hash(params),
    }
    meta.update(extra)
    return meta


def with_meta(schema: pa.Schema, meta: Mapping[str, Any]) -> pa.Schema:
    merged = dict(schema.metadata or {})
    merged[META_KEY] = json.dumps(meta, sort_keys=True, default=str).encode()
    return schema.with_metadata(merged)


def shard_files(root: str | Path) -> list[Path]:
    """The shard files of a sharded store folder, in shard order."""
    return sorted(Path(root).glob(SHARD_GLOB))


def read_schema(path: str | Path) -> pa.Schema:
    """The schema of a store file, or of a sharded store's first shard."""
    path = Path(path)
    return pq.read_schema(_shards_or_error(path)[0] if path.is_dir() else path)


def _shards_or_error(root: Path) -> list[Path]:
    files = shard_files(root)
    if not files:
        raise StoreError(f"{root}: no {SHARD_GLOB} files; run the stage that writes it (dvc repro)")
    return files


def read_meta(source: str | Path | pa.Schema, *, complete: bool = True) -> dict[str, Any]:
    """A store's ``pipeline`` metadata; a sharded store must be complete unless ``complete=False``."""
    if not isinstance(source, pa.Schema) and Path(source).is_dir():
        return _dataset_meta(Path(source), complete)
    schema = source if isinstance(source, pa.Schema) else pq.read_schema(source)
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise StoreError(f"{source}: no '{META_KEY.decode()}' schema metadata; not written by this pipeline")
    return json.loads(raw)


def completion(root: str | Path) -> dict[str, Any] | None:
    """The completion record of a sharded store folder, or None while it is incomplete."""
    path = Path(root) / COMPLETE_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StoreError(f"{path}: unreadable completion record ({err}); re-run the stage that writes it") from err


def mark_complete(root: str | Path, record: Mapping[str, Any]) -> None:
    """Record that the store at ``root`` is complete (rewritten only when it changes, so DVC sees no change)."""
    text = json.dumps(dict(record), indent=2, sort_keys=True) + "\n"
    path = Path(root) / COMPLETE_NAME
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)


def mark_incomplete(root: str | Path) -> None:
    (Path(root) / COMPLETE_NAME).unlink(missing_ok=True)


def stage_name(meta: Mapping[str, Any]) -> str:
    """The DVC stage that writes a store with this metadata (``visual@resnet152``, ``audio``)."""
    stage = str(meta.get("stage"))
    return f"{stage}@{meta['extractor']}" if stage == "visual" and meta.get("extractor") else stage


def check_complete(root: Path, meta: Mapping[str, Any], files: list[Path]) -> None:
    """A sharded store is complete, or an error naming the stage to re-run."""
    record = completion(root)
    stage = stage_name(meta)
    if record is None:
        raise StoreError(
            f"{root}: incomplete (the run of stage {stage} that writes it was interrupted, or is "
            f"running); re-run it: dvc repro {stage}"
        )
    if record.get("shards") != len(files) or record.get("params_hash") != meta.get("params_hash"):
        raise StoreError(
            f"{root}: its completion record ({record.get('shards')} shards, params "
            f"{record.get('params_hash')}) does not match its {len(files)} shard files (params "
            f"{meta.get('params_hash')}); re-run it: dvc repro {stage}"
        )


def _dataset_meta(root: Path, complete: bool = True) -> dict[str, Any]:
    """The metadata every shard of ``root`` shares; a shard that differs is an error naming it.

    With ``complete`` (readers' default) an incomplete store is an error naming the stage to re-run.
    """
    files = _shards_or_error(root)
    first = read_meta(files[0])
    for path in files[1:]:
        meta = read_meta(path)
        if meta != first:
            keys = sorted(k for k in first.keys() | meta.keys() if first.get(k) != meta.get(k))
            raise StoreError(
                f"{path}: metadata differs from {files[0].name} in {keys}; the store mixes runs "
                "with different params (an interrupted run?): re-run the stage that writes it"
            )
    if complete:
        check_complete(root, first, files)
    return first


def check_meta(meta: Mapping[str, Any], expect: Mapping[str, Any], where: str) -> None:
    """Raise when any expected metadata entry differs (e.g. ``{"stage": "ingest"}``)."""
    for key, want in expect.items():
        got = meta.get(key)
        if got != want:
            raise StoreError(
                f"{where}: metadata '{key}' is {got!r}, expected {want!r}; re-run the stage that writes it"
            )


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide outputs from other users
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_table(table: pa.Table, path: str | Path, meta: Mapping[str, Any]) -> Path:
    """Atomically write ``table`` with ``meta`` attached to its schema."""
    table = table.replace_schema_metadata(with_meta(table.schema, meta).metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression=COMPRESSION)
    return Path(path)


def read_table(
    path: str | Path,
    *,
    columns: list[str] | None = None,
    expect: Mapping[str, Any] | None = None,
    complete: bool = True,
) -> pa.Table:
    """Read a store (a file, or a folder of shards), checking it has our metadata and matches ``expect``.

    A folder of shards must carry its completion record (``complete=False`` reads what is there).
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: store not found; run the stage that writes it (dvc repro)")
    meta = read_meta(path, complete=complete)
    check_meta(meta, expect or {}, str(path))
    if not path.is_dir():
        return pq.read_table(path, columns=columns)
    wanted = columns if columns is None or "video_id" in columns else [*columns, "video_id"]
    tables = [pq.read_table(f, columns=wanted) for f in shard_files(path)]
    table = pa.concat_tables(tables).replace_schema_metadata(tables[0].schema.metadata)
    if "video_id" in table.column_names:  # shards follow fingerprints: give readers a stable order
        table = table.sort_by("video_id")
    return table.select(columns) if columns is not None else table


def same_content(path: str | Path, table: pa.Table, meta: Mapping[str, Any]) -> bool:
    """Whether the file at ``path`` already holds ``table`` with ``meta`` (so rewriting it can be skipped)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        if read_meta(path) != json.loads(json.dumps(meta, sort_keys=True, default=str)):
            return False
        return pq.read_table(path).cast(table.schema).equals(table)
    except (StoreError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return False


def write_if_changed(table: pa.Table, path: str | Path, meta: Mapping[str, Any]) -> bool:
    """``write_table`` unless the file already holds exactly this; True when it wrote.

    An unchanged file keeps its bytes and mtime, so DVC does not re-hash it.
    """
    if same_content(path, table.replace_schema_metadata(None), meta):
        return False
    write_table(table, path, meta)
    return True


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock for writing the store at ``path`` (waits for another writer).

    The lock file ``.<name>.lock`` sits beside the store, outside it (so outside the DVC out).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s is being written by another process; waiting for its lock", path)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class StreamWriter:
    """Append tables to one Parquet file (a row group per ``write``), committed atomically on ``close``."""

    def __init__(self, path: str | Path, schema: pa.Schema, meta: Mapping[str, Any]):
        self.path = Path(path)
        self.schema = with_meta(schema, meta)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression=COMPRESSION)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        self._writer.close()
        self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def vector_type(dim: int) -> pa.DataType:
    return pa.list_(pa.float32(), dim)


def modality_dims(schema: pa.Schema) -> dict[str, list[int]]:
    """Each fixed-size vector column of an item table and its width, in column order: its modalities
    (as a ``dims`` metadata entry). Masks (``<m>_present``) and side columns are not vectors."""
    return {f.name: [f.type.list_size] for f in schema if pa.types.is_fixed_size_list(f.type)}


def vector_array(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """(N, D) float array -> fixed_size_list<float32>[D] column."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-d (N, D) array, got shape {matrix.shape}")
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def vectors(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """fixed_size_list<float32>[D] column -> (N, D) float32 array (no per-row Python)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dim = column.type.list_size
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(column), dim)  # (N, D)


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write a small text file (metrics JSON, plot CSV)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@dataclass(frozen=True)
class Vectors:
    """One vector column of a store, read by ``read_vectors``."""

    ids: list[str]  # video_id of each row (``align_to`` when given, else the store's, sorted)
    x: np.ndarray  # (N, *shape) float32: the per-video shape from the store's ``dims`` metadata
    present: np.ndarray  # (N,) bool: the row holds a signal (in the store and its mask true); else zeros
    found: np.ndarray  # (N,) bool: the video is in the store at all (present or masked)
    n_rows: int  # rows of the store (videos absent from ``align_to`` included)


def read_vectors(
    path: str | Path,
    column: str,
    *,
    align_to: list[str] | None = None,
    mask: str | None = None,
    expect: Mapping[str, Any] | None = None,
    hint: str = "",
) -> Vectors:
    """Read one vector column (and its bool ``mask`` column: false rows carry no signal) of a store.

    With ``align_to`` the rows follow that list of ids: a video absent from the store, or masked, is
    zero-filled with ``present = false``. ``hint`` ends the error for a missing column (which params
    key names it, how to get it).
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: store not found; run the stage that writes it, or disable it in params")
    names = read_schema(path).names
    absent = [c for c in [column] + ([mask] if mask else []) if c not in names]
    if absent:
        raise StoreError(f"{path}: no column(s) {absent}{'; ' + hint if hint else ''}; the store has {names}")
    table = read_table(path, columns=["video_id", column] + ([mask] if mask else []), expect=expect)
    shape = read_meta(table.schema).get("dims", {}).get(column) or [table.schema.field(column).type.list_size]
    x = vectors(table.column(column)).reshape(table.num_rows, *shape)  # (N_store, *shape)
    present = table.column(mask).to_numpy(zero_copy_only=False).astype(bool) if mask else np.ones(len(x), bool)
    ids = table.column("video_id").to_pylist()
    if align_to is None:
        x = x.copy()
        x[~present] = 0.0
        return Vectors(ids, x, present, np.ones(len(x), bool), len(x))
    row = pc.fill_null(pc.index_in(pa.array(align_to, pa.string()), value_set=table.column("video_id")), -1)
    row = row.to_numpy(zero_copy_only=False)  # store row of each wanted id, -1 when absent
    found = row >= 0
    out, mask_out = np.zeros((len(align_to), *x.shape[1:]), np.float32), np.zeros(len(align_to), bool)
    out[found], mask_out[found] = x[row[found]], present[row[found]]
    out[~mask_out] = 0.0
    return Vectors(list(align_to), out, mask_out, found, len(x))
