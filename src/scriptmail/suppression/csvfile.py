"""The CSV form of a suppression list: `value,reason` per line, an optional header line. Parsing
is all or nothing: the first bad line is named and nothing is imported."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from scriptmail.suppression.rules import EntryError, entry_of

HEADER = ("value", "reason")
MAX_LINES = 1_000_000


class CsvError(ValueError):
    """A file that cannot be imported; the message names the line."""


def parse(text: str, allow_patterns: bool) -> list[tuple[str, str]]:
    """(value, reason) pairs, checked; CsvError naming the first bad line."""
    if "\x00" in text:
        raise CsvError("line 1: the file contains NUL bytes (not a text CSV file)")
    found: list[tuple[str, str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for row in reader:
            line = reader.line_num
            if line > MAX_LINES:
                raise CsvError(f"line {line}: more than {MAX_LINES} lines")
            if not row or all(not cell.strip() for cell in row):
                continue
            if line == 1 and tuple(cell.strip().lower() for cell in row[:2]) in (HEADER, HEADER[:1]):
                continue
            if len(row) > 2:
                raise CsvError(f"line {line}: {len(row)} fields; expected value[,reason]")
            reason = row[1].strip() if len(row) > 1 else ""
            if len(reason) > 32 or any(ord(ch) < 32 for ch in reason):
                raise CsvError(f"line {line}: the reason must be at most 32 printable characters")
            try:
                entry_of(row[0], allow_patterns)
            except EntryError as error:
                raise CsvError(f"line {line}: {error}") from None
            found.append((row[0], reason))
    except csv.Error as error:
        raise CsvError(f"line {reader.line_num}: {error}") from None
    return found


def render(entries: Iterable[dict[str, Any]]) -> str:
    """A list as CSV, header first: what `parse` reads back."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for entry in entries:
        writer.writerow((entry["value"], entry["reason"]))
    return buffer.getvalue()
