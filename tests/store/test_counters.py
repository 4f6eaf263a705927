"""The summary counters equal the log after a mixed load of 10,000 recipients (issue 4)."""

from __future__ import annotations

import random
import time
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from scriptmail.bounces.reports import Failure, Report
from scriptmail.config import PlanSettings
from scriptmail.control.states import Action, Actor
from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue, stats
from scriptmail.store.bounce_reports import apply_report
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state, expire_held, purge_batch
from scriptmail.store.schema import recipients

PLAN = PlanSettings(hourly=0, max_per_day=5000)


def _log_counts(engine: Engine, hosting_id: int) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                select(recipients.c.status, func.count())
                .where(recipients.c.hosting_id == hosting_id)
                .group_by(recipients.c.status)
            ).all()
        )


def test_counters_equal_the_log_after_a_mixed_load(engine: Engine) -> None:
    chance = random.Random(4)
    now = time.time()
    with for_writing(engine).begin() as connection:
        ids = [
            hosting_store.add_hosting(connection, f"site{n}.test", f"owner@site{n}.test", plan="unlimited").id for n in range(2)
        ]
    for start in range(0, 10_000, 1000):
        with for_writing(engine).begin() as connection:
            queue.insert_submissions(
                connection,
                [
                    (
                        Submission(
                            ids[n % 2],
                            "web@site.test",
                            (f"r{start + n}@x.test",),
                            b"Subject: s\r\n\r\nx\r\n",
                            Origin.SMTP,
                            "127.0.0.1",
                            script=f"{n % 3}.php",
                        ),
                        now,
                    )  # fmt: skip
                    for n in range(1000)
                ],
            )
    # Deliver: most are sent, some bounce, some are deferred, a few expire.
    while True:
        with for_writing(engine).begin() as connection:
            claimed = queue.claim_due(connection, "node", 2000, 600, now)
            if not claimed:
                break
            outcome = {0: RecipientStatus.BOUNCED, 1: RecipientStatus.DEFERRED, 2: RecipientStatus.EXPIRED}
            results = [
                AttemptResult(
                    r.id,
                    status := outcome.get(chance.randrange(10), RecipientStatus.SENT),
                    550 if status is RecipientStatus.BOUNCED else 250,
                    "reply",
                    "mx",
                    now,
                    0.1,
                    now + 10**6 if status is RecipientStatus.DEFERRED else None,
                    r.hosting_id,
                )  # fmt: skip
                for r in claimed
            ]
            queue.record_results(connection, "node", results, now)
    # The first hosting is blocked: its deferred mail is held; some of it expires, the rest is purged.
    with for_writing(engine).begin() as connection:
        change_state(connection, "site0.test", Action.BLOCK, Actor.CUSTOMER, now)
        connection.execute(
            recipients.update().where(recipients.c.hosting_id == ids[0], recipients.c.status == "held", recipients.c.id % 2 == 0)
            .values(held_at=now - 10**6)
        )  # fmt: skip
        expire_held(connection, now - 3600, now)
        change_state(connection, "site0.test", Action.PURGE, Actor.CUSTOMER, now + 1)
        while purge_batch(connection, "site0.test", now + 2):
            pass
    # Later reports: some sent recipients bounce after all.
    with for_writing(engine).begin() as connection:
        sent = connection.execute(select(recipients.c.id).where(recipients.c.status == "sent").limit(300)).scalars().all()
        dsn = Report(kind="dsn", failures=(Failure("", "5.1.1", "failed", "user unknown", "mx", 550),))
        for recipient_id in sent:
            apply_report(connection, recipient_id, dsn, b"report", "mx", now)
        apply_report(connection, sent[0], dsn, b"report", "mx", now)  # the same report twice counts once

    with engine.connect() as connection:
        for hosting_id in ids:
            log = _log_counts(engine, hosting_id)
            counters = stats.counters(connection, hosting_id, PLAN, now)
            assert counters["sent"] == log.get("sent", 0)
            assert counters["bounce"] == log.get("bounced", 0) + log.get("expired", 0)
            assert counters["maxPerDay"] == 5000
            assert {k: v for k, v in stats.status_counts(connection, hosting_id).items() if v} == log
            scripts = stats.scripts(connection, hosting_id)
            assert sum(row["messages"] for row in scripts) == 5000 and len(scripts) == 3
        assert sum(_log_counts(engine, h).get("purged", 0) for h in ids) > 0
        assert sum(_log_counts(engine, h).get("expired", 0) for h in ids) > 0


def test_held_recipients_are_counted_per_day_and_hour(engine: Engine) -> None:
    """The volume charts' "put on hold": held at intake for a blocked hosting, and held when a
    hosting with waiting mail is blocked; not for the other hosting, which sends."""
    now = time.time()
    with for_writing(engine).begin() as connection:
        held_site, open_site = (
            hosting_store.add_hosting(connection, f"{n}.test", f"owner@{n}.test", plan="unlimited").id for n in ("held", "open")
        )

    def submit(count: int) -> None:
        with for_writing(engine).begin() as connection:
            queue.insert_submissions(
                connection,
                [(Submission(site, "web@site.test", tuple(f"r{n}@x.test" for n in range(count)), b"Subject: s\r\n\r\nx\r\n", Origin.SMTP, "127.0.0.1"), now)
                 for site in (held_site, open_site)],
            )  # fmt: skip

    submit(3)  # waiting in the queue of both
    with for_writing(engine).begin() as connection:
        change = change_state(connection, "held.test", Action.BLOCK, Actor.CUSTOMER, now)
    assert change.held == 3
    submit(2)  # held from the start for the blocked one
    with engine.connect() as connection:
        today = stats.daily_volumes(connection, held_site, now)[-1]
        this_hour = stats.hourly_volumes(connection, held_site, now, ZoneInfo("UTC"))[-1]
        other = stats.daily_volumes(connection, open_site, now)[-1]
    assert today["held"] == 5 and this_hour["held"] == 5
    assert other["held"] == 0
