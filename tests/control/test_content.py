"""The built-in content score: each signal on its own case, the encodings a script may use, and
whatever bytes arrive, a score and never an exception, quickly."""

from __future__ import annotations

import base64
import os
import time
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scriptmail.control.content import (
    EMPTY_BODY_POINTS,
    EMPTY_SUBJECT_POINTS,
    EXECUTABLE_ATTACHMENT_POINTS,
    EXECUTABLE_EXTENSIONS,
    HIGH_SCORE,
    MANY_RECIPIENTS_POINTS,
    MOSTLY_WHITE_SPACE_POINTS,
    SHOUTING_SUBJECT_POINTS,
    TEXT_LIMIT,
    ContentScore,
    score_message,
)

POLITE_BODY = "Hello Ann,\n\nyour order #1234 left our warehouse this morning.\nThe invoice is attached.\n\nThe Shop\n"
PDF = b"%PDF-1.4\n" + os.urandom(3000) + b"\n%%EOF\n"


def raw(*headers: str, body: str | bytes = "Hello Ann,\r\nyour parcel is on its way.\r\n") -> bytes:
    """A message exactly as given, CRLF line ends, From and To added unless given."""
    names = {h.split(":", 1)[0].lower() for h in headers}
    lines = [h for h in ("From: shop@example.com", "To: ann@example.net") if h.split(":")[0].lower() not in names]
    lines += headers
    body = body.encode() if isinstance(body, str) else body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def multipart(subtype: str, *parts: bytes, boundary: str = "=_b1", subject: str = "Your order #1234 has shipped") -> bytes:
    """A multipart message of the given parts (each a header section, a blank line and a body)."""
    body = (
        b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts) + b"--" + boundary.encode() + b"--\r\n"
    )
    return raw(f"Subject: {subject}", "MIME-Version: 1.0", f'Content-Type: multipart/{subtype}; boundary="{boundary}"', body=body)


def text_part(text: str, content_type: str = "text/plain; charset=utf-8") -> bytes:
    return f"Content-Type: {content_type}\r\n\r\n{text}".encode()


def attachment(disposition: str, content_type: str = "application/octet-stream") -> bytes:
    payload = base64.encodebytes(os.urandom(300)).replace(b"\n", b"\r\n")
    return (
        f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        + payload
    )


def order_confirmation(subject: str = "Your order #1234 has shipped") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "The Shop <shop@example.com>"
    message["To"] = "Ann <ann@example.net>"
    message["Subject"] = subject
    message.set_content(POLITE_BODY)
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice-1234.pdf")
    return message


def test_a_polite_order_confirmation_with_its_pdf_scores_nothing() -> None:
    assert score_message(order_confirmation().as_bytes(policy=SMTP)) == ContentScore(points=0.0, reasons=())


def test_every_signal_adds_its_points_and_its_reason_in_order() -> None:
    recipients = ", ".join(f"user{i}@example.net" for i in range(25))
    body = (
        b"--b\r\n"
        + text_part("buy\r\n" + "\r\n" * 40)
        + b"\r\n--b\r\n"
        + attachment('attachment; filename="invoice.pdf.exe"')
        + b"\r\n--b--\r\n"
    )
    data = raw("Subject: BUY CHEAP PILLS NOW", f"To: {recipients}", 'Content-Type: multipart/mixed; boundary="b"', body=body)

    score = score_message(data)

    assert score.reasons == (
        "shouting subject (4 upper-case words)",
        "mostly white space (93% of the body)",
        "executable attachment (.exe disguised as .pdf)",
        "many recipients (25 in To and Cc)",
    )
    assert (
        score.points
        == SHOUTING_SUBJECT_POINTS + MOSTLY_WHITE_SPACE_POINTS + EXECUTABLE_ATTACHMENT_POINTS + MANY_RECIPIENTS_POINTS
    )
    assert score.points >= HIGH_SCORE


# Shouting subject


