"""Notices about mail that needed SMTPUTF8 are global ones (RFC 6533), read back with Python's own
email parser and the fields checked by hand; ASCII mail keeps RFC 3464's rfc822 types."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from scriptmail.bounces.reports import parse_report
from scriptmail.dsn.compose import RecipientReport, is_global, notice

LEGACY = "xn--mller-kva.example"  # müller.example


def _notice(
    sender: str, *addresses: str, original: bytes = b"Subject: hi\r\n\r\nbody\r\n", text: str = "5.6.7 no SMTPUTF8"
) -> bytes:
    reports = [RecipientReport(address, 550, text, f"mx.{LEGACY}[192.0.2.1]:25", 1000.0) for address in addresses]
    _, data = notice(
        action="failed", recipients=reports, sender=sender, from_address="postmaster@gw.test", reporting_mta="gw.test",
        arrival=900.0, subject="hi", original=original, language="es", now=1010.0,
    )  # fmt: skip
    return data


def _parts(data: bytes) -> tuple[EmailMessage, list[EmailMessage]]:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    return parsed, list(parsed.iter_parts())


def _blocks(data: bytes, content_type: str) -> list[dict[str, str]]:
    """The field blocks of the status part, split by hand from the notice's own bytes."""
    marker = f"Content-Type: {content_type}".encode()
    assert data.count(marker) == 1, data
    part = data.split(marker, 1)[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
    text = part.decode("utf-8")  # raw UTF-8, never encoded-words or base64
    return [dict(line.split(": ", 1) for line in block.split("\r\n")) for block in text.strip().split("\r\n\r\n")]


def test_a_utf8_recipient_gets_utf8_address_types_in_a_global_delivery_status() -> None:
    data = _notice("web@shop.example", f"jürgen@{LEGACY}", f"info@{LEGACY}")
    parsed, (readable, status, headers) = _parts(data)
    assert parsed.get_content_type() == "multipart/report" and parsed.get_param("report-type") == "delivery-status"
    assert status.get_content_type() == "message/global-delivery-status"
    assert status["Content-Transfer-Encoding"] == "8bit"
    assert headers.get_content_type() == "message/global-headers"
    reporting, first, second = _blocks(data, "message/global-delivery-status")
    assert reporting["Reporting-MTA"] == "dns; gw.test"
    assert first["Final-Recipient"] == "utf-8; jürgen@müller.example"  # U-label, raw UTF-8
    assert first["Original-Recipient"] == "utf-8; jürgen@müller.example"
    assert (first["Action"], first["Status"]) == ("failed", "5.6.7")
    assert second["Final-Recipient"] == "utf-8; info@müller.example"
    assert "jürgen@müller.example" in readable.get_content()
    assert b"=?utf-8?" not in data  # no encoded-word anywhere


def test_a_utf8_sender_gets_the_notice_addressed_in_utf8_and_its_header_returned_as_global_headers() -> None:
    original = "From: José <josé@shop.example>\r\nSubject: Grüße\r\n\r\nbody\r\n".encode()
    data = _notice("josé@shop.example", "info@example.org", original=original)
    parsed, (_, status, headers) = _parts(data)
    assert parsed["To"] == "josé@shop.example"
    assert "To: josé@shop.example\r\n".encode() in data  # RFC 6532: the field in UTF-8
    assert headers.get_content_type() == "message/global-headers"
    returned = data.split(b"Content-Type: message/global-headers", 1)[1].split(b"\r\n\r\n", 1)[1]
    assert returned.startswith("From: José <josé@shop.example>\r\nSubject: Grüße\r\n".encode())
    (_, recipient) = _blocks(data, "message/global-delivery-status")
    assert recipient["Final-Recipient"] == "utf-8; info@example.org"


def test_ascii_mail_keeps_rfc822_types_and_the_ascii_parts() -> None:
    data = _notice("web@shop.example", f"info@{LEGACY}")
    assert data.isascii()
    _, (_, status, headers) = _parts(data)
    assert status.get_content_type() == "message/delivery-status"
    assert headers.get_content_type() == "text/rfc822-headers"
    (_, recipient) = _blocks(data, "message/delivery-status")
    assert recipient["Final-Recipient"] == f"rfc822; info@{LEGACY}"  # A-label outside SMTPUTF8
    assert "Original-Recipient" not in recipient


def test_which_mail_needs_a_global_notice() -> None:
    assert is_global("web@a.example", ["ñandú@b.example"], b"Subject: x\r\n\r\n")
    assert is_global("josé@a.example", ["x@b.example"], b"Subject: x\r\n\r\n")
    assert is_global("web@a.example", ["x@b.example"], "Subject: Größe\r\n\r\n".encode())
    assert not is_global("web@a.example", [f"x@{LEGACY}"], "Subject: x\r\n\r\nGröße in the body only\r\n".encode())


def test_hostile_replies_and_broken_headers_cannot_add_fields_or_break_the_global_notice() -> None:
    original = b"Subject: \xff\xfe broken\r\nX-Evil: a\r\n\r\nbody\r\n"  # not UTF-8: kept, replaced
    data = _notice(
        "josé@shop.example",
        f"jürgen@{LEGACY}",
        original=original,
        text="5.1.1 gone\r\nAction: delivered\r\n\r\nFinal-Recipient: rfc822; x@y",
    )
    (_, recipient) = _blocks(data, "message/global-delivery-status")
    assert recipient["Action"] == "failed"
    assert recipient["Status"] == "5.1.1" and "Action: delivered" in recipient["Diagnostic-Code"]  # one line, not a field
    assert "Final-Recipient: rfc822" not in data.decode().replace(
        "Diagnostic-Code: smtp; 550 5.1.1 gone  Action: delivered    Final", ""
    )
    assert "Subject: \ufffd\ufffd broken".encode() in data


def test_our_own_bounce_reader_reads_the_global_notice_back() -> None:
    report = parse_report(_notice("josé@shop.example", f"jürgen@{LEGACY}"))
    assert report.kind == "dsn"
    (failure,) = report.failures
    assert failure.recipient == "jürgen@müller.example" and failure.status == "5.6.7"


def test_a_long_utf8_reply_stays_within_the_line_limit() -> None:
    data = _notice("josé@shop.example", f"jürgen@{LEGACY}", text="5.7.1 " + "ü" * 2000)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    (_, recipient) = _blocks(data, "message/global-delivery-status")
    assert recipient["Diagnostic-Code"].startswith("smtp; 550 5.7.1 üü")
