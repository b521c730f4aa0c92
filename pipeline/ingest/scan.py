"""Ingest: list the input videos, probe each, fingerprint it, assign splits.

Reads a folder (scanned recursively for ``ingest.extensions``; a ``manifest.csv`` or
``manifest.parquet`` at its top level is used instead of scanning) or a manifest file
(columns ``video_id, path`` and optional ``label, split``; relative paths are relative
to the manifest). Produces the manifest table (one row per usable video) and the
failures for the rest. Probing and hashing a large corpus is slow, so a file whose path, size
and ``mtime_ns`` match the previous manifest keeps that manifest's probe facts and fingerprint.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pipeline.core import tables
from pipeline.core.failures import Failure
from pipeline.decode.ffmpeg import MediaError, probe
from pipeline.ingest.config import SplitConfig

log = logging.getLogger(__name__)

MANIFEST_NAMES = ("manifest.csv", "manifest.parquet")
MANIFEST_COLUMNS = ("video_id", "path", "label", "split")
SPLITS = ("train", "valid", "test")

SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("path", pa.string()),
        ("fingerprint", pa.string()),
        ("size_bytes", pa.int64()),
        ("label", pa.string()),
        ("split", pa.string()),
        ("container", pa.string()),
        ("duration_s", pa.float64()),
        ("fps", pa.float64()),
        ("n_frames", pa.int64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("display_width", pa.int32()),
        ("display_height", pa.int32()),
        ("rotation", pa.int16()),
        ("sar", pa.float64()),
        ("video_stream", pa.int16()),
        ("video_codec", pa.string()),
        ("has_audio", pa.bool_()),
        ("audio_stream", pa.int16()),
        ("audio_codec", pa.string()),
        ("audio_channels", pa.int16()),
        ("audio_rate", pa.int32()),
        ("mtime_ns", pa.int64()),
    ]
)


class InputError(ValueError):
    """The input as a whole is unusable (duplicate ids, bad manifest); raised before any work."""


@dataclass(frozen=True)
class InputVideo:
    video_id: str
    path: str
    label: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class Inputs:
    """What ``data.input`` lists: the videos to probe, plus what the listing itself could not use."""

    videos: list[InputVideo]
    failures: list[Failure] = field(default_factory=list)  # looping symlinks, folders that cannot be listed
    skipped: dict[str, int] = field(default_factory=dict)  # a folder input: entries not scanned, by suffix or kind
    outside: int = 0  # manifest paths outside the manifest's folder (allowed by ingest.allow_outside_paths)

    def describe_skipped(self) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])))


def list_inputs(source: str | Path, extensions: Sequence[str], *, allow_outside_paths: bool = False) -> Inputs:
    source = Path(source)
    try:
        is_dir, is_file = source.is_dir(), source.is_file()
    except OSError as err:  # a looping data.input itself: Path.is_dir raises only on errors like ELOOP
        raise InputError(f"data.input: {source}: {err.strerror or err}") from err
    if is_dir:
        for name in MANIFEST_NAMES:
            if (source / name).is_file():
                return read_manifest(source / name, allow_outside_paths=allow_outside_paths)
        return scan_folder(source, extensions)
    if is_file:
        return read_manifest(source, allow_outside_paths=allow_outside_paths)
    raise InputError(f"data.input: {source} is neither a folder nor a manifest file")


def os_reason(err: OSError) -> str:
    """The failure reason for an OS error met while listing or opening an input."""
    if err.errno == errno.ELOOP:
        return "symlink_loop"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission_denied"
    if err.errno == errno.ENOENT:
        return "missing_file"
    return "unreadable"


def _unusable(root: Path, path: Path, suffixes: set[str], reason: str, err: OSError) -> Failure:
    rel = path.relative_to(root)
    video_id = (rel.with_suffix("") if rel.suffix.lower() in suffixes else rel).as_posix()
    what = {"symlink_loop": "symlink loop", "unlistable_folder": "cannot list this folder"}.get(reason, "cannot read")
    return Failure(video_id, str(path), "ingest", reason, f"{what}: {err.strerror or err} ({path})")


def has_control(text: str) -> bool:
    """True when ``text`` holds a control character (C0, DEL or C1: newline, tab, escape, ...)."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def escaped(text: str) -> str:
    """``text`` with its control characters written as Python escapes (``a\\nb``): printable, one line."""
    return "".join(c.encode("unicode_escape").decode("ascii") if has_control(c) else c for c in text)


