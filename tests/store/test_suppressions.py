"""The suppression lists in the store, on both stores: bounces fill them in the same transaction,
a claim leaves suppressed addresses unattempted, entries expire, and removal can re-queue."""

from __future__ import annotations

from sqlalchemy import Engine, select

from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import activity, queue, suppressions
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import bodies, notice_events, recipients
from scriptmail.store.suppressions import PLATFORM

DAY = 86400.0


def _hosting(engine: Engine) -> int:
    with for_writing(engine).begin() as connection:
        found = hosting_store.find_hosting(connection, name="site.test")
        return (found or hosting_store.add_hosting(connection, "site.test", "owner@site.test")).id


def _submit(engine: Engine, *addresses: str, now: float) -> int:
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        return queue.insert_submission(
            connection, Submission(hosting_id, "web@site.test", addresses, b"Subject: s\r\n\r\nb\r\n", Origin.SMTP, "127.0.0.1"), now
        )


def _claim(engine: Engine, now: float, lease: float = 60):
    with for_writing(engine).begin() as connection:
        return queue.claim_due(connection, "node", 100, lease, now)


def _bounce(engine: Engine, claimed, now: float, text: str = "5.1.1 user unknown", code: int = 550) -> None:
    with for_writing(engine).begin() as connection:
        queue.record_results(
            connection, "node",
            [AttemptResult(r.id, RecipientStatus.BOUNCED, code, text, "mx", now, 0.1, hosting_id=r.hosting_id) for r in claimed],
            now, suppression_days=30,
        )  # fmt: skip


def _statuses(engine: Engine, message_id: int) -> dict[str, tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(recipients.c.address, recipients.c.status, recipients.c.last_text).where(recipients.c.message_id == message_id)
        )
        return {row.address: (row.status, row.last_text) for row in rows}


def test_an_unknown_user_is_suppressed_for_30_days_and_never_attempted_meanwhile(engine: Engine) -> None:
    _submit(engine, "gone@x.test", "here@x.test", now=1000.0)
    claimed = _claim(engine, 1000.0, lease=3600 * 24)
    _bounce(engine, [r for r in claimed if r.address == "gone@x.test"], 1001.0)
    hosting_id = _hosting(engine)
    with engine.connect() as connection:
        (entry,) = suppressions.entries(connection, hosting_id, 1002.0)
    assert (entry["value"], entry["reason"], entry["code"]) == ("gone@x.test", "no-such-user", 550)
    assert entry["reply"] == "5.1.1 user unknown" and entry["expires_at"] == 1001.0 + 30 * DAY

    second = _submit(engine, "Gone@x.test", "here@x.test", now=2000.0)
    claimed = _claim(engine, 2000.0)
    assert [r.address for r in claimed] == ["here@x.test"]  # the suppressed one never reaches delivery
    status, text = _statuses(engine, second)["Gone@x.test"]
    assert status == "suppressed" and "suppression list" in text and "no-such-user" in text
    with engine.connect() as connection:
        assert activity.totals_since(connection, hosting_id, 0)["suppressed"] == 1
        # Its first bounce was notified already: no second notice for the suppressed mail.
        assert [e.action for e in connection.execute(select(notice_events))] == ["failed"]

    # After 30 days the entry has expired: the address is tried again.
    _submit(engine, "gone@x.test", now=1001.0 + 30 * DAY + 1)
    assert "gone@x.test" in [r.address for r in _claim(engine, 1001.0 + 30 * DAY + 1)]


def test_two_permanent_failures_within_a_day_suppress_whatever_the_reason(engine: Engine) -> None:
    _submit(engine, "strict@x.test", now=1000.0)
    _bounce(engine, _claim(engine, 1000.0), 1000.0, "5.7.1 refused by policy", 554)
    with engine.connect() as connection:
        assert suppressions.entries(connection, _hosting(engine), 1001.0) == []
    _submit(engine, "strict@x.test", now=5000.0)
    _bounce(engine, _claim(engine, 5000.0), 5000.0, "5.7.1 refused by policy", 554)
    with engine.connect() as connection:
        (entry,) = suppressions.entries(connection, _hosting(engine), 5001.0)
    assert entry["reason"] == "repeated-failure"


