#!/usr/bin/env python3
"""Counters benchmark: how fast a hosting's counters, volumes, bounces and scripts are read when
its log holds many recipients (issue 4: milliseconds, not a scan; issue 5: the customer page and
the API under 150 ms p95 with 1,000,000 logged recipients).

Fills a fresh store with one busy hosting (N recipients over 30 days, 5 % of them bounced, from a
handful of scripts) plus a small one, then times each read of `store/stats.py` many times. Prints a
table and, as its last line, one JSON object. It reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import PG_ADMIN_URL, PostgresDatabase, emit_json, log, percentile  # noqa: E402


def fill(database_url: str, count: int, per_message: int) -> float:
    from sqlalchemy import text

    from scriptmail.model import Origin, Submission
    from scriptmail.store import activity, hostings, queue
    from scriptmail.store.engine import for_writing, open_engine
    from scriptmail.store.migrate import upgrade

    began = time.monotonic()
    engine = open_engine(database_url)
    upgrade(engine)
    now = time.time()
    chance = random.Random(1)
    try:
        with for_writing(engine).begin() as connection:
            busy = hostings.add_hosting(connection, "busy.example", "owner@busy.example", plan="unlimited").id
            hostings.add_hosting(connection, "small.example", "owner@small.example", plan="unlimited")
        data = b"Subject: order confirmation\r\n\r\n" + b"x" * 1000 + b"\r\n"
        scripts = [f"1000:{name}.php" for name in ("checkout", "contact", "forgot", "newsletter", "cron")]
        chunk = 20_000
        for start in range(0, count, chunk):
            items = []
            for first in range(start, min(start + chunk, count), per_message):
                at = now - chance.random() * 30 * 86400
                recipients = tuple(f"r{n}@far{n % 50}.test" for n in range(first, min(first + per_message, count)))
                items.append((Submission(busy, "web@busy.example", recipients, data, Origin.SENDMAIL, "uid:1", subject="order",
                                         script=chance.choice(scripts)), at))  # fmt: skip
            with for_writing(engine).begin() as connection:
                queue.insert_submissions(connection, items)
            log(f"{min(start + chunk, count)} recipients written")
        # Delivered: 95 % sent, 5 % bounced, each a little after it arrived; bodies gone.
        with for_writing(engine).begin() as connection:
            connection.execute(text(
                "UPDATE recipients SET status = CASE WHEN id % 20 = 0 THEN 'bounced' ELSE 'sent' END, "
                "attempts = 1, last_code = CASE WHEN id % 20 = 0 THEN 550 ELSE 250 END, "
                "last_text = CASE WHEN id % 20 = 0 THEN '5.1.1 user unknown' ELSE '2.0.0 ok' END, "
                "updated_at = queued_at + 2, next_attempt_at = queued_at + 2"
            ))  # fmt: skip
            connection.execute(text("DELETE FROM bodies"))
            rows = connection.execute(text(
                "SELECT hosting_id, CAST(updated_at / 60 AS INTEGER) AS minute, "
                "SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), SUM(CASE WHEN status = 'bounced' THEN 1 ELSE 0 END) "
                "FROM recipients GROUP BY hosting_id, CAST(updated_at / 60 AS INTEGER)"
            )).all()  # fmt: skip
            activity.bump(connection, [(h, m * 60.0, {"dispatched": s + b, "sent": s, "bounced": b}) for h, m, s, b in rows])
        if engine.dialect.name == "postgresql":
            # What autovacuum does soon after a bulk load in production: fresh planner statistics.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return time.monotonic() - began


def measure(database_url: str, rounds: int) -> dict[str, dict[str, float]]:
    from zoneinfo import ZoneInfo

    from scriptmail.config import PlanSettings
    from scriptmail.store import stats
    from scriptmail.store.engine import open_engine

    engine = open_engine(database_url)
    plan, zone = PlanSettings(max_per_day=5000), ZoneInfo("UTC")
    reads = {
        "counters": lambda c, now: stats.counters(c, 1, plan, now),
        "status_counts": lambda c, now: stats.status_counts(c, 1),
        "daily_volumes_30d": lambda c, now: stats.daily_volumes(c, 1, now),
        "hourly_volumes_48h": lambda c, now: stats.hourly_volumes(c, 1, now, zone),
        "bounces_100": lambda c, now: stats.bounces(c, 1, limit=100),
        "bounces_offset_5000": lambda c, now: stats.bounces(c, 1, limit=100, offset=5000),
        "scripts": lambda c, now: stats.scripts(c, 1),
    }
    figures = {}
    try:
        with engine.connect() as connection:
            for name, read in reads.items():
                samples = []
                for _ in range(rounds):
                    began = time.perf_counter()
                    read(connection, time.time())
                    samples.append(time.perf_counter() - began)
                figures[name] = {
                    "p50_ms": round(percentile(samples, 50) * 1000, 2),
                    "p95_ms": round(percentile(samples, 95) * 1000, 2),
                    "max_ms": round(max(samples) * 1000, 2),
                }
    finally:
        engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--per-message", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="scriptmail-stats-"))
    database = PostgresDatabase(args.pg_admin_url) if args.store == "postgresql" else None
    try:
        url = database.create() if database else f"sqlite:///{workdir / 'stats.db'}"
        fill_seconds = fill(url, args.recipients, args.per_message)
        figures = measure(url, args.rounds)
    finally:
        if database is not None:
            database.drop()
    result = {"store": args.store, "recipients": args.recipients, "fill_seconds": round(fill_seconds, 1), "reads": figures}
    print(f"store {args.store}, one hosting with {args.recipients} logged recipients:")
    for name, values in figures.items():
        print(f"  {name:<20} p50 {values['p50_ms']:>8} ms   p95 {values['p95_ms']:>8} ms   max {values['max_ms']:>8} ms")
    emit_json(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
