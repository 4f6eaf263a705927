"""A filtered page of a hosting's log reads a bounded window of recipients and says where the
next search goes on, so a filter that matches nothing costs no more than one that matches."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from scriptmail.model import Origin, RecipientStatus, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log, queue
from scriptmail.store.engine import for_writing


def _fill(engine: Engine) -> int:
    now = time.time()
    with for_writing(engine).begin() as connection:
        site = hosting_store.add_hosting(connection, "site.test", "owner@site.test", plan="unlimited").id
        other = hosting_store.add_hosting(connection, "other.test", "owner@other.test", plan="unlimited").id
        queue.insert_submissions(
            connection,
            [(Submission(hosting, "web@site.test", (f"{'rare' if n < 3 else 'common'}{n}@x.test",), b"Subject: s\r\n\r\nx\r\n", Origin.SMTP, "127.0.0.1"), now)
             for n in range(250) for hosting in (site, other)],
        )  # fmt: skip
    return site


def test_a_rare_match_is_found_window_after_window(engine: Engine) -> None:
    site = _fill(engine)
    filters = log.Filters(hosting_id=site, recipient="rare")
    found, before, searches = [], None, 0
    with engine.connect() as connection:
        while True:
            rows, resume = log.search(connection, filters, limit=10, before_id=before, window=100)
            searches += 1
            found += [row["recipient"] for row in rows]
            if resume is None:
                break
            assert not rows  # the window ended the page before it filled
            before = resume
    assert found == ["rare2@x.test", "rare1@x.test", "rare0@x.test"]  # newest first, none lost, none twice
    assert searches == 3  # 250 recipients of this hosting, 100 at a time


def test_unfiltered_and_full_pages_are_not_cut(engine: Engine) -> None:
    site = _fill(engine)
    with engine.connect() as connection:
        rows, resume = log.search(connection, log.Filters(hosting_id=site), limit=300, window=100)
        assert len(rows) == 250 and resume is None  # no filter: the index stops after `limit` rows anyway
        rows, resume = log.search(connection, log.Filters(hosting_id=site, status=RecipientStatus.QUEUED), limit=10, window=100)
        assert len(rows) == 10 and resume is None  # a full page goes on with its last row, as usual
        assert {row["hosting"] for row in rows} == {"site.test"}


def test_a_short_window_first_then_the_long_one(engine: Engine, monkeypatch) -> None:
    """Finding the long window's end costs a walk of its length: a page that fills within the
    short first window never pays for it, and one that does not goes on to the long one."""
    site = _fill(engine)
    monkeypatch.setattr(log, "FIRST_WINDOW", 10)
    with engine.connect() as connection:
        rows, resume = log.search(connection, log.Filters(hosting_id=site, recipient="common1"), limit=10, window=100)
    # The newest ten (common240–249) hold no "common1"; the newest hundred hold common150–199.
    assert [row["recipient"] for row in rows] == [f"common{n}@x.test" for n in range(199, 189, -1)]
    assert resume is None