def test_the_platform_list_stops_domains_and_patterns_for_every_hosting(engine: Engine) -> None:
    with for_writing(engine).begin() as connection:
        suppressions.add(connection, PLATFORM, "*@spamtrap.example", 900.0, None)
        suppressions.add(connection, PLATFORM, "dead.example", 900.0, None)
    message = _submit(engine, "a@spamtrap.example", "b@dead.example", "c@alive.example", now=1000.0)
    assert [r.address for r in _claim(engine, 1000.0)] == ["c@alive.example"]
    statuses = _statuses(engine, message)
    assert statuses["a@spamtrap.example"][0] == statuses["b@dead.example"][0] == "suppressed"
    with engine.connect() as connection:
        # A manual entry's first stopped mail is notified to its sender, once per entry.
        assert len(connection.execute(select(notice_events)).all()) == 2


def test_removing_an_entry_with_requeue_sends_the_mail_suppressed_in_the_last_72_hours(engine: Engine) -> None:
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        suppressions.add(connection, hosting_id, "back@x.test", 900.0, 30)
    old = _submit(engine, "back@x.test", now=1000.0)
    _claim(engine, 1000.0)
    recent = _submit(engine, "back@x.test", now=1000.0 + 71 * 3600)
    _claim(engine, 1000.0 + 71 * 3600)
    with engine.connect() as connection:
        assert len(connection.execute(select(bodies)).all()) == 2  # kept for the window
    now = 1000.0 + 73 * 3600
    with for_writing(engine).begin() as connection:
        queue.free_suppressed_bodies(connection, now)  # the first one's window is over
        removed = suppressions.remove(connection, hosting_id, "BACK@x.test", now, requeue=True)
    assert (removed.found, removed.requeued) == (True, 1)
    assert _statuses(engine, old)["back@x.test"][0] == "suppressed"
    assert _statuses(engine, recent)["back@x.test"][0] == "queued"
    assert [r.address for r in _claim(engine, now)] == ["back@x.test"]
    with for_writing(engine).begin() as connection:
        assert suppressions.remove(connection, hosting_id, "back@x.test", now) == suppressions.Removed(False, 0)


def test_search_is_a_plain_substring_whatever_it_contains(engine: Engine) -> None:
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        suppressions.add_many(connection, hosting_id, [("a_b@x.test", ""), ("axb@x.test", ""), ("c%d@x.test", "")], 900.0, 30)
    with engine.connect() as connection:
        assert [e["value"] for e in suppressions.entries(connection, hosting_id, 1000.0, search="a_b")] == ["a_b@x.test"]
        assert [e["value"] for e in suppressions.entries(connection, hosting_id, 1000.0, search="%")] == ["c%d@x.test"]
        assert suppressions.entries(connection, hosting_id, 1000.0, search="' OR 1=1 --") == []
        page = suppressions.entries(connection, hosting_id, 1000.0, limit=2)
        assert [e["value"] for e in suppressions.entries(connection, hosting_id, 1000.0, after=page[-1]["value"])] == ["c%d@x.test"]


def test_control_characters_in_a_search_or_a_removal_match_nothing(engine: Engine) -> None:
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        suppressions.add(connection, hosting_id, "a@x.test", 900.0, 30)
        assert suppressions.remove(connection, hosting_id, "a@x.test\x00", 1000.0) == suppressions.Removed(False, 0)
    with engine.connect() as connection:
        assert suppressions.entries(connection, hosting_id, 1000.0, search="\x00") == []
        assert suppressions.entries(connection, hosting_id, 1000.0, after="a\x00") == []
        assert len(suppressions.entries(connection, hosting_id, 1000.0)) == 1


