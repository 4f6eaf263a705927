"""An automatic block keeps what it saw: the figures, the window and sample messages, with the
state change, in the owner's notice and in the webhook event; an operator can mark it a false
positive, and the metrics count both."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, select

from scriptmail.config import Settings
from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.scheduler.policy_sweep import apply_detection, find_detections
from scriptmail.store import evidence as store_evidence
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue, webhooks
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import history
from scriptmail.store.schema import bodies, messages, webhook_messages
from scriptmail.web import metrics


def _bounce_storm(engine: Engine, now: float) -> None:
    """50 recipients of a contact form, 31 of which bounce."""
    with for_writing(engine).begin() as connection:
        hosting = hosting_store.find_hosting(connection, name="site.test")
        addresses = tuple(f"r{i}@dest.test" for i in range(50))
        queue.insert_submission(
            connection,
            Submission(hosting.id, "w@site.test", addresses, b"Subject: Offer\r\n\r\nb\r\n", Origin.SENDMAIL, "c",
                       subject="Offer", script="/www/contact.php"),
            now,
        )  # fmt: skip
        due = queue.claim_due(connection, "node", 100, 60, now)
        results = [
            AttemptResult(r.id, RecipientStatus.BOUNCED if i < 31 else RecipientStatus.SENT, 550 if i < 31 else 250,
                          "5.1.1 no such user" if i < 31 else "ok", "mx", now, 0.1, hosting_id=r.hosting_id)
            for i, r in enumerate(due)
        ]  # fmt: skip
        queue.record_results(connection, "node", results, now)


@pytest.fixture
def site(engine: Engine) -> Engine:
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "site.test", "owner@site.test", plan="default")
        hosting_store.update_hosting(connection, "site.test", language="es")
    webhooks.invalidate()
    return engine


def test_a_bounce_block_keeps_its_evidence_everywhere(site: Engine) -> None:
    settings = Settings(database_url=str(site.url), hostname="gw.test", plans={"default": {"unknown_user_limit": 1000}})
    with for_writing(site).begin() as connection:
        endpoint, _ = webhooks.create_endpoint(connection, "site.test", "https://hooks.example/in", "hosting.state_changed", 1.0)
    now = time.time()
    _bounce_storm(site, now)
    (found,) = find_detections(site, settings, now + 1)
    with for_writing(site).begin() as connection:
        block = apply_detection(connection, settings, *found, now + 1)
    assert block is not None and block.state.value == "bounce"
    with site.connect() as connection:
        (entry,) = history(connection, "site.test")
        notice = connection.execute(select(bodies.c.data).join(messages, messages.c.id == bodies.c.message_id)
                                    .where(messages.c.script == "scriptmail policy notice")).scalar_one()  # fmt: skip
        payload = webhooks.payload_of(connection, connection.execute(select(webhook_messages.c.id)).scalar_one())
    evidence = entry["evidence"]
    assert evidence["signal"] == "bounce_ratio" and evidence["figures"]["bounced"] == 31
    assert evidence["figures"]["attempted"] == 50 and evidence["window"] == {"recipients": 50}
    assert len(evidence["samples"]) == 10
    assert {s["subject"] for s in evidence["samples"]} == {"Offer"} and {s["script"] for s in evidence["samples"]} == {"/www/contact.php"}
    assert all(s["to"].endswith("@dest.test") and s["id"] and s["at"] for s in evidence["samples"])
    assert payload["data"]["evidence"] == evidence and payload["data"]["actor"] == "policy"
    text = notice.decode()
    assert "han rebotado" in text and "/www/contact.php" in text  # the owner's language: Spanish

    with for_writing(site).begin() as connection:
        store_evidence.mark_false_positive(connection, "site.test", entry["id"], "op@platform.test", " a newsletter to an old list ", now + 2)
    with pytest.raises(store_evidence.EvidenceError, match="already"), for_writing(site).begin() as connection:
        store_evidence.mark_false_positive(connection, "site.test", entry["id"], "op@platform.test", "", now + 3)
    with pytest.raises(store_evidence.EvidenceError), for_writing(site).begin() as connection:
        store_evidence.mark_false_positive(connection, "other.test", entry["id"], "op@platform.test", "", now + 3)
    with site.connect() as connection:
        (entry,) = history(connection, "site.test")
        scraped = metrics.render(metrics.snapshot(connection)).decode()
    assert entry["false_positive_by"] == "op@platform.test" and entry["false_positive_note"] == "a newsletter to an old list"
    assert 'scriptmail_automatic_blocks_total{signal="bounce_ratio"} 1.0' in scraped
    assert 'scriptmail_automatic_blocks_false_positive_total{signal="bounce_ratio"} 1.0' in scraped
    assert endpoint.id


def test_only_automatic_blocks_can_be_marked(site: Engine) -> None:
    from scriptmail.control.states import Action, Actor
    from scriptmail.store.hosting_control import change_state

    with for_writing(site).begin() as connection:
        change_state(connection, "site.test", Action.BLOCK, Actor.CUSTOMER, 10.0)
    with site.connect() as connection:
        (entry,) = history(connection, "site.test")
    assert entry["evidence"] is None
    with pytest.raises(store_evidence.EvidenceError, match="no automatic block"), for_writing(site).begin() as connection:
        store_evidence.mark_false_positive(connection, "site.test", entry["id"], "op", "", 20.0)
