"""Counter rows are striped (schema._stripe): every reader must give the same answer whether a
hosting's counts sit in one row per key or are spread over every stripe, as concurrent writers on
PostgreSQL leave them."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select, text

from scriptmail.bounces.reports import Failure, Report
from scriptmail.config import PlanSettings
from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import activity, domains, operator_views, queue, report_data, stats
from scriptmail.store import hostings as hosting_store
from scriptmail.store.bounce_reports import apply_report
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import activity as activity_table
from scriptmail.store.schema import activity_daily, from_domains, hosting_totals, recipients, script_counts
from scriptmail.store.writer import STRIPE_LOCK, Writer
from scriptmail.web import metrics

PLAN = PlanSettings(hourly=0, max_per_day=5000, bounce_window=50)
UTC = ZoneInfo("UTC")
KEYS = {
    activity_table: ("hosting_id", "minute"),
    activity_daily: ("hosting_id", "day"),
    hosting_totals: ("hosting_id",),
    script_counts: ("hosting_id", "script"),
    from_domains: ("hosting_id", "domain"),
}


@contextlib.contextmanager
def _striped(engine: Engine, stripe: int) -> Iterator[Connection]:
    with for_writing(engine).begin() as connection:
        connection.info["stripe"] = stripe
        try:
            yield connection
        finally:
            connection.info.pop("stripe", None)


def _load(engine: Engine, now: float) -> list[int]:
    """A mixed day of two hostings, each transaction in a stripe of its own choosing."""
    chance = random.Random(12)
    with for_writing(engine).begin() as connection:
        ids = [hosting_store.add_hosting(connection, f"stripe{n}.test", f"o@stripe{n}.test", plan="unlimited").id for n in range(2)]
    for batch in range(24):
        at = now - (23 - batch) * 150  # an hour of minutes, some in the same one
        with _striped(engine, chance.randrange(activity.STRIPES)) as connection:
            queue.insert_submissions(
                connection,
                [
                    (Submission(ids[n % 2], "web@stripe.test", (f"r{batch}-{n}@x.test",), b"Subject: s\r\n\r\nx\r\n",
                                Origin.SMTP, "127.0.0.1", script=f"{n % 3}.php", from_domain=f"d{n % 2}.test",
                                dkim="signed" if n % 4 else ""), at)
                    for n in range(20)
                ],
            )  # fmt: skip
        with _striped(engine, chance.randrange(activity.STRIPES)) as connection:
            claimed = queue.claim_due(connection, "node", 100, 600, at)
            results = [
                AttemptResult(r.id, status := (RecipientStatus.BOUNCED if chance.random() < 0.3 else RecipientStatus.SENT),
                              550 if status is RecipientStatus.BOUNCED else 250, "reply", "mx", at, 0.1, None, r.hosting_id)
                for r in claimed
            ]  # fmt: skip
            queue.record_results(connection, "node", results, at)
    dsn = Report(kind="dsn", failures=(Failure("", "5.1.1", "failed", "user unknown", "mx", 550),))
    with for_writing(engine).connect() as reader:
        sent = reader.execute(select(recipients.c.id).where(recipients.c.status == "sent").limit(40)).scalars().all()
    for recipient_id in sent:
        with _striped(engine, chance.randrange(activity.STRIPES)) as connection:
            apply_report(connection, recipient_id, dsn, b"report", "mx", now)
    return ids


def _readings(engine: Engine, ids: list[int], now: float) -> dict:
    today = date.fromordinal(activity.day_of(now))
    with engine.connect() as connection:
        found: dict = {
            "hosting list": [
                (row["name"], row["sent_today"], row["last_hour"])
                for row in operator_views.hosting_list(connection, operator_views.HostingFilters(), now).rows
            ],
            "due reports": report_data.due(connection, [today]),
            "domains": domains.list_domains(connection),
            "signing": domains.signing_totals(connection),
            "metrics": {k: v for k, v in metrics.snapshot(connection).items() if k in ("totals", "accepted", "dkim")},
            "dispatched": activity.dispatched_since(connection, ids, activity.minute_of(now) - 120),
        }
        for hosting_id in ids:
            found[hosting_id] = {
                "counters": stats.counters(connection, hosting_id, PLAN, now),
                "status": stats.status_counts(connection, hosting_id),
                "daily": stats.daily_volumes(connection, hosting_id, now, days=3),
                "hourly": stats.hourly_volumes(connection, hosting_id, now, UTC, hours=3),
                "scripts": stats.scripts(connection, hosting_id),
                "day counts": report_data.day_counts(connection, hosting_id, today),
                "signals": activity.signals(connection, hosting_id, PLAN, now),
                "totals since": activity.totals_since(connection, hosting_id, activity.minute_of(now) - 120),
                "quota": activity.quota_room(connection, hosting_id, PLAN, now, UTC),
            }
    return found


def _fold(engine: Engine) -> None:
    """Every key's stripes added into stripe 0, as one writer alone would have left them."""
    with for_writing(engine).begin() as connection:
        for table, keys in KEYS.items():
            values = [c.name for c in table.columns if c.name not in (*keys, "stripe")]
            rows = connection.execute(activity.folded(table, *keys)).mappings().all()
            connection.execute(table.delete())
            if rows:
                connection.execute(table.insert(), [{**dict(row), "stripe": 0} for row in rows])
            assert set(values) <= set(rows[0]) if rows else True


