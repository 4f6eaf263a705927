"""A site's deferred count read from the store, on both stores: one grouped read on the partial
index of deferred recipients, a domain's site as delivery recorded it from its MX hosts."""

from __future__ import annotations

import time

from sqlalchemy import Engine, update

from scriptmail.model import Origin, Submission
from scriptmail.shaping.sites import Limits, Site, SiteTable
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue, site_deferred
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import recipients

TABLE = SiteTable(Limits(5, 50), {"named": Site("named", Limits(2, 10), domains=("named.example",))})


def _queue(engine: Engine, *addresses: str) -> None:
    with for_writing(engine).begin() as connection:
        hosting = hosting_store.add_hosting(connection, "site.test", "owner@site.test")
        queue.insert_submission(
            connection,
            Submission(hosting.id, "web@site.test", addresses, b"Subject: s\r\n\r\nb\r\n", Origin.SMTP, "127.0.0.1"),
            1.0,
        )


def test_deferred_recipients_are_counted_per_site_and_sites_not_busy_are_shown_too(engine: Engine) -> None:
    _queue(engine, "a@hosted.example", "b@hosted.example", "c@named.example", "d@alone.example", "e@queued.example")
    with for_writing(engine).begin() as connection:
        connection.execute(update(recipients).where(recipients.c.domain != "queued.example").values(status="deferred"))
        site_deferred.record(connection, [("hosted.example", "bigmail")], 100.0, keep=1000.0)
    with engine.connect() as connection:
        assert site_deferred.by_site(connection, TABLE, max_age=0) == {"bigmail": 2, "named": 1, "alone.example": 1}
        rows = {row["name"]: row for row in site_deferred.current_sites(connection, TABLE, time.time(), max_age=0)}
    assert rows["named"]["deferred"] == 1 and rows["named"]["limits"]["connections"] == 2 and rows["named"]["nodes"] == []
    # A domain not seen for longer than a recipient lives is forgotten with the next write.
    with for_writing(engine).begin() as connection:
        site_deferred.record(connection, [("other.example", "bigmail")], 2000.0, keep=1000.0)
    with engine.connect() as connection:
        assert site_deferred.by_site(connection, TABLE, max_age=0) == {"hosted.example": 2, "named": 1, "alone.example": 1}
        # Within the cache's few seconds, readers share the last answer.
        assert site_deferred.by_site(connection, TABLE) == {"hosted.example": 2, "named": 1, "alone.example": 1}


def test_the_count_reads_only_the_deferred_rows_of_the_partial_index(engine: Engine) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "EXPLAIN QUERY PLAN SELECT domain, count(*) FROM recipients INDEXED BY ix_recipients_deferred_domain WHERE status = 'deferred' GROUP BY domain"
            plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(query))
            assert "COVERING INDEX ix_recipients_deferred_domain" in plan, plan
        else:  # the planner picks by table size; with scans off it must be able to use the index
            connection.exec_driver_sql("SET enable_seqscan = off")
            query = "EXPLAIN SELECT domain, count(*) FROM recipients WHERE status = 'deferred' GROUP BY domain"
            plan = " ".join(str(row[0]) for row in connection.exec_driver_sql(query))
            assert "ix_recipients_deferred_domain" in plan, plan
