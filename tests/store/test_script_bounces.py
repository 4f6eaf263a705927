"""Bounces are counted against the script that sent the mail (script_counts.bounced), so the
"Scripts that send" page can show each script's bounce share (issue 5)."""

from __future__ import annotations

from sqlalchemy import Engine, select, text

from scriptmail.bounces.reports import Failure, Report
from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import activity, queue, stats
from scriptmail.store import hostings as hosting_store
from scriptmail.store.bounce_reports import apply_report
from scriptmail.store.engine import for_writing, open_engine
from scriptmail.store.migrate import upgrade
from scriptmail.store.schema import recipients

NOW = 1_800_000_000.0


def _hosting(engine: Engine, name: str) -> int:
    with for_writing(engine).begin() as connection:
        return hosting_store.add_hosting(connection, name, f"owner@{name}", plan="unlimited").id


def _send(engine: Engine, hosting_id: int, count: int, script: str = "", cwd: str = "") -> list[int]:
    """One message to `count` recipients; their recipient ids."""
    addresses = tuple(f"r{n}@sink.test" for n in range(count))
    with for_writing(engine).begin() as connection:
        (message_id,) = queue.insert_submissions(
            connection,
            [
                (
                    Submission(
                        hosting_id,
                        "web@site.test",
                        addresses,
                        b"Subject: s\r\n\r\nx\r\n",
                        Origin.SMTP,
                        "127.0.0.1",
                        script=script,
                        cwd=cwd,
                    ),
                    NOW,
                )
            ],
        )
        return list(connection.execute(select(recipients.c.id).where(recipients.c.message_id == message_id)).scalars())


def _bounced(engine: Engine, hosting_id: int) -> dict[str, tuple[int, int]]:
    with engine.connect() as connection:
        return {row["script"]: (row["recipients"], row["bounced"]) for row in stats.scripts(connection, hosting_id)}


def _dsn(address: str) -> Report:
    return Report("dsn", (Failure(address, "5.1.1", "failed", "550 5.1.1 user unknown", "mx.sink.test", 550),))


def test_bounces_are_counted_against_the_script_of_each_message(engine: Engine) -> None:
    shop, other = _hosting(engine, "shop.test"), _hosting(engine, "other.test")
    contact = _send(engine, shop, 4, script="contact.php")
    cron = _send(engine, shop, 2, cwd="/home/shop/cron")  # sendmail without PHP's header: its folder
    elsewhere = _send(engine, other, 3, script="contact.php")
    with for_writing(engine).begin() as connection:
        activity.count_script_bounces(connection, [*contact[:3], cron[0], elsewhere[0], contact[0]])  # a repeat counts once
    assert _bounced(engine, shop) == {"contact.php": (4, 3), "/home/shop/cron": (2, 1)}
    assert _bounced(engine, other) == {"contact.php": (3, 1)}
    with for_writing(engine).begin() as connection:
        activity.count_script_bounces(connection, [])  # nothing to do, no statement
        activity.count_script_bounces(connection, [10**9])  # a recipient pruned from the log meanwhile
    assert _bounced(engine, shop) == {"contact.php": (4, 3), "/home/shop/cron": (2, 1)}


def test_a_later_dsn_counts_against_the_script_once(engine: Engine) -> None:
    shop = _hosting(engine, "shop.test")
    first, _ = _send(engine, shop, 2, script="newsletter.php")
    with for_writing(engine).begin() as connection:
        claimed = queue.claim_due(connection, "node", 10, 600, NOW)
        queue.record_results(
            connection,
            "node",
            [AttemptResult(row.id, RecipientStatus.SENT, 250, "ok", "mx.sink.test", NOW, 0.1, None, shop) for row in claimed],
            NOW,
        )
    for expected in ("bounced", "already-final"):  # the same report twice changes nothing more
        with for_writing(engine).begin() as connection:
            applied = apply_report(connection, first, _dsn("r0@sink.test"), b"report", "mx.sink.test", NOW + 60)
        assert applied.outcome == expected
    assert _bounced(engine, shop) == {"newsletter.php": (2, 1)}
    with engine.connect() as connection:
        (row,) = stats.scripts(connection, shop)
    assert set(row) >= {"script", "messages", "recipients", "bounced", "last_at"}


def test_a_bounce_at_delivery_counts_against_the_script(engine: Engine) -> None:
    shop = _hosting(engine, "shop.test")
    _send(engine, shop, 3, script="contact.php")
    with for_writing(engine).begin() as connection:
        claimed = queue.claim_due(connection, "node", 10, 600, NOW)
        results = [
            AttemptResult(
                row.id,
                RecipientStatus.BOUNCED if n < 2 else RecipientStatus.SENT,
                550 if n < 2 else 250,
                "no such user" if n < 2 else "ok",
                "mx.sink.test",
                NOW,
                0.1,
                None,
                shop,
            )
            for n, row in enumerate(claimed)
        ]
        queue.record_results(connection, "node", results, NOW)
    assert _bounced(engine, shop) == {"contact.php": (3, 2)}


def test_the_migration_adds_the_column_with_zero_for_existing_scripts(database_url: str) -> None:
    engine = open_engine(database_url)
    try:
        upgrade(engine, "0006")
        with for_writing(engine).begin() as connection:  # the tables as 0006 left them: plain SQL
            connection.execute(text("INSERT INTO hostings (name, owner_email, created_at) VALUES ('old.test', 'o@old.test', 0)"))
            connection.execute(
                text(
                    "INSERT INTO script_counts (hosting_id, script, messages, recipients, last_at) "
                    "SELECT id, 'old.php', 5, 7, 0 FROM hostings WHERE name = 'old.test'"
                )
            )
        upgrade(engine)
        with engine.connect() as connection:
            hosting_id = connection.execute(text("SELECT id FROM hostings WHERE name = 'old.test'")).scalar()
        assert _bounced(engine, hosting_id) == {"old.php": (7, 0)}
    finally:
        engine.dispose()