def _bad_name(rel: str, path: Path) -> Failure:
    return Failure(
        escaped(rel),
        escaped(str(path)),
        "ingest",
        "bad_name",
        f"the file name holds a control character ('{escaped(rel)}'): rename the file to use it",
    )


def scan_folder(root: Path, extensions: Sequence[str]) -> Inputs:
    """Every file below ``root`` with a video suffix; the id is its relative path minus suffix.

    Nothing is dropped silently: a symlink that loops (whatever its name: it cannot be told from a
    folder) and a folder that cannot be listed become failures; files with other suffixes, hidden
    entries and symlinked folders (not followed: they may loop) are counted in ``skipped``.
    """
    suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    items: list[InputVideo] = []
    failed: list[Failure] = []
    skipped: Counter[str] = Counter()
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as err:
            if folder == root:
                raise InputError(f"data.input: cannot list {root}: {err.strerror or err}") from err
            failed.append(_unusable(root, folder, suffixes, "unlistable_folder", err))
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                skipped["hidden entries"] += 1
                continue
            try:
                is_dir = entry.is_dir()  # follows a symlink: ELOOP when it loops
            except OSError as err:
                reason = os_reason(err)
                if reason != "symlink_loop" and path.suffix.lower() not in suffixes:
                    skipped[path.suffix.lower() or "(no suffix)"] += 1  # never read: its permissions do not matter
                else:
                    failed.append(_unusable(root, path, suffixes, reason, err))
                continue
            if is_dir:
                if entry.is_symlink():
                    skipped["symlinked folders (not followed)"] += 1
                else:
                    todo.append(path)
            elif path.suffix.lower() in suffixes:
                rel = path.relative_to(root).with_suffix("").as_posix()
                if has_control(rel):  # an id with a newline breaks every line-based tool and log downstream
                    failed.append(_bad_name(rel, path))
                else:
                    items.append(InputVideo(video_id=rel, path=str(path)))
            else:
                skipped[path.suffix.lower() or "(no suffix)"] += 1
    items.sort(key=lambda item: item.video_id)
    failed.sort(key=lambda f: f.video_id)
    check_unique([*items, *(InputVideo(f.video_id, f.path) for f in failed)])
    return Inputs(items, failed, dict(skipped))


