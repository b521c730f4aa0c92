"""User-supplied tables (the ingest manifest, the interaction log): read and check them before any work.

A bad table is one line naming the file, the row and the column, raised as the caller's error type
(the one its stage's ``run_stage`` catches), never a pyarrow traceback from deep in a stage. CSV files
are read with every column as a string, so that the checks here, not pyarrow's type inference, decide
what a cell means. Rows are named as a person finds them: ``line N`` of a CSV (the header is line 1;
a quoted cell holding a newline shifts later lines), ``row N`` (from 1) of a Parquet file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# Whole numbers as text, with an optional ".0" that spreadsheets and pandas add to integer columns.
# At most 18 digits, so every match fits an int64.
_WHOLE = r"^\s*[+-]?\d{1,18}(\.0*)?\s*$"
_BINARY = r"^\s*[+]?[01](\.0*)?\s*$"


def where(path: Path, index: int) -> str:
    """Where data row ``index`` (from 0) is, in the words a person opening the file uses."""
    return f"line {index + 2}" if path.suffix.lower() == ".csv" else f"row {index + 1}"


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300] + (" ..." if len(text) > 300 else "")


def read(path: Path, error: type[Exception], columns: str) -> pa.Table:
    """A ``.csv`` (every column a string) or ``.parquet`` table with at least one data row.

    ``columns`` describes the expected header for the messages (``video_id,path[,label,split]``).
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise error(f"{path}: must be .csv or .parquet (columns {columns})")
    try:
        size = path.stat().st_size
    except OSError as err:
        raise error(f"{path}: cannot read it: {err.strerror or err}") from err
    if size == 0:
        raise error(f"{path}: line 1: the file is empty (zero bytes); expected a header with the columns {columns}")
    try:
        table = pq.read_table(path) if suffix == ".parquet" else _read_csv(path, error, columns)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as err:
        kind = "a Parquet" if suffix == ".parquet" else "a CSV"
        raise error(f"{path}: not {kind} file this stage can read: {_one_line(err)}") from err
    if table.num_rows == 0:
        first = "line 2" if suffix == ".csv" else "row 1"
        raise error(f"{path}: {first}: no data rows, only the header ({','.join(table.column_names)})")
    return table


def _read_csv(path: Path, error: type[Exception], columns: str) -> pa.Table:
    with open(path, newline="", encoding="utf-8-sig") as fh:  # the header only: every column becomes a string
        header = next(csv.reader(fh), [])
    if not any(name.strip() for name in header):
        raise error(f"{path}: line 1: no header; expected the columns {columns}")
    return pacsv.read_csv(
        path,
        # only an empty cell is missing: pyarrow's default would also read "NA", "NaN" or "null" as missing,
        # and so turn a video called "NA" or a timestamp "NaN" into an empty cell
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=True, null_values=[""]
        ),
    )


def _first_bad(ok: pa.Array | pa.ChunkedArray) -> tuple[int, int]:
    """(index of the first False or null, how many there are); (-1, 0) when all are True."""
    mask = pc.fill_null(ok, False).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~mask)
    return (int(bad[0]), len(bad)) if len(bad) else (-1, 0)


def _fail(error: type[Exception], path: Path, column: str, index: int, count: int, why: str) -> Exception:
    more = f" ({count} rows like this)" if count > 1 else ""
    return error(f"{path}: {where(path, index)} column {column!r}: {why}{more}")


def _describe(value: object, wanted: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "empty"
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{value!r} is not a number; expected {wanted}"
    if not math.isfinite(number):
        return f"{value!r} is not a finite number; expected {wanted}"
    return f"{value!r} is not {wanted}"


def require_text(table: pa.Table, path: Path, error: type[Exception], names: Sequence[str]) -> None:
    """Every cell of these columns holds text (not empty, not only spaces)."""
    for name in names:
        col = pc.cast(table.column(name), pa.string())
        index, count = _first_bad(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0))
        if count:
            raise _fail(error, path, name, index, count, "empty")


