"""The daily error report: what the owner reads in each language, the message's shape as a mail client
parses it, and that nothing an attacker put in a subject, an address or an SMTP reply escapes its cell."""

from __future__ import annotations

import dataclasses
import datetime
import email
import email.policy
import re
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scriptmail.reports.daily import (
    ADDRESS_LIMIT,
    SCRIPT_LIMIT,
    SUBJECT_LIMIT,
    TEXT_LIMIT,
    DailyReport,
    FailureRow,
    render,
    subject_of,
)
from scriptmail.store.hostings import LANGUAGES

UTC = datetime.timezone.utc
DAY = datetime.date(2026, 11, 28)
NOW = datetime.datetime(2026, 11, 29, 7, 0, tzinfo=UTC).timestamp()
AREA = "https://panel.example/hostings/shop.example/mail/log"
HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted", "x-scriptmail-report"}
HEADERS |= {"mime-version", "content-type", "content-language"}


def at(hour: int, minute: int, day: datetime.date = DAY) -> float:
    return datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp()


CONTACT_FORM = FailureRow(
    at=at(15, 4),
    sender="wordpress@shop.example",
    recipient="ann@example.net",
    subject="Your order #1234 has shipped",
    status="bounced",
    code=550,
    text="5.1.1 <ann@example.net>: Recipient address rejected: User unknown",
    script="/home/shop/www/wp-content/plugins/contact/send.php",
)
HELD_NEWSLETTER = FailureRow(
    at=at(9, 0),
    sender="news@shop.example",
    recipient="bob@example.org",
    subject="November news",
    status="expired",
    code=None,
    text="held for 72 hours while sending was blocked",
    script="/home/shop/cron/newsletter.sh",
)


def report(**changes: object) -> DailyReport:
    """shop.example's report of 2026-11-28 in Madrid: two failures out of 1,234 sent, all shown."""
    base = DailyReport(
        hosting="shop.example",
        language="en",
        day=DAY,
        timezone="Europe/Madrid",
        sent=1234,
        bounced=1,
        expired=1,
        rows=(CONTACT_FORM, HELD_NEWSLETTER),
        total_failures=2,
        area_url=AREA,
    )
    return dataclasses.replace(base, **changes)


def mail(daily: DailyReport) -> tuple[str, bytes]:
    return render(daily, "reports@mail.platform.example", "owner@shop.example", "mail.platform.example", NOW)