@pytest.mark.parametrize(
    ("subject", "words"),
    [
        ("FREE MONEY WAITING for you", 3),
        ("ÉTÉ: SOLDES GÉANTES", 3),
        ("ACT NOW!!! LIMITED OFFER 2024", 4),
        ("WIN4 CASH2 PRIZES3", 3),
    ],
)
def test_a_subject_with_three_upper_case_words_shouts(subject: str, words: int) -> None:
    score = score_message(raw(f"Subject: {subject}"))
    assert score.reasons == (f"shouting subject ({words} upper-case words)",)
    assert score.points == SHOUTING_SUBJECT_POINTS


@pytest.mark.parametrize(
    "subject",
    [
        "Your order #1234 has shipped",
        "FREE MONEY for you",  # two words only
        "A B C D E",  # one letter is not a word
        "2024 2025 2026 12:30",  # digits alone are no upper-case words
        "Invoice INV-0042 from ACME",  # INV and ACME: two
        "東京 大阪 名古屋",  # no letter case at all
    ],
)
def test_ordinary_subjects_do_not_shout(subject: str) -> None:
    assert score_message(raw(f"Subject: {subject}")).points == 0


def test_encoded_word_subjects_are_decoded_before_judging() -> None:
    # "ÉTÉ " then "SOLDES GÉANTES": white space between encoded-words is dropped (RFC 2047 §6.2).
    shouting = "=?utf-8?B?w4lUw4kg?= =?utf-8?Q?SOLDES_G=C3=89ANTES?="
    assert score_message(raw(f"Subject: {shouting}")).reasons == ("shouting subject (3 upper-case words)",)
    # Upper case only once decoded: the encoded text itself has three upper-case "words".
    assert score_message(raw("Subject: =?iso-8859-1?Q?Caf=E9_au_lait?=")).points == 0
    assert score_message(raw("Subject: =?UTF-8?B?VW4gY2Fmw6k/?=")).points == 0
    # An encoded-word in a charset nobody knows, or with broken base64, is read as well as can be.
    assert score_message(raw("Subject: =?x-unknown?Q?HELLO_BIG_WORLD?=")).reasons == ("shouting subject (3 upper-case words)",)
    assert score_message(raw("Subject: =?utf-8?B?!!!?= Your order")).points == 0


def test_a_folded_subject_is_read_whole() -> None:
    assert score_message(raw("Subject: FREE\r\n MONEY\r\n\tNOW")).reasons == ("shouting subject (3 upper-case words)",)


def test_a_subject_of_raw_utf8_bytes_is_read_as_utf8() -> None:
    data = raw("Subject: placeholder").replace(b"placeholder", "ÉTÉ GÉANT ÉNORME".encode())
    assert score_message(data).reasons == ("shouting subject (3 upper-case words)",)


# Empty subject


@pytest.mark.parametrize("subject_header", [None, "Subject:", "Subject:    ", "Subject: =?utf-8?Q?_?=", "Subject: \r\n \t"])
def test_a_missing_or_blank_subject_is_empty(subject_header: str | None) -> None:
    data = raw(*([subject_header] if subject_header else []))
    assert score_message(data) == ContentScore(points=EMPTY_SUBJECT_POINTS, reasons=("empty subject",))


# Empty body and white space


@pytest.mark.parametrize("body", ["", "\r\n", "   \r\n\t\r\n", "\r\n" * 30])
def test_a_body_of_nothing_or_white_space_is_empty(body: str) -> None:
    assert score_message(raw("Subject: Hello", body=body)) == ContentScore(points=EMPTY_BODY_POINTS, reasons=("empty body",))


def test_a_message_without_a_blank_line_has_an_empty_body() -> None:
    assert score_message(b"From: a@example.com\r\nTo: b@example.net\r\nSubject: Hi").reasons == ("empty body",)


def test_an_attachment_alone_is_no_empty_body() -> None:
    data = multipart("mixed", text_part(""), attachment('attachment; filename="report.pdf"', "application/pdf"))
    assert score_message(data).points == 0
    single = raw(
        "Subject: Report", "Content-Type: application/pdf", 'Content-Disposition: attachment; filename="r.pdf"', body="JVBERi0="
    )
    assert score_message(single).points == 0


def test_a_body_padded_with_white_space_is_mostly_white_space() -> None:
    score = score_message(raw("Subject: Hello", body="Click here\r\n" + "\r\n" * 40 + " " * 40))
    assert score.reasons == ("mostly white space (90% of the body)",)
    assert score.points == MOSTLY_WHITE_SPACE_POINTS