def read_manifest(path: Path, *, allow_outside_paths: bool = False) -> Inputs:
    where = functools.partial(tables.where, path)
    table = tables.read(path, InputError, "video_id,path[,label,split]")
    missing = [c for c in ("video_id", "path") if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: manifest lacks required column(s) {missing}; needs video_id, path[, label, split]")
    extra = [c for c in table.column_names if c not in MANIFEST_COLUMNS]
    if extra:
        log.info("manifest %s: ignoring extra columns %s", path, extra)
    rows = table.select([c for c in MANIFEST_COLUMNS if c in table.column_names]).to_pylist()
    base = os.path.abspath(path.parent)
    items, outside = [], []
    for i, row in enumerate(rows):
        vid, rel = _clean(row.get("video_id")), _clean(row.get("path"))
        for column, value in (("video_id", vid), ("path", rel)):
            if value is None:
                raise InputError(f"{path}: {where(i)} column {column!r}: empty")
            if has_control(value):
                raise InputError(
                    f"{path}: {where(i)} column {column!r}: '{escaped(value)}' holds a control character "
                    "(a newline, a tab, ...), which no video_id or path may hold"
                )
        split = _clean(row.get("split"))
        if split is not None and split not in SPLITS:
            raise InputError(f"{path}: {where(i)} column 'split': {split!r} ({vid}); valid: {', '.join(SPLITS)}")
        full = os.path.normpath(rel if os.path.isabs(rel) else os.path.join(base, rel))
        if os.path.commonpath([base, full]) != base:  # lexically: `../x.mp4`, `/elsewhere/x.mp4`
            outside.append(i)
        items.append(InputVideo(vid, full, _clean(row.get("label")), split))
    if outside and not allow_outside_paths:
        first = outside[0]
        raise InputError(
            f"{path}: {where(first)} column 'path': {_clean(rows[first]['path'])!r} leaves the manifest's folder "
            f"{base} ({len(outside)} rows do); set ingest.allow_outside_paths: true to read them"
        )
    check_unique(items)
    return Inputs(items, outside=len(outside))


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def check_unique(items: Sequence[InputVideo]) -> None:
    dups = sorted(k for k, n in Counter(i.video_id for i in items).items() if n > 1)
    if dups:
        shown = ", ".join(repr(d) for d in dups[:10]) + (" ..." if len(dups) > 10 else "")
        raise InputError(f"duplicate video_id(s) in the input: {shown}; ids must be unique (nothing was processed)")


def fingerprint(path: str | Path, chunk: int = 1 << 20) -> str:
    """Content hash (BLAKE2b-128 of the bytes): renames keep it, any edit changes it."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def unit_hash(seed: int, key: str) -> float:
    """A stable pseudo-random number in [0, 1) for ``key``; independent of corpus order and size."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_splits(items: Sequence[InputVideo], cfg: SplitConfig) -> list[str]:
    """Given splits are kept; others come from a seeded hash of the id.

    With ``stratify`` and labels, each label's videos are ranked by hash and cut at the
    split fractions, so every split sees every label; without it, a video's split never
    changes when others are added (the hash alone decides).
    """

    def pick(u: float) -> str:
        return "train" if u < cfg.train else "valid" if u < cfg.train + cfg.valid else "test"

    out = [it.split or "" for it in items]
    todo = [i for i, it in enumerate(items) if not it.split]
    if cfg.stratify and any(items[i].label is not None for i in todo):
        groups: dict[str | None, list[int]] = defaultdict(list)
        for i in todo:
            groups[items[i].label].append(i)
        for members in groups.values():
            members.sort(key=lambda i: unit_hash(cfg.seed, items[i].video_id))
            for rank, i in enumerate(members):
                out[i] = pick((rank + 0.5) / len(members))
    else:
        for i in todo:
            out[i] = pick(unit_hash(cfg.seed, items[i].video_id))
    return out


def previous_manifest(path: str | Path) -> dict[str, dict]:
    """The last manifest's rows by path (empty when there is none or it is unreadable)."""
    from pipeline.core import store

    try:
        table = store.read_table(path, expect={"stage": "ingest"})
    except (store.StoreError, pa.ArrowInvalid, OSError) as err:
        if Path(path).exists():
            log.warning("previous manifest %s unusable (%s): probing every file", path, err)
        return {}
    if "mtime_ns" not in table.column_names:
        return {}
    return {row["path"]: row for row in table.to_pylist()}


def reuse(item: InputVideo, split: str, previous: dict[str, dict]) -> dict | None:
    """The previous row for an unchanged file (same path, size and mtime_ns), with today's id, label and split."""
    old = previous.get(item.path)
    if old is None:
        return None
    try:
        st = os.stat(item.path)
    except OSError:
        return None
    if (st.st_size, st.st_mtime_ns) != (old["size_bytes"], old["mtime_ns"]):
        return None
    if not os.access(item.path, os.R_OK):  # chmod keeps the mtime: probe again, to report permission_denied
        return None
    return old | {"video_id": item.video_id, "label": item.label, "split": split}


def probe_one(item: InputVideo, split: str, previous: dict[str, dict] | None = None) -> dict | Failure:
    """One manifest row (a dict in ``SCHEMA`` order), or the failure that stops this video."""
    if previous and (row := reuse(item, split, previous)) is not None:
        return row
    try:
        info = probe(item.path)
        st = os.stat(item.path)
        digest = fingerprint(item.path)
    except MediaError as err:
        return Failure(item.video_id, item.path, "ingest", err.reason, str(err))
    except OSError as err:  # permissions changed or the file vanished mid-run
        return Failure(item.video_id, item.path, "ingest", os_reason(err), f"{type(err).__name__}: {err}")
    dw, dh = info.display_size
    return {
        "video_id": item.video_id,
        "path": item.path,
        "fingerprint": digest,
        "size_bytes": st.st_size,
        "label": item.label,
        "split": split,
        "container": info.container,
        "duration_s": info.duration_s,
        "fps": info.fps,
        "n_frames": info.n_frames,
        "width": info.width,
        "height": info.height,
        "display_width": dw,
        "display_height": dh,
        "rotation": info.rotation,
        "sar": info.sar,
        "video_stream": info.video_stream,
        "video_codec": info.video_codec,
        "has_audio": info.has_audio,
        "audio_stream": info.audio_stream,
        "audio_codec": info.audio_codec,
        "audio_channels": info.audio_channels,
        "audio_rate": info.audio_rate,
        "mtime_ns": st.st_mtime_ns,
    }


def manifest_table(rows: Sequence[dict]) -> pa.Table:
    return pa.Table.from_pylist(sorted(rows, key=lambda r: r["video_id"]), schema=SCHEMA)
