"""``movielens``: a folder holding either MovieLens 100K files ``u.data`` (tab-separated user, item,
rating, timestamp), ``u.user`` (id|age|gender|occupation|zip), ``u.item`` (id|title|release
date|video release date|URL|19 genre flags, latin-1) and optionally ``u.genre``; or MovieLens 1M files
``ratings.dat`` (UserID::MovieID::Rating::Timestamp), ``users.dat`` (UserID::Gender::Age::Occupation::Zip)
and ``movies.dat`` (MovieID::Title::Genre|Genre). Side features: users ``age``, ``gender``,
``occupation``, ``zip``; items ``genres`` (multi-valued) and ``year``. Ratings become labels by the
label rule. The split is not given (the stages split), except with a path naming one of MovieLens
100K's own fixed splits, ``<folder>/u1.base`` .. ``u5.base``, ``ua.base``, ``ub.base``: training ratings
from that file, test ratings from the matching ``.test`` (the protocol most published ML-100k numbers use);
the stage carves validation out of the training ratings (``ctr_data.split``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from pipeline.datasets import RawData, SourceError, apply_rule, interactions, need, register, strings

if TYPE_CHECKING:
    from pipeline.datasets import LabelRule


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


_ML100K = ["u.data", "u.user", "u.item"]
_ML1M = ["ratings.dat", "users.dat", "movies.dat"]


FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")  # MovieLens 100K's fixed splits: <fold>.base / <fold>.test


@register("movielens")
def read_movielens(path: Path, rule: LabelRule) -> RawData:
    if path.suffix == ".base":
        return _fold(path, rule)
    if path.is_dir() and (path / "u.data").exists():
        need(path, _ML100K, "movielens (100K)")
        return _movielens_100k(path, rule)
    if path.is_dir() and (path / "ratings.dat").exists():
        need(path, _ML1M, "movielens (1M)")
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
    item_table = pa.table({"video_id": strings(items["video_id"]), "genres": _genre_lists(flags, names), "year": year})
    user_table = users.set_column(0, "user_id", strings(users["user_id"])).set_column(4, "zip", strings(users["zip"]))
    raw = apply_rule(interactions(data["user"], data["item"], data["ts"], rating=data["rating"]), rule)
    return RawData(raw, user_table, item_table)


def _fold(path: Path, rule: LabelRule) -> RawData:
    """A fixed split of MovieLens 100K: ``<fold>.base`` -> training, ``<fold>.test`` -> test (split 0 / 2)."""
    if path.stem not in FOLDS:
        raise SourceError(f"{path}: not a MovieLens 100K split; name one of {[f + '.base' for f in FOLDS]}")
    need(path.parent, [*_ML100K, path.name, f"{path.stem}.test"], "movielens (100K fixed split)")
    whole = _movielens_100k(path.parent, rule)
    parts = []
    for name, split in ((path.name, 0), (f"{path.stem}.test", 2)):
        data = _read_delimited(path.parent / name, ["user", "item", "rating", "ts"], "\t")
        inter = interactions(data["user"], data["item"], data["ts"], rating=data["rating"])
        inter = apply_rule(inter, rule)
        parts.append(inter.append_column("split", pa.array(np.full(inter.num_rows, split, np.int8))))
    return RawData(pa.concat_tables(parts), whole.users, whole.items)


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
            "video_id": strings(movies["video_id"]),
            "genres": pc.split_pattern(pc.cast(movies["genres"], pa.string()), "|"),
            "year": year,
        }
    )
    user_table = pa.table(
        {
            "user_id": strings(users["user_id"]),
            "age": users["age"],
            "gender": strings(users["gender"]),
            "occupation": strings(users["occupation"]),
            "zip": strings(users["zip"]),
        }
    )
    raw = apply_rule(interactions(data["user"], data["item"], data["ts"], rating=data["rating"]), rule)
    return RawData(raw, user_table, item_table)