def test_white_space_padding_beside_an_attachment_counts_once() -> None:
    data = multipart("mixed", text_part(" " * 50), attachment('attachment; filename="report.pdf"'))
    assert score_message(data).reasons == ("mostly white space (100% of the body)",)


def test_short_bodies_are_not_judged_on_white_space() -> None:
    assert score_message(raw("Subject: Hello", body="ok" + " " * 17)).points == 0  # 19 characters
    assert score_message(raw("Subject: Hello", body="ok" + " " * 18)).reasons == ("mostly white space (90% of the body)",)


def test_an_ordinary_letter_is_not_mostly_white_space() -> None:
    letter = "Dear Ann,\r\n\r\n    thank you for your order.\r\n\r\n\r\n    Kind regards,\r\n    The Shop\r\n"
    assert score_message(raw("Subject: Thanks", body=letter)).points == 0


# Transfer encodings


def test_a_quoted_printable_body_is_decoded() -> None:
    padded = "Hi=20" + "=20" * 100 + "=0D=0A" * 30 + "=\r\n"
    qp = ("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable")
    assert score_message(raw("Subject: Hello", *qp, body=padded)).reasons[0].startswith("mostly white space")
    prose = "Caf=C3=A9 au lait, 3 =E2=82=AC, pay=\r\nment due next week.\r\n"
    assert score_message(raw("Subject: Hello", *qp, body=prose)).points == 0
    assert score_message(raw("Subject: Hello", *qp, body="=20=20=\r\n=09\r\n")).reasons == ("empty body",)


def test_a_base64_body_is_decoded() -> None:
    def encoded(text: str) -> str:
        return base64.encodebytes(text.encode()).decode().replace("\n", "\r\n")

    b64 = ("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64")
    assert score_message(raw("Subject: Hello", *b64, body=encoded(POLITE_BODY))).points == 0
    assert score_message(raw("Subject: Hello", *b64, body=encoded("x" + " " * 60))).reasons[0].startswith("mostly white space")
    assert score_message(raw("Subject: Hello", *b64, body=encoded("\n\n\n"))).reasons == ("empty body",)
    # Broken padding and stray characters do not stop the reading.
    assert score_message(raw("Subject: Hello", *b64, body="SGVsbG8gQW5u!!*LCB0aGFua3M=X")).points == 0


def test_an_unknown_or_unusable_charset_reads_as_utf8() -> None:
    for charset in ("x-klingon", "idna", "rot13", "utf-8\x00"):
        data = raw("Subject: Hello", f'Content-Type: text/plain; charset="{charset}"', body="Grüße aus Köln\r\n")
        assert score_message(data).points == 0, charset


# multipart/alternative and HTML


def test_multipart_alternative_is_read_from_its_plain_part() -> None:
    message = order_confirmation()
    message.get_body().add_alternative("<html><body><p>Hello Ann,</p><p>your order left.</p></body></html>", subtype="html")
    assert score_message(message.as_bytes(policy=SMTP)).points == 0


def test_an_empty_plain_alternative_falls_back_to_the_html_one() -> None:
    html = "<html><body><p>Hello Ann, your order left our warehouse.</p></body></html>"
    assert score_message(multipart("alternative", text_part(""), text_part(html, "text/html"))).points == 0
    empty = multipart("alternative", text_part(" "), text_part("<html><body> <br> </body></html>", "text/html"))
    assert score_message(empty).reasons == ("empty body",)


def test_an_html_only_message_is_judged_on_its_text() -> None:
    html = "Content-Type: text/html; charset=utf-8"
    page = """<!DOCTYPE html>
<html>
  <head>
    <style>p { color: red; }</style>
  </head>
  <body>
    <table>
      <tr>
        <td>
          <p>Hello Ann, your order left our warehouse.</p>
        </td>
      </tr>
    </table>
  </body>
</html>"""
    # The markup's indentation is no white space a reader sees.
    assert score_message(raw("Subject: Hello", html, body=page)).points == 0
    assert score_message(raw("Subject: Hello", html, body="<html><body>\r\n  <div></div>\r\n</body></html>")).reasons == (
        "empty body",
    )
    padded = "<html><body>Click<br>" + "&nbsp;" * 30 + "<br/>" * 30 + "</body></html>"
    assert score_message(raw("Subject: Hello", html, body=padded)).reasons == ("mostly white space (92% of the body)",)


