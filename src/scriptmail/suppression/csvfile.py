"""The CSV form of a suppression list: `value,reason` per line, an optional header line. A file
that is not CSV text is refused whole; a line whose value or reason is bad is named, and the
other lines are imported."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scriptmail.suppression.rules import EntryError, entry_of

HEADER = ("value", "reason")
MAX_LINES = 1_000_000


class CsvError(ValueError):
    """A file that cannot be imported at all; the message names the line."""


@dataclass
class Parsed:
    items: list[tuple[str, str]] = field(default_factory=list)  # (value, reason), checked
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (line number, its text, why)


def parse(text: str, allow_patterns: bool) -> Parsed:
    """The good lines as (value, reason) pairs and the bad ones with why; CsvError when the file
    as a whole cannot be read (NUL bytes, broken quoting, too many lines)."""
    if "\x00" in text:
        raise CsvError("line 1: the file contains NUL bytes (not a text CSV file)")
    parsed = Parsed()
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
            problem = _problem(row, allow_patterns)
            if problem:
                parsed.refused.append((line, _as_line(row), problem))
            else:
                parsed.items.append((row[0], row[1].strip() if len(row) > 1 else ""))
    except csv.Error as error:
        raise CsvError(f"line {reader.line_num}: {error}") from None
    return parsed


def _problem(row: list[str], allow_patterns: bool) -> str:
    if len(row) > 2:
        return f"{len(row)} fields; expected value[,reason]"
    reason = row[1].strip() if len(row) > 1 else ""
    if len(reason) > 32 or any(ord(ch) < 32 for ch in reason):
        return "the reason must be at most 32 printable characters"
    try:
        entry_of(row[0], allow_patterns)
    except EntryError as error:
        return str(error)
    return ""


def _as_line(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


def refused_text(parsed: Parsed, limit: int = 20) -> str:
    """The refused lines as one message: "line 3: why; line 7: why" (the first `limit`)."""
    shown = "; ".join(f"line {line}: {why}" for line, _text, why in parsed.refused[:limit])
    more = len(parsed.refused) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


def render(entries: Iterable[dict[str, Any]]) -> str:
    """A list as CSV, header first: what `parse` reads back. A pattern the width guard refuses (not
    applied) has a third field saying why, so that its line is refused again on import."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for entry in entries:
        refused = entry.get("refused", "")
        writer.writerow(
            (entry["value"], entry["reason"], f"not applied: {refused}") if refused else (entry["value"], entry["reason"])
        )
    return buffer.getvalue()
