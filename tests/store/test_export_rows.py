"""An export of 100,000 logged recipients keeps memory flat: the rows are read a page at a time
and leave as chunks, so the peak is one page and one batch, not the file."""

from __future__ import annotations

import os
import time

from sqlalchemy import Engine

from scriptmail.exports import columns, formats
from scriptmail.store import export_rows
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log as store_log
from tests.support.gateway import HOSTING
from tests.support.log_rows import fill_log

ROWS = 100_000
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _resident() -> int:
    """This process's resident memory now (not the high-water mark: that never comes down)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_BYTES


def _window(hosting_id: int, days: float = 31, **filters) -> store_log.Filters:
    now = time.time()
    return store_log.Filters(hosting_id=hosting_id, since=now - days * 86400, until=now + 60, **filters)


def test_an_export_of_100000_rows_streams_with_flat_memory(shop: Engine) -> None:
    fill_log(shop, HOSTING, ROWS)
    with shop.connect() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
    # One format per store keeps the test short; both formats are streamed the same way (tests/exports).
    for format in ("csv",) if shop.dialect.name == "sqlite" else ("json",):
        rows = export_rows.log_rows(shop, _window(hosting_id))
        stream = formats.chunks(format, columns.MESSAGES.columns, columns.MESSAGES.rows(rows))
        total = chunks = 0
        started = time.perf_counter()
        for chunk in stream:  # the first tenth: pages are read, chunks made, caches warmed
            total += len(chunk)
            chunks += 1
            if chunks == ROWS // formats.BATCH // 10:
                break
        after_first = highest = _resident()
        for chunk in stream:  # the other nine tenths
            total += len(chunk)
            chunks += 1
            highest = max(highest, _resident())
        elapsed = time.perf_counter() - started
        grown = highest - after_first
        print(f"{shop.dialect.name} {format}: {ROWS} rows, {total / 1e6:.1f} MB in {chunks} chunks, {elapsed:.1f} s; "
              f"resident memory grew {grown / 1e6:.2f} MB over the last 90,000 rows")  # fmt: skip
        assert chunks >= ROWS // formats.BATCH and total > 15_000_000  # about 170 bytes a row
        assert grown < total / 10, f"resident memory grew {grown} bytes for a {total}-byte export: it is being held"


def test_bounce_and_suppression_exports_page_along_their_keys(shop: Engine) -> None:
    ids = fill_log(shop, HOSTING, 2500)
    with shop.connect() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
    found = list(export_rows.log_rows(shop, _window(hosting_id), export_rows.BOUNCE_STATUSES, page=100))
    assert len(found) == 1250 and {row["status"] for row in found} == {"bounced", "expired"}
    assert [row["id"] for row in found] == sorted((row["id"] for row in found), reverse=True) and set(ids) >= {
        r["id"] for r in found
    }
    mixed = _window(hosting_id, status=store_log.RecipientStatus.SENT)
    assert list(export_rows.log_rows(shop, mixed, export_rows.BOUNCE_STATUSES)) == []
    assert list(export_rows.suppression_rows(shop, hosting_id, time.time(), search="\x00")) == []


def test_an_export_reads_only_its_window_newest_first_across_pages(shop: Engine) -> None:
    now = time.time()
    old = fill_log(shop, HOSTING, 300, subject="old", at=now - 40 * 86400)
    inside = [fill_log(shop, HOSTING, 150, subject=f"day {n}", at=now - n * 86400) for n in (3, 2, 1)]
    with shop.connect() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
    found = list(export_rows.log_rows(shop, _window(hosting_id), page=64))
    assert [row["id"] for row in found] == sorted(inside[2], reverse=True) + sorted(inside[1], reverse=True) + sorted(
        inside[0], reverse=True
    )
    assert not set(old) & {row["id"] for row in found}
    narrow = _window(hosting_id, subject="nothing matches this")
    assert list(export_rows.log_rows(shop, narrow)) == []
    both = store_log.Filters(hosting_id=hosting_id, since=now - 2.5 * 86400, until=now - 1.5 * 86400)
    assert {row["subject"] for row in export_rows.log_rows(shop, both)} == {"day 2"}
    for unbounded in (store_log.Filters(hosting_id=hosting_id), store_log.Filters(hosting_id=hosting_id, since=now)):
        try:
            next(export_rows.log_rows(shop, unbounded))
        except ValueError as refused:
            assert "time window" in str(refused)
        else:
            raise AssertionError("an export without a window was read")


def test_on_sqlite_the_walk_goes_along_the_reception_index(shop: Engine) -> None:
    if shop.dialect.name != "sqlite":
        return
    from sqlalchemy import text

    from scriptmail.store import export_rows as module

    fill_log(shop, HOSTING, 10)
    with shop.connect() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
        query = module.page_query(_window(hosting_id, subject="x"), module.BOUNCE_STATUSES, 10, (time.time(), 5))
        compiled = query.compile(shop, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_messages_hosting_received" in plan, plan
