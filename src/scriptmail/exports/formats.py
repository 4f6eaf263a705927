"""Rows to CSV or JSON chunks. Pure: an iterable of rows in, an iterator of bytes out, so a
million-row export costs the memory of one batch.

CSV is UTF-8 with a header row, and a cell that a spreadsheet would read as a formula (it starts
with = + - @, or with a tab or carriage return that some programs skip first) gets a leading
apostrophe: the address or subject a script wrote can never run as a formula on the owner's screen.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

FORMATS = ("csv", "json")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
BATCH = 500  # rows per chunk: a few tens of KiB, small enough to stream, large enough to be cheap
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class UnknownFormat(ValueError):
    """Asked for a format other than csv or json."""


def neutralise(value: Any) -> str:
    """One CSV cell: text that cannot start a spreadsheet formula; None is an empty cell."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_chunks(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], batch: int = BATCH) -> Iterator[bytes]:
    """The header row, then the rows, `batch` rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(name) for name in columns])
    pending = 0
    for row in rows:
        writer.writerow([neutralise(row.get(name)) for name in columns])
        pending += 1
        if pending >= batch:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode("utf-8")


def json_chunks(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], batch: int = BATCH) -> Iterator[bytes]:
    """One JSON array of objects with the given members, `batch` objects per chunk."""
    parts: list[str] = ["["]
    first = True
    for row in rows:
        item = json.dumps({name: row.get(name) for name in columns}, ensure_ascii=False, separators=(",", ":"))
        parts.append(item if first else "," + item)
        first = False
        if len(parts) >= batch:
            yield ("\n".join(parts) + "\n").encode("utf-8")
            parts = []
    parts.append("]")
    yield ("\n".join(parts) + "\n").encode("utf-8")


def chunks(format: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], batch: int = BATCH) -> Iterator[bytes]:
    """The export in `format` (csv or json); UnknownFormat for anything else."""
    if format == "csv":
        return csv_chunks(columns, rows, batch)
    if format == "json":
        return json_chunks(columns, rows, batch)
    raise UnknownFormat(f"unknown format {format[:20]!r}: use csv or json")
