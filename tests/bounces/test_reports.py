"""Reading what comes back to the bounce domain: hand-written samples of each format, broken ones, and
property tests that no bytes make the parser raise."""

from __future__ import annotations

import base64
import random
import time
from email import message_from_bytes
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scriptmail.bounces import reports
from scriptmail.bounces.reports import ACTIONS, MAX_DIAGNOSTIC, MAX_GROUPS, Failure, Report, parse_report
from scriptmail.bounces.verp import decode

SAMPLES = Path(__file__).parent / "samples"
SECRET = b"sample-secret-for-tests-only-000"
DOMAIN = "bounces.example.net"
KINDS = {"dsn", "arf", "plain", "auto-reply", "unparsed"}
FAST = settings(max_examples=200, deadline=None)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def assert_well_formed(report: Report) -> None:
    """What every report promises, whatever came in."""
    assert report.kind in KINDS
    assert bool(report.reason) == (report.kind == "unparsed")
    if report.kind in ("arf", "auto-reply", "unparsed"):
        assert report.failures == ()
    texts = [report.feedback_type, report.original_recipient, report.reason]
    for failure in report.failures:
        assert failure.action in ACTIONS
        assert len(failure.diagnostic) <= MAX_DIAGNOSTIC
        assert failure.code is None or 200 <= failure.code <= 559
        assert failure.status == "" or failure.status[0] in "245"
        texts += [failure.recipient, failure.status, failure.diagnostic, failure.remote_mta]
    assert len(report.failures) <= MAX_GROUPS
    for text in texts:
        text.encode("utf-8")  # storable: no lone surrogates
        assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


# --- every sample, in both line-end conventions ---------------------------------------------------

EXPECTED: dict[str, Report] = {
    "postfix_dsn.eml": Report("dsn", (
        Failure("ana.lopez@example.com", "5.1.1", "failed",
                "550 5.1.1 <ana.lopez@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
                "mx1.example.com", 550),
    )),
    "gmail_dsn.eml": Report("dsn", (
        Failure("jorge.martin@example.com", "5.1.1", "failed",
                "550-5.1.1 The email account that you tried to reach does not exist. Please try "
                "550-5.1.1 double-checking the recipient's email address for typos or "
                "550-5.1.1 unnecessary spaces. For more information, go to "
                "550 5.1.1 https://support.example.com/mail/answer/6596 5a2b1c3d4e.1 - gsmtp",
                "", 550),
    )),
    "uppercase_fields_dsn.eml": Report("dsn", (
        Failure("LUCIA@EXAMPLE.ORG", "5.2.2", "failed", "552 5.2.2 MAILBOX FULL", "STORE3.EXAMPLE.ORG", 552),
    )),
    "three_recipients_dsn.eml": Report("dsn", (
        Failure("pablo@example.org", "5.1.1", "failed", "550 5.1.1 <pablo@example.org>... User unknown", "mx.example.org", 550),
        Failure("marta@example.org", "5.2.2", "failed", "552 5.2.2 <marta@example.org>... Mailbox full", "mx.example.org", 552),
        Failure("info@example.org", "4.4.1", "delayed", "451 4.4.1 reply: read error from mx.example.org.", "mx.example.org", 451),
    )),
    "delayed_dsn.eml": Report("dsn", (
        Failure("carlos@example.com", "4.4.1", "delayed", "connect to mx.example.com[203.0.113.7]:25: Connection timed out", "", None),
    )),
    "text_plain_status_part.eml": Report("dsn", (
        Failure("sofia@example.net", "5.7.1", "failed", "554 5.7.1 Message rejected as spam by content filter", "[203.0.113.40]", 554),
    )),
    "arf_abuse.eml": Report("arf", feedback_type="abuse", original_recipient="elena.garcia@isp.example"),
    "qmail.eml": Report("plain", (
        Failure("nadie@example.org", "5.1.1", "failed", "Sorry, no mailbox here by that name. (#5.1.1)", "", None),
        Failure("lleno@example.net", "5.2.2", "failed",
                "203.0.113.9 does not like recipient. Remote host said: 552 5.2.2 <lleno@example.net>: Mailbox full "
                "Giving up on 203.0.113.9.",
                "203.0.113.9", 552),
    )),
    "exim.eml": Report("plain", (
        Failure("pedro@example.com", "5.1.1", "failed",
                "host mx.example.com [203.0.113.25] SMTP error from remote mail server after RCPT TO:<pedro@example.com>: "
                "550 5.1.1 <pedro@example.com>: Recipient address rejected: User unknown",
                "mx.example.com", 550),
        Failure("viejo@example.net", "", "failed", "Unrouteable address", "", None),
    )),
    "exim_said.eml": Report("plain", (
        Failure("rosa@example.net", "5.1.1", "failed",
                "SMTP error from remote mail server after RCPT TO:<rosa@example.net>: "
                "host mx2.example.net [198.51.100.77] said: 550 5.1.1 No such user here",
                "mx2.example.net", 550),
    )),
    "postfix_text_only.eml": Report("plain", (
        Failure("ventas@example.com", "5.2.2", "failed",
                "host store.example.com[198.51.100.3] said: 552 5.2.2 <ventas@example.com>: Mailbox full (in reply to RCPT TO command)",
                "store.example.com", 552),
        Failure("luis@example.com", "5.7.1", "failed",
                "host mx.example.com[198.51.100.2] said: 550 5.7.1 Service unavailable; client [192.0.2.10] blocked using "
                "bl.example.org (in reply to RCPT TO command)",
                "mx.example.com", 550),
    )),
    "microsoft.eml": Report("plain", (
        Failure("maria.ruiz@contoso.example", "5.1.10", "failed",
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "", 550),
    )),
    "out_of_office.eml": Report("auto-reply"),
    "vacation_subject_only.eml": Report("auto-reply"),
    "human_reply.eml": Report("unparsed", reason="no delivery status, feedback report or bounce text found"),
}


