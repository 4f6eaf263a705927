"""The export formats: rows in, CSV or JSON chunks out, formulas neutralised, nothing held but a batch."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scriptmail.exports import columns, formats

COLUMNS = ("address", "subject", "code")


def _csv(chunks) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8"))))


def test_csv_has_a_header_and_neutralises_every_formula_start() -> None:
    rows = [
        {"address": '=HYPERLINK("http://evil.test")@x.test', "subject": "+1 -1", "code": 550},
        {"address": "@SUM(A1)", "subject": "-2+3", "code": None},
        {"address": "\tcmd", "subject": "\r=1", "code": 250},
        {"address": "plain@ok.test", "subject": 'Ünïcode ✓, "quoted"\nnew line', "code": 0},
    ]
    table = _csv(formats.csv_chunks(COLUMNS, rows))
    assert table[0] == list(COLUMNS)
    assert table[1] == ['\'=HYPERLINK("http://evil.test")@x.test', "'+1 -1", "550"]
    assert table[2] == ["'@SUM(A1)", "'-2+3", ""]
    assert table[3] == ["'\tcmd", "'\r=1", "250"]
    assert table[4] == ["plain@ok.test", 'Ünïcode ✓, "quoted"\nnew line', "0"]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in table for cell in row)


def test_json_is_one_array_even_when_empty_and_keeps_text_as_is() -> None:
    assert json.loads(b"".join(formats.json_chunks(COLUMNS, []))) == []
    rows = [{"address": "=x", "subject": "ü", "code": 5, "ignored": "no"}]
    assert json.loads(b"".join(formats.json_chunks(COLUMNS, rows))) == [{"address": "=x", "subject": "ü", "code": 5}]


def test_rows_come_out_a_batch_at_a_time_from_a_generator() -> None:
    pulled = 0

    def rows():
        nonlocal pulled
        for n in range(2500):
            pulled += 1
            yield {"address": f"a{n}@x.test", "subject": "s", "code": n}

    for format in formats.FORMATS:
        pulled = 0
        stream = formats.chunks(format, COLUMNS, rows(), batch=500)
        next(stream)
        assert pulled <= 501, "the first chunk should not need the whole table"
        rest = list(stream)
        assert len(rest) >= 4 and pulled == 2500


def test_an_unknown_format_is_refused() -> None:
    for bad in ("xml", "", "CSV", "csv\x00"):
        with pytest.raises(formats.UnknownFormat):
            formats.chunks(bad, COLUMNS, [])


@given(
    st.lists(st.fixed_dictionaries({"address": st.text(), "subject": st.text(), "code": st.none() | st.integers()}), max_size=20)
)
def test_any_text_round_trips_through_both_formats(rows) -> None:
    table = _csv(formats.csv_chunks(COLUMNS, rows, batch=3))
    assert len(table) == len(rows) + 1
    for row, cells in zip(rows, table[1:], strict=True):
        text = formats.neutralise(row["address"]).replace("\r\n", "\n").replace("\r", "\n")
        assert cells[0].replace("\r\n", "\n").replace("\r", "\n") == text
    assert json.loads(b"".join(formats.json_chunks(COLUMNS, rows, batch=3))) == rows


def test_file_names_keep_only_safe_characters() -> None:
    at = 1_780_000_000.0
    assert columns.file_name("shop.example", columns.MESSAGES, "csv", at).startswith("shop.example-log-2026")
    assert columns.file_name('a"b\r\n/..;x', columns.BOUNCES, "json", at).startswith("a_b___.._x-bounces-")