# Executable attachments


@pytest.mark.parametrize("extension", sorted(EXECUTABLE_EXTENSIONS))
def test_every_executable_extension_is_flagged(extension: str) -> None:
    data = multipart("mixed", text_part(POLITE_BODY), attachment(f'attachment; filename="setup.{extension.upper()}"'))
    assert score_message(data) == ContentScore(
        points=EXECUTABLE_ATTACHMENT_POINTS, reasons=(f"executable attachment (.{extension})",)
    )


@pytest.mark.parametrize(
    ("disposition", "content_type", "reason"),
    [
        ('attachment; filename="invoice.pdf.exe"', "application/pdf", ".exe disguised as .pdf"),
        ("attachment", 'application/octet-stream; name="update.scr"', ".scr"),
        ('attachment; filename="=?utf-8?B?aW52b2ljZS5leGU=?="', "application/octet-stream", ".exe"),
        ("attachment; filename*=UTF-8''facture%C3%A9.pdf.js", "application/octet-stream", ".js disguised as .pdf"),
        ('attachment; filename*0="run"; filename*1=".bat"', "application/octet-stream", ".bat"),
        ('attachment; filename="run.exe. "', "application/octet-stream", ".exe"),
        ('attachment; filename="jquery.min.js"', "application/javascript", ".js"),
        ('attachment; filename="setup.v2.MSI"', "application/octet-stream", ".msi"),
        ('inline; filename="hello.vbs"', "text/plain", ".vbs"),
    ],
)
def test_executables_are_found_however_their_name_is_written(disposition: str, content_type: str, reason: str) -> None:
    data = multipart("mixed", text_part(POLITE_BODY), attachment(disposition, content_type))
    assert score_message(data).reasons == (f"executable attachment ({reason})",)


@pytest.mark.parametrize(
    "name", ["report.exe.pdf", "exe", "notes.exe.txt", "photo.jpeg", "archive.tar.gz", ".exe.pdf", "setup.exe.zip"]
)
def test_names_that_only_mention_an_executable_are_not_flagged(name: str) -> None:
    data = multipart("mixed", text_part(POLITE_BODY), attachment(f'attachment; filename="{name}"'))
    assert score_message(data).points == 0


def test_an_executable_in_a_nested_multipart_is_found_and_counted_once() -> None:
    inner = (
        b'Content-Type: multipart/mixed; boundary="inner"\r\n\r\n--inner\r\n'
        + attachment('attachment; filename="a.exe"')
        + b"\r\n--inner\r\n"
        + attachment('attachment; filename="b.cmd"')
        + b"\r\n--inner--"
    )
    score = score_message(multipart("mixed", text_part(POLITE_BODY), inner, boundary="outer"))
    assert score == ContentScore(points=EXECUTABLE_ATTACHMENT_POINTS, reasons=("executable attachment (.exe)",))


def test_an_executable_alone_makes_a_high_scoring_message() -> None:
    data = multipart("mixed", text_part(POLITE_BODY), attachment('attachment; filename="invoice.pdf.exe"'))
    assert score_message(data).points >= HIGH_SCORE


# Many recipients


def addresses(count: int) -> list[str]:
    return [f'"Customer {i}" <customer{i}@example.net>' for i in range(count)]


def test_twenty_recipients_in_to_and_cc_are_many_and_nineteen_are_not() -> None:
    nineteen, twenty = addresses(19), addresses(20)
    assert score_message(raw("Subject: Hello", "To: " + ", ".join(nineteen))).points == 0
    assert score_message(raw("Subject: Hello", "To: " + ", ".join(nineteen[:10]), "Cc: " + ", ".join(nineteen[10:]))).points == 0
    score = score_message(raw("Subject: Hello", "To: " + ",\r\n ".join(twenty[:12]), "Cc: " + ", ".join(twenty[12:])))
    assert score == ContentScore(points=MANY_RECIPIENTS_POINTS, reasons=("many recipients (20 in To and Cc)",))