def test_every_sample_has_an_expectation() -> None:
    assert sorted(path.name for path in SAMPLES.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("line_end", ["lf", "crlf"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_reads_as_expected(name: str, line_end: str) -> None:
    data = sample(name) if line_end == "lf" else crlf(sample(name))
    report = parse_report(data)
    assert report == EXPECTED[name]
    assert_well_formed(report)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_sample_came_back_to_the_verp_address_of_recipient_4711(name: str) -> None:
    to = message_from_bytes(sample(name))["To"]
    assert decode(to, SECRET, DOMAIN) == 4711


# --- delivery status notifications ---------------------------------------------------------------


DSN_HEAD = (
    b"From: MAILER-DAEMON@mx.example.org\n"
    b"To: b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net\n"
    b"Subject: Delivery Status Notification\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
    b"--B\nContent-Type: text/plain\n\nSee below.\n\n"
    b"--B\nContent-Type: message/delivery-status\n\n"
)
PER_MESSAGE = b"Reporting-MTA: dns; mx.example.org\n\n"


def dsn_message(groups: list[tuple[str, str, str, str]]) -> bytes:
    """A minimal DSN; each group is (Final-Recipient, Action, Status, Diagnostic-Code), empty fields left out."""
    blocks = []
    for recipient, action, status, diagnostic in groups:
        fields = [("Final-Recipient", recipient), ("Action", action), ("Status", status), ("Diagnostic-Code", diagnostic)]
        blocks.append("".join(f"{name}: {value}\n" for name, value in fields if value))
    return DSN_HEAD + PER_MESSAGE + "\n".join(blocks).encode() + b"\n--B--\n"


def test_a_postfix_bounce_is_a_hard_bounce_for_its_recipient() -> None:
    report = parse_report(sample("postfix_dsn.eml"))
    assert report.kind == "dsn" and report.is_hard_bounce
    assert [f.recipient for f in report.failures] == ["ana.lopez@example.com"]


def test_folded_fields_are_unfolded_and_their_types_dropped() -> None:
    failure = parse_report(sample("postfix_dsn.eml")).failures[0]
    assert failure.diagnostic.endswith("Recipient address rejected: User unknown in virtual mailbox table")
    assert not failure.diagnostic.startswith("smtp;") and failure.remote_mta == "mx1.example.com"


def test_a_report_with_three_recipients_gives_three_failures_in_order() -> None:
    report = parse_report(sample("three_recipients_dsn.eml"))
    assert [(f.recipient, f.action, f.status) for f in report.failures] == [
        ("pablo@example.org", "failed", "5.1.1"),
        ("marta@example.org", "failed", "5.2.2"),
        ("info@example.org", "delayed", "4.4.1"),
    ]
    assert report.is_hard_bounce


def test_a_delay_warning_is_a_failure_but_not_a_hard_bounce() -> None:
    report = parse_report(sample("delayed_dsn.eml"))
    assert report.kind == "dsn" and [f.action for f in report.failures] == ["delayed"]
    assert not report.is_hard_bounce


def test_field_names_and_values_are_read_without_regard_to_case() -> None:
    report = parse_report(sample("uppercase_fields_dsn.eml"))
    assert report.failures[0].action == "failed" and report.is_hard_bounce


def test_a_success_notice_is_read_but_is_no_bounce() -> None:
    data = dsn_message([("rfc822; ok@example.org", "delivered", "2.0.0", "smtp; 250 2.0.0 Ok: queued as 4F1")])
    report = parse_report(data)
    assert report.kind == "dsn" and report.failures[0].action == "delivered" and report.failures[0].code == 250
    assert not report.is_hard_bounce


def test_a_group_without_action_takes_it_from_its_status() -> None:
    data = dsn_message([("rfc822; a@example.org", "", "4.2.2", ""), ("rfc822; b@example.org", "bogus", "5.1.1", "")])
    assert [f.action for f in parse_report(data).failures] == ["delayed", "failed"]


def test_a_status_missing_from_its_field_is_taken_from_the_diagnostic() -> None:
    data = dsn_message([("rfc822; a@example.org", "failed", "", "smtp; 550 5.1.1 no such user")])
    failure = parse_report(data).failures[0]
    assert failure.status == "5.1.1" and failure.code == 550


def test_the_original_recipient_stands_in_when_there_is_no_final_one() -> None:
    data = DSN_HEAD + PER_MESSAGE + b"Original-Recipient: rfc822;<orig@example.org>\nAction: failed\nStatus: 5.0.0\n\n--B--\n"
    assert parse_report(data).failures[0].recipient == "orig@example.org"


def test_a_global_delivery_status_part_is_read_like_the_ascii_one() -> None:
    data = DSN_HEAD.replace(b"message/delivery-status", b"message/global-delivery-status") + PER_MESSAGE + (
        "Final-Recipient: utf-8; josé@ejemplo.example\nAction: failed\nStatus: 5.1.1\n\n--B--\n".encode()
    )
    report = parse_report(data)
    assert report.kind == "dsn" and report.failures[0].recipient == "josé@ejemplo.example"


def test_a_delivery_status_part_in_base64_is_decoded() -> None:
    fields = b"Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; b64@example.org\nAction: failed\nStatus: 5.1.1\n"
    data = DSN_HEAD.replace(b"Content-Type: message/delivery-status\n", b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n")
    data += base64.encodebytes(fields) + b"\n--B--\n"
    assert parse_report(data).failures[0].recipient == "b64@example.org"


def test_a_line_that_is_no_field_does_not_split_its_group() -> None:
    data = DSN_HEAD + PER_MESSAGE + b"Final-Recipient: rfc822; a@example.org\nthis line is noise\nAction: failed\nStatus: 5.1.1\n\n--B--\n"
    report = parse_report(data)
    assert [(f.recipient, f.status) for f in report.failures] == [("a@example.org", "5.1.1")]


def test_recipient_groups_are_capped() -> None:
    groups = [(f"rfc822; r{n}@example.org", "failed", "5.1.1", "smtp; 550 5.1.1 unknown") for n in range(1000)]
    report = parse_report(dsn_message(groups))
    assert len(report.failures) == MAX_GROUPS and report.failures[-1].recipient == f"r{MAX_GROUPS - 1}@example.org"


def test_a_diagnostic_is_cut_at_a_thousand_characters() -> None:
    data = dsn_message([("rfc822; a@example.org", "failed", "5.1.1", "smtp; 550 5.1.1 " + "x" * 5000)])
    assert len(parse_report(data).failures[0].diagnostic) == MAX_DIAGNOSTIC


# --- feedback reports ------------------------------------------------------------------------------


def test_an_abuse_report_names_the_complaining_recipient() -> None:
    report = parse_report(sample("arf_abuse.eml"))
    assert (report.kind, report.feedback_type, report.original_recipient) == ("arf", "abuse", "elena.garcia@isp.example")
    assert not report.is_hard_bounce


def test_a_not_spam_report_keeps_its_type_in_lower_case() -> None:
    data = sample("arf_abuse.eml").replace(b"Feedback-Type: abuse", b"FEEDBACK-TYPE: Not-Spam")
    assert parse_report(data).feedback_type == "not-spam"


def test_a_feedback_report_without_its_type_is_unparsed() -> None:
    data = sample("arf_abuse.eml").replace(b"Feedback-Type: abuse\n", b"")
    report = parse_report(data)
    assert report.kind == "unparsed" and "Feedback-Type" in report.reason


# --- plain-text bounces and auto-replies ------------------------------------------------------------


def test_the_copy_of_the_original_message_is_not_read_as_the_report() -> None:
    recipients = [f.recipient for f in parse_report(sample("qmail.eml")).failures]
    assert recipients == ["nadie@example.org", "lleno@example.net"]


def test_an_html_only_bounce_is_read_from_its_text() -> None:
    data = (
        b"From: postmaster@contoso.example\nSubject: Undeliverable: hello\nContent-Type: text/html; charset=utf-8\n\n"
        b"<html><body><p>Delivery has failed to these recipients or groups:</p>"
        b"<p>pia@contoso.example<br>Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'</p></body></html>\n"
    )
    report = parse_report(data)
    assert report.kind == "plain" and report.failures[0].recipient == "pia@contoso.example"
    assert report.failures[0].diagnostic == "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found"


def test_an_older_exchange_bounce_gives_the_code_between_hashes() -> None:
    data = (
        b"From: System Administrator <postmaster@corp.example>\nSubject: Undeliverable: hello\n\n"
        b"Your message did not reach some or all of the intended recipients.\n\n"
        b"The following recipient(s) cannot be reached:\n\n"
        b"Diagnostic information for administrators:\n\n"
        b"tomas@corp.example\n#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##\n"
    )
    failure = parse_report(data).failures[0]
    assert (failure.recipient, failure.status, failure.code) == ("tomas@corp.example", "5.1.1", 550)
    assert failure.diagnostic == "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found"


def test_a_bounce_that_names_no_recipient_still_gives_its_reason() -> None:
    data = b"From: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\nDelivery failed.\n\nRemote said: 554 5.7.1 Rejected by policy\n"
    report = parse_report(data)
    assert report.kind == "plain" and report.is_hard_bounce
    assert report.failures == (Failure("", "5.7.1", "failed", "Remote said: 554 5.7.1 Rejected by policy", "", 554),)


def test_a_bounce_without_any_code_is_unparsed() -> None:
    data = b"From: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\nSomething went wrong.\n"
    report = parse_report(data)
    assert report.kind == "unparsed" and "status code" in report.reason


def test_an_out_of_office_reply_is_never_a_failure() -> None:
    report = parse_report(sample("out_of_office.eml"))
    assert report.kind == "auto-reply" and report.failures == () and not report.is_hard_bounce


@pytest.mark.parametrize(
    "headers",
    [b"Auto-Submitted: auto-replied (vacation)\nSubject: Re: hello\n", b"Subject: Out of Office: hello\n",
     b"Subject: Abwesenheitsnotiz: hello\n", b"Subject: =?utf-8?q?Respuesta_autom=C3=A1tica=3A_hola?=\n",
     b"X-Autoreply: yes\nSubject: hello\n", b"Precedence: auto_reply\nSubject: hello\n"],
)
def test_auto_replies_are_recognised_by_header_or_subject(headers: bytes) -> None:
    data = b"From: someone@example.org\n" + headers + b"\nI am away until Monday.\n"
    assert parse_report(data).kind == "auto-reply"


def test_a_generated_notice_is_not_taken_for_a_vacation_reply() -> None:
    data = b"From: alerts@example.org\nAuto-Submitted: auto-generated\nSubject: Your weekly summary\n\nNothing new.\n"
    assert parse_report(data).kind == "unparsed"


# --- broken input -------------------------------------------------------------------------------


def test_a_report_without_its_boundary_is_read_as_best_it_can() -> None:
    data = sample("postfix_dsn.eml").replace(b';\n\tboundary="7A3B21E0F4.1741075963/mail.example.org"', b"")
    report = parse_report(data)
    assert report.kind == "dsn" and [f.recipient for f in report.failures] == ["ana.lopez@example.com"]


def test_a_report_cut_inside_its_status_part_keeps_what_arrived() -> None:
    data = sample("postfix_dsn.eml")
    cut = data[: data.index(b"Status: 5.1.1") + 3]
    report = parse_report(cut)
    assert report.kind == "dsn"
    assert report.failures == (Failure("ana.lopez@example.com", "", "failed", "", "", None),)
    assert not report.is_hard_bounce


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_sample_cut_anywhere_never_raises(name: str) -> None:
    data = sample(name)
    for end in range(0, len(data), 13):
        assert_well_formed(reports._read(data[:end]))


@pytest.mark.parametrize(
    "data",
    [b"", b"\r\n\r\n", b"\x00" * 4096, bytes(range(256)) * 64, b"Content-Type: multipart/report; boundary=\n\n--\n--\n",
     b"Content-Type: text/plain; charset=x-no-such-charset\nSubject: Undeliverable\n\n\xff\xfe 550 5.1.1\n",
     b"Content-Type: text/plain; charset=base64\nSubject: Undeliverable\n\nabc\n",
     b"Content-Type: text/plain; charset*=utf-8''%ff%fe\nContent-Transfer-Encoding: base64\n\n!!!not base64===\n",
     b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n=\n",
     b"Subject: =?utf-8?b?!!!?= =?x-unknown?q?abc?=\nFrom: =?utf-8?q?\xff?=\n\nhello\n",
     b"From: MAILER-DAEMON@x\nSubject: failure notice\n\n" + b"<a@b>: 550 5.1.1 \xff\xfe\x00\x1b[31m red\n",
     b"Subject: Undeliverable\nContent-Type: text/plain; charset=utf-8\x00\n\n\xc2\xbf 550 5.1.1\n"],
    ids=["empty", "blank", "nul", "all-bytes", "empty-boundary", "unknown-charset", "codec-charset", "bad-base64",
         "bad-base64-status", "bad-encoded-words", "control-chars", "nul-in-charset"],
)
def test_malformed_input_gives_a_report_and_no_exception(data: bytes) -> None:
    assert_well_formed(reports._read(data))
    assert_well_formed(parse_report(data))


def test_binary_garbage_is_unparsed() -> None:
    report = parse_report(random.Random(5).randbytes(200_000))
    assert report.kind == "unparsed" and report.reason


def test_five_megabytes_of_junk_are_refused_quickly() -> None:
    rng = random.Random(11)
    junk = b"".join(rng.choice([b"Final-Recipient: rfc822; a@b\n", b"Action: failed\n", b"  folded\n", b"\n", b"<x@y>: 550 5.1.1\n",
                                b"--boundary\n", rng.randbytes(40)]) for _ in range(200_000))
    junk = (junk * (5_000_000 // len(junk) + 1))[:5_000_000]
    started = time.monotonic()
    for data in (junk, b"Subject: failure notice\n\n" + junk, b"Content-Type: message/delivery-status\n\n" + junk):
        assert_well_formed(parse_report(data))
    assert time.monotonic() - started < 20


def test_deeply_nested_parts_are_refused_without_an_exception() -> None:
    data = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (n, n) for n in range(5000))
    assert parse_report(data).kind == "unparsed"


def test_only_the_first_mebibyte_is_read() -> None:
    filler = b"X-Filler: " + b"x" * 1000 + b"\n"
    data = filler * 1100 + sample("postfix_dsn.eml")
    assert parse_report(data).kind == "unparsed"


def test_something_that_is_not_bytes_is_unparsed() -> None:
    assert parse_report("a str, not bytes").kind == "unparsed"  # type: ignore[arg-type]


# --- what is_hard_bounce means -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "hard"),
    [(Failure("a@b", "5.1.1", "failed", "", "", 550), True),
     (Failure("a@b", "", "failed", "550 no such user", "", 550), True),
     (Failure("a@b", "4.4.7", "failed", "", "", None), False),
     (Failure("a@b", "4.2.2", "failed", "", "", 552), False),
     (Failure("a@b", "4.4.1", "delayed", "", "", 451), False),
     (Failure("a@b", "5.1.1", "delayed", "", "", 550), False),
     (Failure("a@b", "2.0.0", "delivered", "", "", 250), False),
     (Failure("a@b", "", "failed", "", "", None), False)],
)
def test_a_hard_bounce_is_a_failed_recipient_with_a_permanent_code(failure: Failure, hard: bool) -> None:
    assert Report("dsn", (failure,)).is_hard_bounce is hard


# --- properties ------------------------------------------------------------------------------------

SAMPLE_BYTES = [sample(name) for name in sorted(EXPECTED)]
wire = st.binary(max_size=4000) | st.lists(
    st.sampled_from([b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b"--B", b"--B--", b"\x00", b"\xff", b"=?utf-8?b?", b"?=",
                     b"Content-Type: multipart/report; boundary=B\n", b"Content-Type: message/delivery-status\n",
                     b"Content-Type: message/feedback-report\n", b"Content-Transfer-Encoding: base64\n",
                     b"Final-Recipient: rfc822; a@b\n", b"Action: failed\n", b"Status: 5.1.1\n", b"Diagnostic-Code: smtp; 550 x\n",
                     b"Feedback-Type: abuse\n", b"<a@b>: ", b"550 5.1.1", b"From: MAILER-DAEMON@x\n", b"Subject: Undeliverable\n"]),
    max_size=300,
).map(b"".join)


@FAST
@given(wire)
def test_no_bytes_make_the_parser_raise(data: bytes) -> None:
    assert_well_formed(reports._read(data))  # not even without the last guard
    assert_well_formed(parse_report(data))


@FAST
@given(st.sampled_from(SAMPLE_BYTES), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 40), st.binary(max_size=40)), max_size=8))
def test_damaged_samples_never_make_the_parser_raise(data: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    for position, length, replacement in edits:
        position %= len(data) + 1
        data = data[:position] + replacement + data[position + length :]
    assert_well_formed(reports._read(data))


addresses = st.from_regex(r"[a-z0-9._-]{1,20}@[a-z0-9-]{1,20}\.example", fullmatch=True)
statuses = st.tuples(st.sampled_from("245"), st.integers(0, 999), st.integers(0, 999)).map(lambda t: f"{t[0]}.{t[1]}.{t[2]}")


@FAST
@given(st.lists(st.tuples(addresses, st.sampled_from(sorted(ACTIONS)), statuses), min_size=1, max_size=12), st.booleans())
def test_every_recipient_group_comes_back_as_written(groups: list[tuple[str, str, str]], with_crlf: bool) -> None:
    data = dsn_message([(f"rfc822; {address}", action, status, "") for address, action, status in groups])
    report = parse_report(crlf(data) if with_crlf else data)
    assert [(f.recipient, f.action, f.status) for f in report.failures] == groups
