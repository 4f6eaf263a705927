"""The test message and how its result is read: pure, no network."""

from __future__ import annotations

from email import message_from_bytes

from scriptmail.testsend import message, outcome


def test_the_test_message_is_a_complete_crlf_message() -> None:
    data = message.compose("shop.example", "test@shop.example", "me@mine.test", "a@users.test", 1_780_000_000, "gw.test")
    assert b"\r\n\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    parsed = message_from_bytes(data)
    assert parsed["From"] == "test@shop.example" and parsed["To"] == "me@mine.test"
    assert "shop.example" in parsed["Subject"] and parsed["Message-ID"].endswith("@gw.test>")
    assert parsed["Auto-Submitted"] == "auto-generated"


def test_signature_domains_read_the_d_tag_of_every_signature_folded_or_not() -> None:
    data = (
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n d=Shop.Example; s=sel1;\r\n h=from; bh=x; b=y\r\n"
        b"DKIM-Signature: v=1; a=ed25519-sha256; d=shop.example.; s=sel2; b=z\r\n"
        b"X-Not: d=evil.test\r\nSubject: x\r\n\r\nDKIM-Signature: d=body.test\r\n"
    )
    assert message.signature_domains(data) == ["shop.example", "shop.example"]
    assert message.signature_domains(b"Subject: none\r\n\r\nbody") == []
    assert message.signature_domains(b"\xff\xfe garbage") == []


def test_phases_say_when_the_page_may_stop_asking() -> None:
    base = {"refused": "", "queue_id": 7, "status": "queued", "last_code": None, "last_text": ""}
    assert outcome.phase({**base, "queue_id": None, "status": None}) == "pending"
    assert outcome.phase({**base, "refused": "554 5.5.1 no valid recipients"}) == "refused"
    assert [outcome.phase({**base, "status": s}) for s in ("queued", "deferred", "sending")] == ["waiting"] * 3
    assert outcome.phase({**base, "status": "sent"}) == "accepted"
    assert outcome.phase({**base, "status": "bounced"}) == "rejected"
    assert outcome.phase({**base, "status": "held"}) == "held"
    assert not outcome.is_final("waiting") and not outcome.is_final("pending")
    assert all(outcome.is_final(p) for p in ("refused", "held", "accepted", "rejected", "suppressed", "purged"))
    assert outcome.reply({**base, "status": "sent", "last_code": 250, "last_text": "2.0.0 ok"}) == "250 2.0.0 ok"