def test_recipients_of_repeated_to_headers_and_groups_add_up() -> None:
    to_headers = [f"To: {a}" for a in addresses(10)]
    group = "Cc: customers: " + ", ".join(addresses(30)[20:]) + ";"
    assert score_message(raw("Subject: Hello", *to_headers, group)).reasons == ("many recipients (20 in To and Cc)",)
    assert score_message(raw("Subject: Hello", "To: undisclosed-recipients:;")).points == 0


def test_a_malformed_address_list_does_not_hide_its_recipients() -> None:
    broken = "To: " + ", ".join(f"u{i}@example.net" for i in range(25)) + ', "unterminated <x@example.net>'
    assert score_message(raw("Subject: Hello", broken)).points == MANY_RECIPIENTS_POINTS
    nested = "To: " + "(" * 3000 + ", ".join(f"u{i}@example.net" for i in range(25))
    assert score_message(raw("Subject: Hello", nested)).points == MANY_RECIPIENTS_POINTS


# Line ends, broken MIME, size


def test_lf_only_line_ends_score_as_crlf_ones() -> None:
    crlf = order_confirmation("FREE MONEY NOW").as_bytes(policy=SMTP)
    lf = crlf.replace(b"\r\n", b"\n")
    assert (
        score_message(lf)
        == score_message(crlf)
        == ContentScore(SHOUTING_SUBJECT_POINTS, ("shouting subject (3 upper-case words)",))
    )


@pytest.mark.parametrize(
    "body",
    [
        b"--nothere\r\nContent-Type: text/plain\r\n\r\nhello\r\n--nothere--\r\n",  # boundary never used
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello, unterminated",
        b"--b--\r\n--b\r\n",
        b"--b\r\n--b\r\n--b\r\n",
        b"--bb\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n--bb--",
        b"preamble\r\n--b \t\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--  \r\nepilogue",
        b"--b\rContent-Type: text/plain\r\rhello\r--b--",
        b"--b\r\n" + b"X-Junk: \xff\xfe\x00\r\n" * 3 + b"\r\nhello\r\n--b--",
        b"\r\n--b",
        b"--b",
        b"",
    ],
)
@pytest.mark.parametrize(
    "content_type",
    ["multipart/mixed; boundary=b", "multipart/alternative", "multipart/mixed; boundary=", "multipart/x; boundary*=''%FF"],
)
def test_garbage_mime_structure_gives_a_score(body: bytes, content_type: str) -> None:
    for data in (
        raw("Subject: Hello", f"Content-Type: {content_type}", body=body),
        raw("Subject: Hello", f"Content-Type: {content_type}", body=body).replace(b"\r\n", b"\n"),
    ):
        score = score_message(data)
        assert score.points >= 0


def test_the_body_after_an_over_long_header_section_is_still_found() -> None:
    padding = [f"X-Tracking-{i}: {'x' * 70}" for i in range(2000)]  # some 170 KB
    assert score_message(raw("Subject: Hello", *padding, body=POLITE_BODY)).points == 0
    assert score_message(raw("Subject: Hello", *padding, body="")).reasons == ("empty body",)
    assert score_message(raw("Subject: Hello", *padding, body="").replace(b"\r\n", b"\n")).reasons == ("empty body",)


def test_a_multipart_without_its_boundary_is_read_as_plain_text() -> None:
    data = raw("Subject: Hello", "Content-Type: multipart/mixed", body=POLITE_BODY)
    assert score_message(data).points == 0