def test_every_reader_sums_the_stripes(engine: Engine) -> None:
    now = time.time()
    ids = _load(engine, now)
    with engine.connect() as connection:
        for table, keys in KEYS.items():
            spread = connection.execute(
                select(func.count()).select_from(select(*(table.c[k] for k in keys)).group_by(*(table.c[k] for k in keys))
                                                 .having(func.count() > 1).subquery())
            ).scalar_one()  # fmt: skip
            assert spread, f"{table.name}: the load left no key in several stripes, so this test would prove nothing"
    striped = _readings(engine, ids, now)
    for hosting_id in ids:
        figures = [*striped[hosting_id]["counters"].values(), *striped[hosting_id]["day counts"].values(),
                   *(v for row in striped[hosting_id]["daily"] for k, v in row.items() if k != "date")]  # fmt: skip
        assert all(type(value) is int for value in figures), figures
    assert all(type(row[1]) is int for row in striped["hosting list"])
    _fold(engine)
    assert _readings(engine, ids, now) == striped
    # And the figures are the log's, not only self-consistent.
    with engine.connect() as connection:
        for hosting_id in ids:
            sent = connection.execute(
                select(func.count()).where(recipients.c.hosting_id == hosting_id, recipients.c.status == "sent")
            ).scalar_one()
            assert striped[hosting_id]["counters"]["sent"] == sent
            assert sum(row["messages"] for row in striped[hosting_id]["scripts"]) == 240


def test_each_postgresql_writer_adds_to_a_stripe_no_other_writer_holds(engine: Engine) -> None:
    """SQLite has one writer and stays in stripe 0. On PostgreSQL each writer connection holds a
    stripe of its own for its life: with all but two stripes held elsewhere (by other processes'
    writers, say) every count lands in those two; with every stripe held, the writer still commits,
    sharing one."""
    with for_writing(engine).begin() as connection:
        hosting_id = hosting_store.add_hosting(connection, "spread.test", "o@spread.test", plan="unlimited").id

    def used() -> set[int]:
        with engine.connect() as connection:
            found = set(connection.execute(select(hosting_totals.c.stripe).where(hosting_totals.c.hosting_id == hosting_id)).scalars())
            found |= set(connection.execute(select(activity_table.c.stripe).where(activity_table.c.hosting_id == hosting_id)).scalars())
            return found | set(connection.execute(select(script_counts.c.stripe).where(script_counts.c.hosting_id == hosting_id)).scalars())

    def write(first: int) -> None:
        writer = Writer(engine)
        writer.start()
        try:
            for n in range(first, first + 20):
                submission = Submission(hosting_id, "web@spread.test", (f"r{n}@x.test",), b"Subject: s\r\n\r\nx\r\n", Origin.SMTP, "127.0.0.1")
                writer.submit_nowait(lambda c, s=submission: queue.insert_submissions(c, [(s, time.time())])).result(10)
        finally:
            writer.stop()

    def hold(holder: Connection, stripes) -> None:
        for stripe in stripes:
            holder.execute(text("SELECT pg_advisory_lock(:key, :stripe)"), {"key": STRIPE_LOCK, "stripe": stripe})
        holder.commit()

    if engine.dialect.name == "postgresql":
        with engine.connect() as holder:
            hold(holder, range(activity.STRIPES - 2))
            write(0)
            assert used() <= {activity.STRIPES - 2, activity.STRIPES - 1}, used()
            hold(holder, range(activity.STRIPES - 2, activity.STRIPES))
            write(20)  # every stripe held: the writer shares one and still commits
    else:
        write(0)
        write(20)
        assert used() == {0}
    with engine.connect() as connection:
        accepted = connection.execute(select(func.sum(activity_table.c.accepted)).where(activity_table.c.hosting_id == hosting_id)).scalar()
        assert connection.execute(text("SELECT 1")).scalar() == 1
    assert accepted == 40
