"""Interaction sources for the CTR stages, registered by name (``ctr_data.source``).

Each reader returns ``RawData``: an interaction table (``user_id``, ``video_id`` strings,
``timestamp`` int64 unix seconds, and ``label`` int64 when labels are explicit), plus an
optional user table and item table (keyed by ``user_id`` / ``video_id``) whose columns are
the side features ``ctr_data.features`` may name. Rating-based sources turn ratings into
labels with ``ctr_data.label`` (``LabelRule``): rating >= positive_min -> 1, rating <=
negative_max -> 0, anything between is dropped; negative_max null keeps positives only (an
implicit log: ctr_data samples the negatives).

File layouts:
- ``log``: ``data.interactions`` (.csv or .parquet: user_id, video_id, timestamp[, label]);
  the item table is the ingest manifest (``paths.manifest``) when it exists; no user table.
- ``movielens``: a folder holding either MovieLens 100K files ``u.data`` (tab-separated
  user, item, rating, timestamp), ``u.user`` (id|age|gender|occupation|zip), ``u.item``
  (id|title|release date|video release date|URL|19 genre flags, latin-1) and optionally
  ``u.genre``; or MovieLens 1M files ``ratings.dat`` (UserID::MovieID::Rating::Timestamp),
  ``users.dat`` (UserID::Gender::Age::Occupation::Zip) and ``movies.dat``
  (MovieID::Title::Genre|Genre). Side features: users ``age``, ``gender``, ``occupation``,
  ``zip``; items ``genres`` (multi-valued) and ``year``.
- ``amazon``: one JSON-lines file (or a folder of them), plain ``.json`` or ``.json.gz``, one
  review per line with ``reviewerID``, ``asin``, ``overall`` (rating) and ``unixReviewTime``;
  other fields are ignored. No side features.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson

from pipeline.core import tables
from registry import Registry

if TYPE_CHECKING:  # params validation reads ADAPTERS: no import of the params module here
    from pipeline.core.params import LabelRule


class SourceError(ValueError):
    """An input that is missing, in the wrong layout, or holds unusable values."""


@dataclass(frozen=True)
class RawData:
    interactions: pa.Table  # user_id, video_id, timestamp[, label]
    users: pa.Table | None  # user_id + side feature columns
    items: pa.Table | None  # video_id + side feature columns


Reader = Callable[[Path, "LabelRule"], RawData]
ADAPTERS: Registry[Reader] = Registry("dataset adapter", key="ctr_data.source")
register = ADAPTERS.register


def read_source(name: str, path: str | Path, rule: LabelRule) -> RawData:
    return ADAPTERS.get(name)(Path(path), rule)


def apply_rule(table: pa.Table, rule: LabelRule) -> pa.Table:
    """``rating`` column -> ``label`` (explicit) or positives only (implicit, no label column)."""
    rating = table.column("rating").to_numpy(zero_copy_only=False).astype(np.float64)
    pos = rating >= rule.positive_min
    if rule.negative_max is None:
        return table.filter(pa.array(pos)).drop_columns(["rating"])
    keep = pos | (rating <= rule.negative_max)
    out = table.append_column("label", pa.array(pos.astype(np.int64)))
    return out.filter(pa.array(keep)).drop_columns(["rating"])


def _strings(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.cast(col, pa.string())


def _interactions(user, item, ts, rating=None, label=None) -> pa.Table:
    cols = {"user_id": _strings(user), "video_id": _strings(item), "timestamp": pc.cast(ts, pa.int64())}
    if rating is not None:
        cols["rating"] = pc.cast(rating, pa.float64())
    if label is not None:
        cols["label"] = label
    return pa.table(cols)


def _need(folder: Path, names: list[str], layout: str) -> None:
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder; the {layout} adapter expects a folder holding {names}")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir())[:20]
        raise SourceError(f"{folder}: missing {missing}; the {layout} adapter expects {names} (found {present})")


def _read_delimited(path: Path, names: list[str], sep: str) -> pa.Table:
    """Latin-1 text with a (possibly multi-character) separator and no quoting."""
    text = path.read_bytes().decode("latin-1")
    if len(sep) > 1:  # pyarrow's CSV reader takes one-character delimiters only
        text = text.replace(sep, "\x1f")
        sep = "\x1f"
    return pcsv.read_csv(
        pa.BufferReader(text.encode("utf-8")),
        read_options=pcsv.ReadOptions(column_names=names),
        parse_options=pcsv.ParseOptions(delimiter=sep, quote_char=False),
        convert_options=pcsv.ConvertOptions(strings_can_be_null=False),
    )


@register("log")
def read_log(path: Path, rule: LabelRule) -> RawData:
    """The project's interaction log; its item table is attached by the stage (the manifest)."""
    if not path.is_file():
        raise SourceError(f"{path}: interaction log not found (params data.interactions)")
    # Checked cell by cell here: a bad cell used to surface as a pyarrow traceback, an OverflowError
    # in the history builder, or an empty label read as -2**63.
    table = tables.read(path, SourceError, "user_id,video_id,timestamp[,label]")
    missing = {"user_id", "video_id", "timestamp"} - set(table.column_names)
    if missing:
        raise SourceError(f"{path}: missing columns {sorted(missing)}; expected user_id, video_id, timestamp[, label]")
    tables.require_text(table, path, SourceError, ["user_id", "video_id"])
    ts = tables.whole_numbers(table, path, SourceError, "timestamp")
    label = (
        tables.whole_numbers(table, path, SourceError, "label", binary=True) if "label" in table.column_names else None
    )
    return RawData(_interactions(table["user_id"], table["video_id"], ts, label=label), None, None)