def test_only_the_first_megabyte_of_text_is_examined() -> None:
    body = "word " * (TEXT_LIMIT // 5) + " " * (3 * TEXT_LIMIT)
    assert score_message(raw("Subject: Hello", body=body)).points == 0


def best_of_three(data: bytes) -> float:
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        score_message(data)
        timings.append(time.perf_counter() - started)
    return min(timings)


def test_a_ten_megabyte_message_with_a_base64_attachment_scores_fast() -> None:
    message = order_confirmation()
    message.add_attachment(os.urandom(7_500_000), maintype="application", subtype="zip", filename="photos.zip")
    message.add_attachment(b"MZ", maintype="application", subtype="octet-stream", filename="photos.pdf.exe")
    data = message.as_bytes(policy=SMTP)
    assert len(data) > 10_000_000
    assert score_message(data).reasons == ("executable attachment (.exe disguised as .pdf)",)
    assert best_of_three(data) < 0.05


@pytest.mark.parametrize(
    "data",
    [
        raw("Subject: Hello", "Content-Type: text/html", body="&amp;<" * 2_000_000),
        raw("Subject: Hello", "Content-Transfer-Encoding: quoted-printable", body="=20" * 3_000_000),
        raw("Subject: Hello", 'Content-Type: multipart/mixed; boundary="b"', body=b"--b\r\n\r\nx\r\n" * 1_000_000),
        raw(
            "Subject: Hello",
            'Content-Type: multipart/mixed; boundary="b"',
            body=b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 200_000,
        ),
        raw("Subject: Hello", 'Content-Type: text/plain; name="' + ";" * 500_000, body="hi"),
        raw("Subject: Hello", "To: " + "<" * 1_000_000, body="hi"),
        raw("Subject: " + "=?utf-8?q?AB?= " * 300_000, body="hi"),
        b"X-H: v\r\n" * 1_000_000 + b"\r\nhi",
        b"\n\n" * 5_000_000,
    ],
    ids=[
        "entities",
        "qp-spaces",
        "tiny-parts",
        "nested-parts",
        "param-semicolons",
        "address-brackets",
        "encoded-words",
        "many-headers",
        "blank-lines",
    ],
)
def test_hostile_ten_megabyte_messages_score_in_bounded_time(data: bytes) -> None:
    assert best_of_three(data) < 0.25


# Property tests: whatever arrives, a score


FAST = settings(max_examples=400, deadline=None)
# fmt: off
TOKENS = [
    b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b"=", b'"', b"--", b"--b", b"--b--", b"=?", b"?=", b"?B?", b"?Q?", b"utf-8",
    b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: text/html", b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable", b"Content-Disposition: attachment; filename=", b"filename*0*=",
    b"To: ", b"Subject: ", b"a@b", b"<", b">", b"(", b")", b"&nbsp;", b"<br>", b"\xff", b"\x00", b"EXE", b".exe", b"A", b"\xc3\x89",
]
# fmt: on
mime_like = st.lists(st.sampled_from(TOKENS), max_size=300).map(b"".join)


def assert_scored(score: ContentScore) -> None:
    assert isinstance(score, ContentScore)
    assert score.points >= 0 and all(isinstance(reason, str) and reason for reason in score.reasons)
    assert len(score.reasons) <= 6


@FAST
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_always_get_a_score(data: bytes) -> None:
    assert_scored(score_message(data))


@FAST
@given(mime_like)
def test_arbitrary_mime_like_bytes_always_get_a_score(data: bytes) -> None:
    assert_scored(score_message(data))


@FAST
@given(
    st.sampled_from(["Subject", "To", "Cc", "Content-Type", "Content-Disposition", "Content-Transfer-Encoding"]),
    st.text(max_size=300),
    st.text(max_size=300),
)
def test_arbitrary_header_text_always_gets_a_score(name: str, value: str, second: str) -> None:
    for line_end in ("\r\n", "\n"):
        head = (
            f"{name}: {value}{line_end}Content-Type: multipart/mixed; boundary=b{line_end}Subject: {second}{line_end}{line_end}"
        )
        body = f"--b{line_end}Content-Type: text/plain; charset={second}{line_end}{name}: {value}{line_end}{line_end}{second}{line_end}--b--"
        assert_scored(score_message((head + body).encode("utf-8", "surrogatepass")))


@FAST
@given(st.text(max_size=200), st.text(max_size=200))
def test_arbitrary_subjects_and_file_names_always_get_a_score(subject: str, filename: str) -> None:
    message = EmailMessage()
    try:
        message["Subject"] = subject
        message.set_content("Hello")
        message.add_attachment(b"data", maintype="application", subtype="octet-stream", filename=filename)
        data = message.as_bytes(policy=SMTP)
    except (ValueError, TypeError):  # the stdlib refuses to write some of them; nothing to score then
        return
    assert_scored(score_message(data))