def whole_numbers(
    table: pa.Table, path: Path, error: type[Exception], name: str, *, binary: bool = False
) -> pa.ChunkedArray:
    """Column ``name`` as int64: whole numbers (``binary``: 0 or 1), no empty, NaN or fractional cells.

    Text is matched against a pattern; numbers are checked for nulls, NaN and fractions; a timestamp
    column becomes unix seconds (a plain cast would give its unit, e.g. microseconds).
    """
    col = table.column(name)
    wanted = "0 or 1" if binary else "a whole number (unix seconds)" if name == "timestamp" else "a whole number"
    kind = col.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        ok = pc.match_substring_regex(col, _BINARY if binary else _WHOLE)
        index, count = _first_bad(ok)
        if count:
            raise _fail(error, path, name, index, count, _describe(col[index].as_py(), wanted))
        digits = pc.replace_substring_regex(pc.utf8_trim_whitespace(col), r"\.0*$", "")
        return pc.cast(pc.replace_substring_regex(digits, r"^\+", ""), pa.int64())
    if pa.types.is_timestamp(kind) and not binary:
        seconds = pc.cast(pc.cast(col, pa.timestamp("s", kind.tz), safe=False), pa.int64())
        index, count = _first_bad(pc.is_valid(seconds))
        if count:
            raise _fail(error, path, name, index, count, "empty")
        return seconds
    if pa.types.is_boolean(kind) and binary:
        index, count = _first_bad(pc.is_valid(col))
        if count:
            raise _fail(error, path, name, index, count, "empty")
        return pc.cast(col, pa.int64())
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        values = pc.cast(col, pa.float64())
        whole = pc.and_(pc.is_finite(values), pc.equal(pc.floor(values), values))
        ok = pc.and_(whole, pc.less(pc.abs(values), 9.2e18))  # inside int64
        if binary:
            ok = pc.and_(ok, pc.is_in(values, value_set=pa.array([0.0, 1.0])))
        index, count = _first_bad(ok)
        if count:
            raise _fail(error, path, name, index, count, _describe(col[index].as_py(), wanted))
        return pc.cast(col, pa.int64(), safe=False)  # whole, finite values: the cast is exact
    raise error(f"{path}: column {name!r} has type {kind}; expected {wanted}")


_SECONDS = r"^\s*\+?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"  # a plain non-negative decimal number


def optional_seconds(table: pa.Table, path: Path, error: type[Exception], name: str) -> np.ndarray:
    """Column ``name`` as float64 seconds: empty (or NaN) cells are NaN, unknown; any other cell must be a
    finite number >= 0. Text is matched against a pattern, numbers checked for sign and infinities."""
    col = table.column(name)
    kind, wanted = col.type, "seconds (a number >= 0, or empty)"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        given = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0), False)
        index, count = _first_bad(pc.or_kleene(pc.invert(given), pc.match_substring_regex(col, _SECONDS)))
        if count:
            value = col[index].as_py()
            negative = value.strip().startswith("-") and _describe(value, wanted).endswith(f"not {wanted}")
            why = f"{value!r} is negative; expected {wanted}" if negative else _describe(value, wanted)
            raise _fail(error, path, name, index, count, why)
        values = pc.cast(pc.if_else(given, col, None), pa.float64())
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        values = pc.cast(col, pa.float64())
        number = pc.fill_null(pc.invert(pc.is_nan(values)), False)  # null and NaN: unknown
        index, count = _first_bad(
            pc.or_kleene(pc.invert(number), pc.and_(pc.is_finite(values), pc.greater_equal(values, 0)))
        )
        if count:
            value = col[index].as_py()
            why = f"{value!r} is negative; expected {wanted}" if value < 0 else _describe(value, wanted)
            raise _fail(error, path, name, index, count, why)
    else:
        raise error(f"{path}: column {name!r} has type {kind}; expected {wanted}")
    return pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False).astype(np.float64)