_ML100K = ["u.data", "u.user", "u.item"]
_ML1M = ["ratings.dat", "users.dat", "movies.dat"]


@register("movielens")
def read_movielens(path: Path, rule: LabelRule) -> RawData:
    if path.is_dir() and (path / "u.data").exists():
        _need(path, _ML100K, "movielens (100K)")
        return _movielens_100k(path, rule)
    if path.is_dir() and (path / "ratings.dat").exists():
        _need(path, _ML1M, "movielens (1M)")
        return _movielens_1m(path, rule)
    raise SourceError(f"{path}: the movielens adapter expects a folder holding {_ML100K} (100K) or {_ML1M} (1M)")


def _genre_lists(flags: np.ndarray, names: list[str]) -> pa.Array:
    """(N, G) 0/1 flags -> list<string> per row."""
    rows, cols = np.nonzero(flags)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(flags)))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.asarray(names, dtype=object)[cols]))


def _movielens_100k(path: Path, rule: LabelRule) -> RawData:
    data = _read_delimited(path / "u.data", ["user", "item", "rating", "ts"], "\t")
    users = _read_delimited(path / "u.user", ["user_id", "age", "gender", "occupation", "zip"], "|")
    n_genres = 19
    item_cols = ["video_id", "title", "release", "video_release", "url"] + [f"g{k}" for k in range(n_genres)]
    items = _read_delimited(path / "u.item", item_cols, "|")
    names = [f"genre{k}" for k in range(n_genres)]
    if (path / "u.genre").is_file():
        genre = _read_delimited(path / "u.genre", ["name", "index"], "|")
        names = [str(n) for n in genre.column("name").to_pylist()][:n_genres]
    flags = np.stack([items.column(f"g{k}").to_numpy() for k in range(n_genres)], axis=1)  # (N_items, 19)
    year = _year(items["release"])
    item_table = pa.table({"video_id": _strings(items["video_id"]), "genres": _genre_lists(flags, names), "year": year})
    user_table = users.set_column(0, "user_id", _strings(users["user_id"])).set_column(4, "zip", _strings(users["zip"]))
    raw = apply_rule(_interactions(data["user"], data["item"], data["ts"], rating=data["rating"]), rule)
    return RawData(raw, user_table, item_table)


def _year(col: pa.ChunkedArray) -> pa.Array:
    """Last four characters of a date string as a float year (NaN when absent)."""
    text = pc.utf8_slice_codeunits(pc.cast(col, pa.string()), -4)
    digits = pc.match_substring_regex(text, r"^\d{4}$")
    return pc.if_else(digits, pc.cast(pc.if_else(digits, text, "0"), pa.float64()), float("nan"))


def _movielens_1m(path: Path, rule: LabelRule) -> RawData:
    data = _read_delimited(path / "ratings.dat", ["user", "item", "rating", "ts"], "::")
    users = _read_delimited(path / "users.dat", ["user_id", "gender", "age", "occupation", "zip"], "::")
    movies = _read_delimited(path / "movies.dat", ["video_id", "title", "genres"], "::")
    title = pc.utf8_rtrim_whitespace(pc.cast(movies["title"], pa.string()))
    year = _year(pc.utf8_slice_codeunits(title, -5, -1))  # "Toy Story (1995)"
    item_table = pa.table(
        {
            "video_id": _strings(movies["video_id"]),
            "genres": pc.split_pattern(pc.cast(movies["genres"], pa.string()), "|"),
            "year": year,
        }
    )
    user_table = pa.table(
        {
            "user_id": _strings(users["user_id"]),
            "age": users["age"],
            "gender": _strings(users["gender"]),
            "occupation": _strings(users["occupation"]),
            "zip": _strings(users["zip"]),
        }
    )
    raw = apply_rule(_interactions(data["user"], data["item"], data["ts"], rating=data["rating"]), rule)
    return RawData(raw, user_table, item_table)


_AMAZON_SCHEMA = pa.schema(
    [("reviewerID", pa.string()), ("asin", pa.string()), ("overall", pa.float64()), ("unixReviewTime", pa.int64())]
)


@register("amazon")
def read_amazon(path: Path, rule: LabelRule) -> RawData:
    files = sorted(p for p in path.iterdir() if p.name.endswith((".json", ".json.gz"))) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise SourceError(
            f"{path}: the amazon adapter expects a JSON-lines file (.json or .json.gz) or a folder "
            "of them, one review per line with reviewerID, asin, overall, unixReviewTime"
        )
    tables = []
    for f in files:
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rb") as fh:
            try:
                t = pjson.read_json(
                    fh,
                    parse_options=pjson.ParseOptions(
                        explicit_schema=_AMAZON_SCHEMA, unexpected_field_behavior="ignore"
                    ),
                )
            except pa.ArrowInvalid as err:
                raise SourceError(f"{f}: not JSON lines with reviewerID, asin, overall, unixReviewTime: {err}") from err
        nulls = {c: t.column(c).null_count for c in _AMAZON_SCHEMA.names if t.column(c).null_count}
        if nulls:
            raise SourceError(f"{f}: rows missing required fields {nulls}")
        tables.append(t)
    t = pa.concat_tables(tables)
    raw = _interactions(t["reviewerID"], t["asin"], t["unixReviewTime"], rating=t["overall"])
    return RawData(apply_rule(raw, rule), None, None)
