"""Reading and completing the header block."""

from __future__ import annotations

from scriptmail.intake.headers import addresses_in, complete, decoded, split_headers


def test_fields_are_unfolded_and_found_case_insensitively() -> None:
    block = split_headers(b"Subject: a long\r\n subject\r\nTo: A <a@x.test>,\r\n\tb@x.test\r\n\r\nbody\r\n")
    assert block.first("SUBJECT") == "a long subject"
    assert addresses_in(block, "to") == ["a@x.test", "b@x.test"]
    assert block.to_bytes().endswith(b"\r\n\r\nbody\r\n")


def test_round_trip_is_byte_exact() -> None:
    message = b"From: a@x.test\r\nSubject: hi\r\n\r\n.dots\r\n\r\nend\r\n"
    assert split_headers(message).to_bytes() == message


def test_bcc_is_removed_with_its_continuation_lines() -> None:
    block = split_headers(b"To: a@x.test\r\nBcc: secret@x.test,\r\n other@x.test\r\nSubject: s\r\n\r\nb\r\n")
    assert addresses_in(block, "bcc") == ["secret@x.test", "other@x.test"]
    assert block.without("bcc").to_bytes() == b"To: a@x.test\r\nSubject: s\r\n\r\nb\r\n"


def test_date_and_message_id_are_added_only_when_missing() -> None:
    completed = complete(split_headers(b"Subject: s\r\n\r\nb\r\n"), "gw.test", now=0)
    assert completed.first("date") == "Thu, 01 Jan 1970 00:00:00 -0000"
    assert completed.first("message-id").endswith("@gw.test>")
    kept = complete(split_headers(b"Date: x\r\nMessage-ID: <m@x>\r\n\r\nb\r\n"), "gw.test")
    assert kept.to_bytes() == b"Date: x\r\nMessage-ID: <m@x>\r\n\r\nb\r\n"


def test_a_message_without_blank_line_after_headers_gets_one() -> None:
    block = split_headers(b"Subject: s\r\nthis is body text, not a header\r\n")
    assert block.first("subject") == "s"
    assert block.to_bytes() == b"Subject: s\r\n\r\nthis is body text, not a header\r\n"


def test_encoded_subjects_are_decoded_and_garbage_is_kept() -> None:
    assert decoded("=?utf-8?q?Caf=C3=A9?=") == "Café"
    assert decoded("=?bogus-charset?q?x?=") == "=?bogus-charset?q?x?="
