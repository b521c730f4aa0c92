"""The decoded-clip store: sharded Parquet that extraction stages stream video by video.

Layout of ``paths.decoded`` (see README, "Decoded layout"):

    shard-000.parquet ... shard-NNN.parquet   one row per video, one row group per video
    index.parquet                             every column but the arrays, plus ``shard``;
                                              written last, so it marks a complete store
    failures.parquet                          videos decode could not use

A video's shard is ``int(fingerprint[:8], 16) % shards``: content decides, so adding
videos touches only the shards they land in (the decode stage updates the store incrementally
through ``pipeline.core.shards``; ``index.parquet`` is removed while it runs and rebuilt at the end). ``frames`` holds the raw bytes of a
uint8 array of shape ``(T, S, S, 3)`` (THWC, RGB); ``audio`` the bytes of float32 mono
samples at ``audio_rate`` (empty when ``has_audio`` is false). Readers get both back as
numpy arrays through ``iter_decoded`` without loading more than one row group.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core import store
from pipeline.core.shards import shard_of, shard_path

__all__ = [
    "DecodedVideo",
    "DecodedWriter",
    "ShardReader",
    "iter_decoded",
    "iter_shard",
    "read_index",
    "read_meta",
    "shard_of",
    "shard_path",
    "write_index",
]

INDEX_NAME = "index.parquet"
DECODE_ERRORS = "decode_errors"  # the damaged-data flag every downstream store carries (issue 26)
FAILURES_NAME = "failures.parquet"

SHARD_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("fingerprint", pa.string()),
        ("frames", pa.binary()),
        ("frame_indices", pa.list_(pa.int32())),
        ("n_unique_frames", pa.int32()),
        ("padded", pa.bool_()),
        ("has_audio", pa.bool_()),
        ("audio", pa.binary()),
        ("audio_seconds", pa.float32()),
        ("decode_errors", pa.int32()),  # error messages ffmpeg logged while decoding (damaged data); 0 when clean
        ("note", pa.string()),
    ]
)
ARRAY_COLUMNS = ("frames", "audio")
INDEX_SCHEMA = pa.schema(
    [f for f in SHARD_SCHEMA if f.name not in ARRAY_COLUMNS + ("frame_indices",)] + [("shard", pa.int32())]
)


@dataclass(frozen=True)
class DecodedVideo:
    video_id: str
    fingerprint: str
    frames: np.ndarray | None  # (T, S, S, 3) uint8, None when not requested or unusable
    audio: np.ndarray | None  # (N,) float32, None when not requested or no audio
    padded: bool
    has_audio: bool
    audio_rate: int
    error: str | None = None  # why a requested frames blob is unusable (wrong size)


class DecodedWriter:
    """A whole store from scratch (tests, benchmarks): rows in ``SHARD_SCHEMA`` form; ``close`` writes the index."""

    def __init__(self, root: str | Path, shards: int, meta: Mapping[str, Any]):
        self.root, self.shards, self.meta = Path(root), shards, dict(meta)
        self.root.mkdir(parents=True, exist_ok=True)
        self._writers = [store.StreamWriter(shard_path(root, s), SHARD_SCHEMA, self.meta) for s in range(shards)]

    def add(self, row: Mapping[str, Any]) -> None:
        shard = shard_of(row["fingerprint"], self.shards)
        self._writers[shard].write(pa.Table.from_pylist([dict(row)], schema=SHARD_SCHEMA))

    def close(self) -> None:
        for writer in self._writers:
            writer.close()
        write_index(self.root, self.meta)

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()


def write_index(root: str | Path, meta: Mapping[str, Any]) -> bool:
    """Rebuild ``index.parquet`` from the shards (array columns left out); True when it changed."""
    parts = []
    for path in store.shard_files(root):
        table = pq.read_table(path, columns=[n for n in INDEX_SCHEMA.names if n != "shard"])
        parts.append(table.append_column("shard", pa.array([int(path.name[6:9])] * table.num_rows, pa.int32())))
    index = pa.concat_tables(parts).sort_by("video_id") if parts else INDEX_SCHEMA.empty_table()
    return store.write_if_changed(index.cast(INDEX_SCHEMA), Path(root) / INDEX_NAME, meta)


def reference(row: Mapping[str, Any]) -> dict[str, Any]:
    """The light row a worker gets for a video of this store: it reads the arrays itself."""
    return {"video_id": row["video_id"], "fingerprint": row["fingerprint"], "shard": row["shard"]}


def read_index(root: str | Path, expect: Mapping[str, Any] | None = None) -> pa.Table:
    """The index of a complete decoded store (its absence means decode did not finish)."""
    return store.read_table(Path(root) / INDEX_NAME, expect={"stage": "decode", **(expect or {})})


def read_meta(root: str | Path) -> dict[str, Any]:
    return store.read_meta(Path(root) / INDEX_NAME)


def iter_shard(
    root: str | Path, shard: int, shape: Sequence[int], rate: int, *, frames: bool = True, audio: bool = True
) -> Iterator[DecodedVideo]:
    """One shard's videos, one row group at a time; arrays are zero-copy views of the Arrow buffers.

    A frames blob of the wrong size does not stop the stream: that video comes with
    ``frames=None`` and ``error`` saying why, so a stage can record a failure and go on.
    """
    pf = pq.ParquetFile(shard_path(root, shard))
    for group in range(pf.num_row_groups):
        yield from _decode_group(pf, group, shape, rate, frames, audio)


class ShardReader:
    """Random access to single videos of a decoded store (the workers' input rows are references)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta = read_meta(root)
        self.shape, self.rate = tuple(meta["dims"]["frames"]), int(meta["audio_rate"])
        self._groups: dict[int, tuple[pq.ParquetFile, dict[str, int]]] = {}

    def _open(self, shard: int) -> tuple[pq.ParquetFile, dict[str, int]]:
        if shard not in self._groups:  # one row group per video: map each id to its group once per shard
            pf = pq.ParquetFile(shard_path(self.root, shard))
            ids = pf.read(columns=["video_id"]).column("video_id").to_pylist()
            offsets = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
            self._groups = {
                shard: (pf, {vid: int(np.searchsorted(offsets, i, "right") - 1) for i, vid in enumerate(ids)})
            }
        return self._groups[shard]

    def read(self, shard: int, video_id: str, *, frames: bool = True, audio: bool = True) -> DecodedVideo:
        """One video (``KeyError`` when the shard does not hold it)."""
        pf, groups = self._open(shard)
        group = groups[video_id]
        for video in _decode_group(pf, group, self.shape, self.rate, frames, audio):
            if video.video_id == video_id:
                return video
        raise KeyError(video_id)


def _decode_group(
    pf: pq.ParquetFile, group: int, shape: Sequence[int], rate: int, frames: bool, audio: bool
) -> Iterator[DecodedVideo]:
    expected = int(np.prod(shape))
    columns = ["video_id", "fingerprint", "padded", "has_audio"] + ["frames"] * frames + ["audio"] * audio
    table = pf.read_row_group(group, columns=columns)
    for i, row in enumerate(table.select(["video_id", "fingerprint", "padded", "has_audio"]).to_pylist()):
        pixels, samples, error = None, None, None
        if frames:
            blob = table.column("frames")[i]
            size = len(blob.as_buffer()) if blob.is_valid else 0
            if size == expected:
                pixels = np.frombuffer(blob.as_buffer(), np.uint8).reshape(shape)  # (T, S, S, 3)
            else:
                error = f"frames blob holds {size} bytes, expected {expected} for shape {list(shape)}"
        if audio and row["has_audio"]:
            samples = np.frombuffer(table.column("audio")[i].as_buffer(), "<f4")
        yield DecodedVideo(
            row["video_id"], row["fingerprint"], pixels, samples, row["padded"], row["has_audio"], rate, error
        )


def iter_decoded(
    root: str | Path, *, frames: bool = True, audio: bool = True, video_ids: Iterable[str] | None = None
) -> Iterator[DecodedVideo]:
    """Stream decoded videos shard by shard, one row group (one video) in memory at a time."""
    index = read_index(root)
    meta = read_meta(root)
    shape, rate = tuple(meta["dims"]["frames"]), int(meta["audio_rate"])
    wanted = set(video_ids) if video_ids is not None else None
    for shard in sorted(set(index.column("shard").to_pylist())):
        for video in iter_shard(root, shard, shape, rate, frames=frames, audio=audio):
            if wanted is None or video.video_id in wanted:
                yield video