def parsed(data: bytes) -> tuple[EmailMessage, str, str]:
    """The message as a mail client sees it, and its decoded text and HTML parts."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(preferencelist=("plain",))
    page = message.get_body(preferencelist=("html",))
    assert text is not None and page is not None
    # The parts' CRLF line ends come back as they were sent; a reader sees lines.
    return message, text.get_content().replace("\r\n", "\n"), page.get_content().replace("\r\n", "\n")


def assert_well_formed(data: bytes) -> EmailMessage:
    """One multipart/alternative of text then HTML, our headers only, CRLF everywhere, no line over 998."""
    bare = data.replace(b"\r\n", b"")
    assert b"\n" not in bare and b"\r" not in bare
    head, body = data.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 78  # quoted-printable keeps them short
    message, _, _ = parsed(data)
    assert sorted(name.lower() for name in message.keys()) == sorted(HEADERS)  # each once, none added
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert sorted(part.keys()) == ["Content-Transfer-Encoding", "Content-Type"]
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert not part.defects
    assert not message.defects
    return message


@pytest.mark.parametrize(
    ("language", "subject", "day", "totals", "when", "status"),
    [
        (
            "en",
            "[shop.example] Email errors on 2026-11-28 (2)",
            "2026-11-28",
            ["Sent:    1,234", "Bounced:     1", "Expired:     1"],
            "2026-11-28 16:04:00",
            "bounced",
        ),
        (
            "es",
            "[shop.example] Errores de correo del 28/11/2026 (2)",
            "28/11/2026",
            ["Enviados:   1.234", "Rechazados:     1", "Caducados:      1"],
            "28/11/2026 16:04:00",
            "rechazado",
        ),
        (
            "fr",
            "[shop.example] Erreurs d'e-mail du 28/11/2026 (2)",
            "28/11/2026",
            ["Envoyés\u00a0: 1\u00a0234", "Rejetés\u00a0:     1", "Expirés\u00a0:     1"],
            "28/11/2026 16:04:00",
            "rejeté",
        ),
    ],
)
def test_each_language_shows_subject_totals_and_every_field_of_a_failure(
    language: str, subject: str, day: str, totals: list[str], when: str, status: str
) -> None:
    daily = report(language=language)
    found_subject, data = mail(daily)
    message, text, page = parsed(data)

    assert found_subject == subject == subject_of(daily) == message["Subject"]
    assert message["Content-Language"] == language
    assert f'<html lang="{language}">' in page
    assert day in text.splitlines()[0] and day in page
    for line in totals:
        assert line in text.splitlines()
    for value in (when, status, *(getattr(CONTACT_FORM, field) for field in ("sender", "recipient", "subject", "script"))):
        assert value in text
        assert value.replace("<", "&lt;").replace(">", "&gt;") in page
    reply = f"550 {CONTACT_FORM.text}"
    assert reply in text
    assert reply.replace("<", "&lt;").replace(">", "&gt;") in page
    sent = totals[0].rsplit(" ", 1)[-1]
    assert f">{sent}</td>" in page


def test_other_languages_get_english() -> None:
    subject, data = mail(report(language="nl"))
    message, text, _ = parsed(data)
    assert subject == "[shop.example] Email errors on 2026-11-28 (2)"
    assert message["Content-Language"] == "en"
    assert "Sent:" in text


def test_message_is_text_and_html_alternatives_with_the_report_headers() -> None:
    _, data = mail(report())
    message = assert_well_formed(data)

    assert message["From"] == "reports@mail.platform.example"
    assert message["To"] == "owner@shop.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Scriptmail-Report"] == "daily; hosting=shop.example; day=2026-11-28"
    assert message["Message-ID"].endswith("@mail.platform.example>")
    assert message["Date"].datetime.timestamp() == NOW
    assert data.startswith(b"From: ")


def test_every_failure_appears_once_as_its_own_block_newest_first() -> None:
    _, data = mail(report())
    _, text, page = parsed(data)
    lines = text.splitlines()
    first = lines.index("1. 2026-11-28 16:04:00 · bounced")
    assert lines[first + 1 : first + 6] == [
        "   Sender:    wordpress@shop.example",
        "   Recipient: ann@example.net",
        "   Subject:   Your order #1234 has shipped",
        "   Reply:     550 5.1.1 <ann@example.net>: Recipient address rejected: User unknown",
        "   Script:    /home/shop/www/wp-content/plugins/contact/send.php",
    ]
    assert lines.index("2. 2026-11-28 10:00:00 · expired") == first + 7
    assert page.count("<tr><td") == 2
    assert HELD_NEWSLETTER.text in text
    assert max(len(line) for line in text.splitlines()) < 120  # one block per failure, not a wide table


def test_a_failure_without_code_subject_script_or_sender_says_so() -> None:
    bare = FailureRow(
        at=at(8, 0), sender="", recipient="c@example.com", subject="", status="bounced", code=None, text="", script=""
    )
    _, data = mail(report(rows=(bare,), total_failures=1))
    _, text, _ = parsed(data)
    assert "Sender:    <>" in text
    assert "(no subject)" in text and "(none)" in text and "(unknown)" in text


def test_times_are_shown_in_the_hosting_time_zone() -> None:
    late_evening = dataclasses.replace(CONTACT_FORM, at=at(23, 30))
    _, data = mail(report(rows=(late_evening,), total_failures=1, language="es"))
    _, text, page = parsed(data)
    assert "29/11/2026 00:30:00" in text and "29/11/2026 00:30:00" in page  # Madrid is UTC+1 in winter
    assert "Europe/Madrid" in text and "Europe/Madrid" in page

    summer = datetime.date(2026, 7, 14)
    in_summer = dataclasses.replace(CONTACT_FORM, at=at(23, 30, summer))
    _, data = mail(report(rows=(in_summer,), total_failures=1, day=summer))
    assert "2026-07-15 01:30:00" in parsed(data)[1]  # and UTC+2 in summer


@pytest.mark.parametrize("zone", ["", "Mars/Olympus_Mons", "../../etc/passwd", "Europe/Madrid\r\nBcc: x"])
def test_an_unknown_time_zone_shows_utc(zone: str) -> None:
    late_evening = dataclasses.replace(CONTACT_FORM, at=at(23, 30))
    _, data = mail(report(rows=(late_evening,), total_failures=1, timezone=zone))
    assert_well_formed(data)
    _, text, _ = parsed(data)
    assert "2026-11-28 23:30:00" in text and "UTC" in text


def test_a_capped_report_says_how_many_are_shown_and_links_to_the_full_log() -> None:
    subject, data = mail(report(total_failures=1500))
    _, text, page = parsed(data)
    assert subject == "[shop.example] Email errors on 2026-11-28 (1,500)"
    assert "Showing the 2 most recent of 1,500 failures." in text
    assert "Showing the 2 most recent of 1,500 failures." in page
    assert AREA in text.splitlines()
    assert f'<a href="{AREA}">{AREA}</a>' in page

    _, data = mail(report(total_failures=1500, language="es"))
    assert "Se muestran los 2 fallos más recientes de 1.500." in parsed(data)[1]
    _, data = mail(report(total_failures=1500, language="fr"))
    assert "Affichage des 2 échecs les plus récents sur 1\u00a0500." in parsed(data)[1]


def test_a_complete_report_does_not_say_it_is_capped() -> None:
    _, data = mail(report())
    _, text, page = parsed(data)
    assert "Showing" not in text and "Showing" not in page


def test_without_a_customer_area_there_is_no_link() -> None:
    _, data = mail(report(total_failures=1500, area_url=""))
    _, text, page = parsed(data)
    assert "Showing the 2 most recent of 1,500 failures." in text
    assert "customer area:" not in text and "href" not in page


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<script>x</script>", "https://a.example/\r\nBcc: x"])
def test_only_a_web_address_is_ever_linked(url: str) -> None:
    _, data = mail(report(total_failures=1500, area_url=url))
    _, text, page = parsed(data)
    assert "href" not in page and "<script" not in page.lower() and "javascript:" not in text


def test_a_late_report_says_so_at_the_top() -> None:
    for language, notice in [
        ("en", "This report is late"),
        ("es", "Este informe llega tarde"),
        ("fr", "Ce rapport arrive en retard"),
    ]:
        _, data = mail(report(late=True, language=language))
        _, text, page = parsed(data)
        assert notice in text.split("\n\n")[1]  # right under the title
        assert page.index(notice) < page.index("<table")
        _, data = mail(report(late=False, language=language))
        assert notice not in data.decode() and notice not in parsed(data)[1]


def test_the_scripts_behind_the_failures_are_summed_up_most_failures_first() -> None:
    form = [dataclasses.replace(CONTACT_FORM, recipient=f"victim{n}@example.net") for n in range(7)]
    _, data = mail(report(rows=(*form, HELD_NEWSLETTER), total_failures=8))
    _, text, page = parsed(data)
    summary = text[text.index("Failures listed, by originating script:") :].splitlines()
    assert summary[1].split() == ["7", CONTACT_FORM.script]
    assert summary[2].split() == ["1", HELD_NEWSLETTER.script]
    assert f"<li>7 \u2014 {CONTACT_FORM.script}</li>" in page


def test_the_html_part_has_no_scripts_styles_or_external_resources() -> None:
    _, data = mail(report(total_failures=1500))
    page = parsed(data)[2].lower()
    for forbidden in ("<script", "<style", "<link", "<img", "src=", "url(", "@import", "<iframe"):
        assert forbidden not in page
    assert re.findall(r'href="([^"]*)"', page) == [AREA.lower()]
    assert '<th scope="col"' in page and "<caption" in page  # a table screen readers can follow


# An attacker writes the subject, the sender (a contact form's "From"), the recipient (a form's
# "send a copy to") and, through the receiving server, the SMTP reply.
HOSTILE = FailureRow(
    at=at(12, 0),
    sender="evil@x.example\r\nBcc: everyone@example.com",
    recipient="<img src=x onerror=alert(1)>@example.net",
    subject='<script>alert("owned")</script>\r\nBcc: victim@example.com\r\n\r\n--===boundary==--',
    status="bounced",
    code=554,
    text="A" * 100_000,
    script="/home/shop/www/\x00up\u202eload.php\x1b[31m",
)


def test_hostile_values_are_escaped_in_html() -> None:
    _, data = mail(report(rows=(HOSTILE,), total_failures=1))
    page = parsed(data)[2]
    assert "<script" not in page.lower() and "<img" not in page
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;@example.net" in page


def test_line_breaks_in_values_never_add_headers_or_lines() -> None:
    _, data = mail(report(rows=(HOSTILE,), total_failures=1))
    message = assert_well_formed(data)
    _, text, _ = parsed(data)
    assert "Bcc" not in message and "victim@example.com" not in str(message["To"])
    for line in text.splitlines():
        assert not line.startswith(("Bcc", "--===")), line
    assert "Sender:    evil@x.example Bcc: everyone@example.com" in text
    assert "Bcc: victim@example.com --===boundary==--" in text


def test_control_characters_are_stripped() -> None:
    _, data = mail(report(rows=(HOSTILE,), total_failures=1))
    for part in parsed(data)[1:]:
        assert "\x00" not in part and "\x1b" not in part and "\u202e" not in part and "\r" not in part
        assert "/home/shop/www/ upload.php [31m" in part
    assert b"\x00" not in data


def test_long_values_are_capped() -> None:
    huge = FailureRow(
        at=at(12, 0),
        sender="s" * 5000 + "@example.com",
        recipient="r" * 5000 + "@example.com",
        subject="S" * 5000,
        status="bounced",
        code=550,
        text="T" * 100_000,
        script="/" + "p" * 5000,
    )
    _, data = mail(report(rows=(huge,), total_failures=1))
    assert len(data) < 20_000
    _, text, page = parsed(data)
    runs = {letter: max(len(run) for run in re.findall(f"{letter}+", text)) for letter in "sSTp"}
    assert runs == {"s": ADDRESS_LIMIT - 1, "S": SUBJECT_LIMIT - 1, "T": TEXT_LIMIT - 1 - len("550 "), "p": SCRIPT_LIMIT - 2}
    assert "T" * (TEXT_LIMIT - 5) + "…" in text and "T" * (TEXT_LIMIT - 5) + "…" in page


def test_non_ascii_and_emoji_survive_and_are_encoded() -> None:
    friendly = dataclasses.replace(
        CONTACT_FORM, subject="¡Pedido enviado! 📦 Größe ñandú 注文", recipient="josé@ejemplo.es", text="Boîte pleine 😢"
    )
    subject, data = mail(report(rows=(friendly,), total_failures=1, hosting="tienda-ñandú.example", language="es"))
    assert data.isascii()  # quoted-printable bodies and RFC 2047 headers
    message = assert_well_formed(data)
    _, text, page = parsed(data)
    for value in ("¡Pedido enviado! 📦 Größe ñandú 注文", "josé@ejemplo.es", "550 Boîte pleine 😢"):
        assert value in text and value in page
    assert message["Subject"] == subject == "[tienda-ñandú.example] Errores de correo del 28/11/2026 (1)"
    assert message["X-Scriptmail-Report"] == "daily; hosting=xn--tienda-and-z9a5i.example; day=2026-11-28"


@pytest.mark.parametrize(
    ("hosting", "parameter"),
    [
        ("a-rather-long-hosting-name.example", "hosting=a-rather-long-hosting-name.example"),
        ("🛒.example", "hosting=xn--e88h.example"),
        ("x" * 300, "hosting*=utf-8''" + "x" * 254 + "%E2%80%A6"),  # capped: the ellipsis is no A-label
    ],
)
def test_the_report_header_reads_back_whole_whatever_the_hosting(hosting: str, parameter: str) -> None:
    _, data = mail(report(hosting=hosting))
    message = assert_well_formed(data)
    assert message["X-Scriptmail-Report"] == f"daily; {parameter}; day=2026-11-28"


def test_a_hosting_name_with_line_breaks_stays_in_its_headers() -> None:
    subject, data = mail(report(hosting="shop.example\r\nBcc: x@example.com"))
    message = assert_well_formed(data)
    assert subject == "[shop.example Bcc: x@example.com] Email errors on 2026-11-28 (2)"
    assert message["X-Scriptmail-Report"] == 'daily; hosting="shop.example Bcc: x@example.com"; day=2026-11-28'


def test_a_lone_surrogate_or_an_impossible_time_still_renders() -> None:
    odd = dataclasses.replace(CONTACT_FORM, subject="broken \udcff bytes", at=float("nan"))
    far = dataclasses.replace(CONTACT_FORM, at=1e300)
    _, data = mail(report(rows=(odd, far), total_failures=2))
    assert_well_formed(data)
    _, text, _ = parsed(data)
    assert "broken \ufffd bytes" in text and "1. ? · bounced" in text and "2. ? · bounced" in text


CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# Strings an attacker would try, mixed with anything at all.
_NASTY = st.sampled_from(
    ["<script>", "<SCRIPT", "<scr", "ipt>", "\r\n", "\n.\n", "\r\n.\r\n", "\x00", "\u202e", "=?utf-8?q?=41?=", "--==", "&lt;"]
)
_STRINGS = st.lists(st.one_of(st.text(), _NASTY), max_size=8).map("".join)
_ROWS = st.builds(
    FailureRow,
    at=st.floats(),
    sender=_STRINGS,
    recipient=_STRINGS,
    subject=_STRINGS,
    status=st.one_of(st.sampled_from(["bounced", "expired"]), _STRINGS),
    code=st.none() | st.integers(),
    text=_STRINGS,
    script=_STRINGS,
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(_ROWS, max_size=5), hosting=_STRINGS, language=st.sampled_from([*LANGUAGES, "xx"]))
def test_any_row_renders_a_well_formed_message_with_no_script_in_its_html(
    rows: list[FailureRow], hosting: str, language: str
) -> None:
    _, data = mail(report(rows=tuple(rows), total_failures=len(rows), hosting=hosting, language=language))
    assert_well_formed(data)
    _, text, page = parsed(data)
    assert "<script" not in page.lower()
    for part in (text, page):
        assert not CONTROLS.search(part.replace("\n", ""))


def test_idn_addresses_are_shown_in_unicode() -> None:
    idn = dataclasses.replace(CONTACT_FORM, sender="josé@xn--bcher-kva.example", recipient="ann@xn--mller-kva.example")
    _, data = mail(report(rows=(idn,), total_failures=1))
    _, text, page = parsed(data)
    for shown in (text, page):
        assert "josé@bücher.example" in shown and "ann@müller.example" in shown and "xn--" not in shown


def test_suppressed_mail_is_counted_and_listed_on_a_day_that_had_some() -> None:
    trap = FailureRow(
        at=at(11, 30), sender="web@shop.example", recipient="gone@example.net", subject="Your invoice",
        status="suppressed", code=550, text="not attempted: gone@example.net is on the hosting's suppression list: no-such-user",
        script="/home/shop/www/invoice.php",
    )  # fmt: skip
    _, text, page = parsed(mail(report(suppressed=1, rows=(CONTACT_FORM, trap, HELD_NEWSLETTER), total_failures=3))[1])
    assert re.search(r"Not attempted \(suppression list\): +1", text)
    assert "gone@example.net" in text and "suppression list: no-such-user" in text and "suppressed" in text
    assert "Not attempted (suppression list)" in page
    _, plain, _ = parsed(mail(report())[1])
    assert "suppression list" not in plain  # a day without any says nothing of it
