"""Log retention: old finished recipients go, in batches; waiting mail and recent rows stay."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue
from scriptmail.store.engine import for_writing
from scriptmail.store.retention import prune_log
from scriptmail.store.schema import attempts, bodies, hosting_totals, messages, recipients

DAY = 86400.0


def _count(engine: Engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_old_finished_recipients_leave_the_log_and_the_rest_stays(engine: Engine) -> None:
    with for_writing(engine).begin() as connection:
        hosting = hosting_store.add_hosting(connection, "site.test", "owner@site.test", plan="unlimited")
        old = [(Submission(hosting.id, "w@site.test", (f"o{n}@x.test",), b"Subject: s\r\n\r\nx\r\n", Origin.SMTP, "c"), 1000.0) for n in range(5)]
        mixed = (Submission(hosting.id, "w@site.test", ("done@x.test", "waiting@x.test"), b"Subject: s\r\n\r\nx\r\n", Origin.SMTP, "c"), 1000.0)
        queue.insert_submissions(connection, [*old, mixed])
        claimed = queue.claim_due(connection, "n", 100, 60, 1000.0)
        finished = [r for r in claimed if r.address != "waiting@x.test"]
        queue.record_results(
            connection, "n", [AttemptResult(r.id, RecipientStatus.SENT, 250, "ok", "mx", 1000.0, 0.1, None, hosting.id) for r in finished], 1000.0
        )
        connection.execute(recipients.update().where(recipients.c.address == "waiting@x.test").values(status="deferred", lease_owner=None))
        queue.insert_submissions(connection, [(Submission(hosting.id, "w@site.test", ("new@x.test",), b"x", Origin.SMTP, "c"), 100 * DAY)])
    assert _count(engine, messages) == 7

    with for_writing(engine).begin() as connection:
        assert prune_log(connection, before=90 * DAY, limit=4) == 4  # a batch at a time
    with for_writing(engine).begin() as connection:
        assert prune_log(connection, before=90 * DAY, limit=4) == 2
        assert prune_log(connection, before=90 * DAY, limit=4) == 0
    with engine.connect() as connection:
        left = sorted(connection.execute(select(recipients.c.address)).scalars())
        assert left == ["new@x.test", "waiting@x.test"]
        assert connection.execute(select(hosting_totals.c.sent)).scalar() == 6  # since creation: kept
    assert _count(engine, messages) == 2  # the mixed message stays for its waiting recipient
    assert _count(engine, attempts) == 0
    assert _count(engine, bodies) == 2
