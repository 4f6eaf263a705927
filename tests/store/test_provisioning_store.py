"""The provisioning API's store parts on both backends: the audit log, remembered idempotent
answers (and their expiry), and deleting a hosting while keeping its log."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from scriptmail.model import HostingState, Origin, Submission
from scriptmail.store import audit, idempotency, provisioning, queue
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log as store_log
from scriptmail.store.engine import for_writing


def test_the_audit_log_keeps_who_what_and_the_object_before_and_after(engine: Engine) -> None:
    with for_writing(engine).begin() as connection:
        audit.record(connection, audit.Actor.token(7, "ops@example.net"), "hosting.update", "shop.example", 10.0,
                     before={"plan": "pro"}, after={"plan": "starter", "note": "ünïcode"}, hosting="shop.example")  # fmt: skip
        audit.record(connection, audit.CLI, "token.revoke", "3", 11.0)
    with engine.connect() as connection:
        rows, total = audit.entries(connection)
        assert total == 2 and [row["action"] for row in rows] == ["token.revoke", "hosting.update"]
        assert rows[1] | {"id": 0} == {
            "id": 0, "at": 10.0, "token_id": 7, "actor": "token 7 (ops@example.net)", "action": "hosting.update",
            "target": "shop.example", "before": {"plan": "pro"}, "after": {"plan": "starter", "note": "ünïcode"},
            "hosting": "shop.example", "by_operator": True,
        }  # fmt: skip
        assert audit.entries(connection, token_id=7)[1] == 1 and audit.entries(connection, target="3")[0][0]["actor"] == "cli"
        assert [row["action"] for row in audit.entries(connection, hosting="shop.example")[0]] == ["hosting.update"]


def test_the_audit_log_keeps_hostile_labels_on_one_line_and_long_values_short(engine: Engine) -> None:
    """A label is shown on one line of a page or a terminal: control characters are written out;
    a value a customer typed is kept, cut to a bounded length, and never read back as markup."""
    hostile = "evil\r\nX-Injected: yes\x1b[31m\x00" + "é" * 2000
    with for_writing(engine).begin() as connection:
        audit.record(connection, audit.Actor.user(hostile), "webhook.create", hostile, 5.0,
                     after={"url": "https://x.example/" + "a" * 5000, "note": "<b>\x07</b>"}, hosting="shop.example")  # fmt: skip
    with engine.connect() as connection:
        (row,), total = audit.entries(connection, hosting="shop.example")
        assert audit.entries(connection, hosting="other.example")[1] == 0
    assert total == 1 and row["by_operator"] is False
    assert row["actor"].startswith("user evil\\x0d\\x0aX-Injected: yes\\x1b[31m\\x00é")
    assert len(row["actor"]) == audit.MAX_TEXT and row["actor"].endswith("…") and len(row["target"]) == audit.MAX_TEXT
    assert not any(ord(c) < 32 for c in row["actor"] + row["target"])
    assert len(row["after"]["url"]) == audit.MAX_DETAIL and row["after"]["note"] == "<b>\x07</b>"


def test_an_idempotent_answer_is_kept_for_a_day_per_token(engine: Engine) -> None:
    fingerprint = idempotency.request_hash({"name": "a.example", "owner": "o@a.example"})
    assert fingerprint == idempotency.request_hash({"owner": "o@a.example", "name": "a.example"})  # order does not matter
    with for_writing(engine).begin() as connection:
        idempotency.remember(connection, 1, "order-1", fingerprint, 201, {"name": "a.example"}, 1000.0)
    with engine.connect() as connection:
        stored = idempotency.find(connection, 1, "order-1", 1000.0 + 3600)
        assert (stored.request_hash, stored.status, stored.body) == (fingerprint, 201, {"name": "a.example"})
        assert idempotency.find(connection, 2, "order-1", 1000.0) is None  # another token's key is another key
        assert idempotency.find(connection, 1, "order-1", 1000.0 + 2 * 86400) is None
    with for_writing(engine).begin() as connection:
        assert idempotency.prune(connection, 1000.0 + 2 * 86400) == 1
        idempotency.remember(connection, 1, "order-1", "other", 201, {}, 1000.0 + 2 * 86400)  # the key is free again


@pytest.mark.parametrize("purge", [False, True])
def test_deleting_keeps_the_log_under_a_name_no_hosting_can_take(engine: Engine, purge: bool) -> None:
    with for_writing(engine).begin() as connection:
        hosting = hosting_store.add_hosting(connection, "site.test", "o@site.test", uid=1234, smtp_password="a long password")
        queue.insert_submissions(connection, [(Submission(hosting.id, "w@site.test", ("r@x.test",), b"Subject: s\r\n\r\nx", Origin.SMTP, "c"), 5.0)])
    with for_writing(engine).begin() as connection:
        if not purge:
            with pytest.raises(provisioning.HostingBusy, match="purge=true"):
                provisioning.delete_hosting(connection, "site.test", 10.0)
            return
        tombstone, purged = provisioning.delete_hosting(connection, "site.test", 10.0, purge=True)
    assert purged == 1 and tombstone.name == f"deleted~{hosting.id}~site.test" and tombstone.state is HostingState.BLOCKED
    with engine.connect() as connection:
        assert hosting_store.find_hosting(connection, name="site.test") is None
        assert hosting_store.find_hosting(connection, uid=1234) is None
        assert hosting_store.smtp_password_hash(connection, "site.test") is None
        (row,) = store_log.recent(connection, store_log.Filters(hosting=tombstone.name))
        assert row["status"] == "purged"
        assert provisioning.hosting_page(connection).total == 0 and provisioning.hosting_page(connection, deleted=True).total == 1
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "site.test", "new@site.test", uid=1234)  # name and uid are free