def test_entries_typed_in_unicode_or_punycode_stop_the_same_mail_and_are_found_and_removed_either_way(engine: Engine) -> None:
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        suppressions.add(connection, hosting_id, "josé@correo.españa.es", 900.0, 30)  # the customer's list, in Unicode
        suppressions.add(connection, PLATFORM, "XN--BCHER-KVA.de", 900.0, None)  # the platform's, in punycode
        suppressions.add_many(connection, PLATFORM, [("trap-*@müller.example", "traps")], 900.0, None)  # as a CSV import does
    with engine.connect() as connection:
        assert {e["value"] for e in suppressions.entries(connection, hosting_id, 1000.0)} == {"josé@correo.xn--espaa-rta.es"}
        assert {e["value"] for e in suppressions.entries(connection, PLATFORM, 1000.0)} == {"xn--bcher-kva.de", "trap-*@xn--mller-kva.example"}
        # A search typed in Unicode finds the A-label, a search in punycode too.
        assert [e["value"] for e in suppressions.entries(connection, hosting_id, 1000.0, search="españa")] == ["josé@correo.xn--espaa-rta.es"]
        assert [e["value"] for e in suppressions.entries(connection, PLATFORM, 1000.0, search="bücher.de")] == ["xn--bcher-kva.de"]
        assert [e["value"] for e in suppressions.entries(connection, PLATFORM, 1000.0, search="xn--bcher")] == ["xn--bcher-kva.de"]

    # Intake stores A-labels; an address given in Unicode (an older row, a direct insert) matches as well.
    message = _submit(
        engine, "josé@correo.xn--espaa-rta.es", "JOSÉ@correo.españa.es", "a@bücher.de", "b@xn--bcher-kva.de",
        "trap-9@xn--mller-kva.example", "ok@x.test", now=1000.0,
    )  # fmt: skip
    assert [r.address for r in _claim(engine, 1000.0)] == ["ok@x.test"]
    statuses = _statuses(engine, message)
    assert {address for address, (status, _) in statuses.items() if status == "suppressed"} == set(statuses) - {"ok@x.test"}

    with for_writing(engine).begin() as connection:
        removed = suppressions.remove(connection, hosting_id, "José@Correo.xn--espaa-rta.es", 1001.0, requeue=True)
        assert removed.found and removed.requeued == 1  # the A-label row; the Unicode one is not the same spelling
        assert suppressions.remove(connection, PLATFORM, "bücher.de", 1001.0).found
        assert suppressions.remove(connection, PLATFORM, "trap-*@müller.example", 1001.0).found
    with engine.connect() as connection:
        assert suppressions.entries(connection, PLATFORM, 1001.0) == [] == suppressions.entries(connection, hosting_id, 1001.0)


def test_requeue_matches_a_non_ascii_upper_case_local_part_on_both_stores(engine: Engine) -> None:
    """SQLite's own lower() leaves É as it is; the store's lower() folds it as PostgreSQL does."""
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        suppressions.add(connection, hosting_id, "josé@x.test", 900.0, 30)
    message = _submit(engine, "JOSÉ@x.test", now=1000.0)
    _claim(engine, 1000.0)
    assert _statuses(engine, message)["JOSÉ@x.test"][0] == "suppressed"
    with for_writing(engine).begin() as connection:
        removed = suppressions.remove(connection, hosting_id, "JOSÉ@x.test", 1001.0, requeue=True)
    assert (removed.found, removed.requeued) == (True, 1)
    assert _statuses(engine, message)["JOSÉ@x.test"][0] == "queued"


def test_a_pattern_stored_before_the_width_guard_is_not_applied_and_is_shown_refused(engine: Engine) -> None:
    from scriptmail.doctor.checks import WARNING, check_suppression_patterns
    from scriptmail.store.schema import suppressions as table
    from scriptmail.suppression import csvfile

    with for_writing(engine).begin() as connection:
        suppressions.add(connection, PLATFORM, "*@spamtrap.example", 900.0, None)
        # As an older version (or a hand-written INSERT) left it: the guard refuses it today.
        connection.execute(table.insert().values(scope=PLATFORM, value="*@*", kind="pattern", reason="manual", created_at=900.0))
    message = _submit(engine, "a@spamtrap.example", "anyone@example.org", now=1000.0)
    assert [r.address for r in _claim(engine, 1000.0)] == ["anyone@example.org"]  # *@* stopped nothing
    assert _statuses(engine, message)["a@spamtrap.example"][0] == "suppressed"
    with engine.connect() as connection:
        rows = {row["value"]: row for row in suppressions.entries(connection, PLATFORM, 1000.0)}
        refused = suppressions.refused_patterns(connection, 1000.0)
    assert rows["*@spamtrap.example"]["refused"] == ""
    assert "would match too widely" in rows["*@*"]["refused"]
    assert refused == [("*@*", rows["*@*"]["refused"])]
    exported = csvfile.render(rows.values()).splitlines()
    assert exported[1].startswith("*@*,manual,not applied: it would match too widely: the domain must end in a name")
    assert exported[2] == "*@spamtrap.example,manual"
    assert csvfile.parse("\n".join(exported), allow_patterns=True).items == [
        ("*@spamtrap.example", "manual")
    ]  # refused again on import
    (finding,) = check_suppression_patterns(refused)
    assert finding.status == WARNING and "'*@*' is not applied" in finding.message
