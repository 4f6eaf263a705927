"""The daily error report: the mail a hosting's report recipient gets the day after its scripts' mail
failed (bounced, or expired, held mail included), so that the owner can find a hacked form or a broken
script.

Pure: builds the message from plain values; others gather the rows and queue it as system mail.
Every value of a row is the attacker's (subjects, addresses, SMTP replies): each is cleaned of control
characters and capped before it is shown, and HTML-escaped in the HTML part.
"""

from __future__ import annotations

import datetime
import email.policy
import html
import re
import textwrap
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scriptmail import catalogues
from scriptmail.catalogues import N_
from scriptmail.international.addresses import display as display_address

# The longest a shown value may be, in characters, an ellipsis included.
SUBJECT_LIMIT = 200
TEXT_LIMIT = 500
SCRIPT_LIMIT = 300
ADDRESS_LIMIT = 256  # an SMTP path (RFC 5321 4.5.3.1.3)
HOSTING_LIMIT = 255  # a domain name
URL_LIMIT = 2000  # the customer area's address: longer ones are not opened reliably
SCRIPTS_LISTED = 10  # scripts in the "by originating script" summary

# CRLF line ends, headers folded at 78, quoted-printable body lines within RFC 2045's 76.
# refold_source="none": the one header stored raw (X-Scriptmail-Report) keeps the folding we gave it.
_POLICY = email.policy.SMTP.clone(refold_source="none")
_REPORT_HEADER = "X-Scriptmail-Report"
_WIDTH = 72  # our own paragraphs in the text part (values are never wrapped): short once encoded

# How each language writes a day, a number's thousands and the colon after a label: not texts, conventions.
_FORMATS: dict[str, dict[str, str]] = {
    "en": {"date": "%Y-%m-%d", "thousands": ",", "colon": ":"},
    "es": {"date": "%d/%m/%Y", "thousands": ".", "colon": ":"},
    "fr": {"date": "%d/%m/%Y", "thousands": "\u00a0", "colon": "\u00a0:"},
    "de": {"date": "%d.%m.%Y", "thousands": ".", "colon": ":"},
    "it": {"date": "%d/%m/%Y", "thousands": ".", "colon": ":"},
    "pt": {"date": "%d/%m/%Y", "thousands": "\u00a0", "colon": ":"},  # Portugal's (pt_PT)
    "pl": {"date": "%d.%m.%Y", "thousands": "\u00a0", "colon": ":"},
}

# The texts, in English: the msgids of translations/LANG/LC_MESSAGES/daily.po, by what they are for (the
# signature is the block notice's too: its one translation is in notices.po).
TEXTS: dict[str, str] = {
    "mail_subject": N_("[{hosting}] Email errors on {day} ({count})"),
    "title": N_("Email errors of {hosting} on {day}"),
    "late": N_("This report is late: the mail service was unavailable at the usual time."),
    "intro": N_(
        "Some of the email sent by the scripts of your hosting {hosting} on {day} could not be delivered. "
        "Many failures from one script may mean a hacked form; the same error again and again usually "
        "points to a broken script or a wrong address."
    ),
    "sent": N_("Sent"),
    "bounced": N_("Bounced"),
    "expired": N_("Expired"),
    "suppressed": N_("Not attempted (suppression list)"),
    "expired_note": N_("Expired: not delivered in time, including mail held while sending was blocked."),
    "times_in": N_("Times are in the {timezone} time zone."),
    "failures": N_("Failures"),
    "time": N_("Time"),
    "status": N_("Status"),
    "sender": N_("Sender"),
    "recipient": N_("Recipient"),
    "subject": N_("Subject"),
    "reply": N_("Reply"),
    "script": N_("Script"),
    "status_bounced": N_("bounced"),
    "status_expired": N_("expired"),
    "status_suppressed": N_("suppressed"),
    "no_subject": N_("(no subject)"),
    "no_reply": N_("(none)"),
    "no_script": N_("(unknown)"),
    "shown": N_("Showing the {shown} most recent of {total} failures."),
    "link": N_("The full log of this hosting is in your customer area:"),
    "by_script": N_("Failures listed, by originating script:"),
    "footer": N_(
        "You receive this report because this address is the error-report recipient of {hosting}. "
        "It is sent only on days with errors; you can change the recipient in the customer area."
    ),
    "signature": N_("The mail platform of {platform}"),
}


def _words(language: str) -> dict[str, str]:
    """The texts in the language (English: the msgids themselves) and its conventions, by key."""
    gettext = catalogues.translations(catalogues.MAIL, language).gettext
    words = {key: gettext(text) for key, text in TEXTS.items()}
    if language == "fr":
        # French sets a space before ":" and ";"; a no-break one keeps them from starting a wrapped line.
        words = {key: value.replace(" :", "\u00a0:").replace(" ;", "\u00a0;") for key, value in words.items()}
    return {**words, **_FORMATS[language]}


_FIELDS = ("sender", "recipient", "subject", "reply", "script")


def _totals(report: DailyReport) -> tuple[str, ...]:
    """The totals shown: not-attempted mail only on a day that had some."""
    return ("sent", "bounced", "expired", "suppressed") if report.suppressed else ("sent", "bounced", "expired")  # a failure's lines under its time

# Control characters (C0, DEL, C1) and Unicode line/paragraph separators become spaces: nothing the
# attacker sends may start a line. Bidirectional controls are dropped: they could make a shown
# script path or address read differently from what it is. Lone surrogates could not be encoded.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_TOKEN = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class FailureRow:
    """One failed recipient: every string in it may be the attacker's."""

    at: float  # UTC epoch seconds of the failure (last attempt, or expiry)
    sender: str  # envelope sender
    recipient: str
    subject: str
    status: str  # "bounced", "expired" or "suppressed"
    code: int | None  # SMTP reply code, if any
    text: str  # SMTP reply text / reason
    script: str  # originating script (X-PHP-Originating-Script, or the sendmail caller's cwd/command), may be ""


@dataclass(frozen=True, slots=True)
class DailyReport:
    """What one hosting's report of one day shows."""

    hosting: str
    language: str  # one of store.hostings.LANGUAGES; anything else -> English
    day: datetime.date  # the day reported on
    timezone: str  # IANA name, e.g. "Europe/Madrid": times are shown in it
    sent: int  # recipients sent that day
    bounced: int
    expired: int
    rows: tuple[FailureRow, ...]  # newest first, already capped by the caller
    total_failures: int  # may be larger than len(rows): then "showing N of M" and the link
    area_url: str  # the customer area's log of this hosting ("" if none configured: then no link)
    late: bool = False
    suppressed: int = 0  # recipients not attempted because a suppression list has them  # sent after the usual hour because the service was down


@dataclass(frozen=True, slots=True)
class _Shown:
    """One failure as shown: every value cleaned, capped and put in words, not yet HTML-escaped."""

    when: str
    status: str
    sender: str
    recipient: str
    subject: str
    reply: str
    script: str


def subject_of(report: DailyReport) -> str:
    """The report's Subject in its language: hosting, day and number of failures."""
    words = _words(_language(report.language))
    return words["mail_subject"].format(
        hosting=_clean(report.hosting, HOSTING_LIMIT),
        day=report.day.strftime(words["date"]),
        count=_number(_total(report), words),
    )


def render(report: DailyReport, sender: str, recipient: str, platform: str, now: float) -> tuple[str, bytes]:
    """The report's Subject and the whole message: text and HTML alternatives, UTF-8, CRLF line ends."""
    language = _language(report.language)
    words = _words(language)
    zone, zone_name = _zone(report.timezone)
    rows = [_shown(row, words, zone) for row in report.rows]
    subject = subject_of(report)
    text = _text_part(report, words, rows, zone_name, platform)
    page = _html_part(report, language, words, rows, zone_name, platform)

    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.datetime.fromtimestamp(now, zone))
    message["Message-ID"] = make_msgid(domain=platform)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    message.set_raw(_REPORT_HEADER, _report_header(report))
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(page, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in message.iter_parts():
        del part["MIME-Version"]  # set_content adds it to each part; it belongs to the message only
    message["Content-Language"] = language  # after add_alternative, which moves Content-* into the parts
    return subject, bytes(message)


def _text_part(report: DailyReport, words: dict[str, str], rows: list[_Shown], zone_name: str, platform: str) -> str:
    """The plain-text body: one aligned block per failure, so that nothing needs a wide screen."""
    values = _values(report, words)
    colon = words["colon"]
    title = words["title"].format(**values)
    lines = [title, "-" * min(len(title), _WIDTH), ""]
    if report.late:
        lines += [_fill(words["late"]), ""]
    lines += [_fill(words["intro"].format(**values)), ""]

    totals = [(words[key] + colon, _number(getattr(report, key), words)) for key in _totals(report)]
    label_width = max(len(label) for label, _ in totals)
    number_width = max(len(number) for _, number in totals)
    lines += [f"{label:<{label_width}} {number:>{number_width}}" for label, number in totals]
    lines += ["", _fill(words["expired_note"]), _fill(words["times_in"].format(timezone=zone_name)), ""]

    field_width = max(len(words[field] + colon) for field in _FIELDS)
    for position, row in enumerate(rows, 1):
        lines.append(f"{position}. {row.when} · {row.status}")
        lines += [f"   {words[field] + colon:<{field_width}} {getattr(row, field)}" for field in _FIELDS]
        lines.append("")

    if _total(report) > len(rows):
        lines.append(_fill(words["shown"].format(**values)))
    url = _link(report.area_url)
    if url:
        lines += [words["link"], url]
    if _total(report) > len(rows) or url:
        lines.append("")

    scripts = _by_script(rows)
    if scripts:
        lines.append(words["by_script"])
        count_width = max(len(count) for _, count in scripts)
        lines += [f"   {count:>{count_width}}  {script}" for script, count in scripts]
        lines.append("")

    lines += [
        _fill(words["footer"].format(**values)),
        "",
        "-- ",
        words["signature"].format(platform=_clean(platform, HOSTING_LIMIT)),
    ]
    return "\n".join(lines) + "\n"


# Inline styles only: mail clients drop <style> blocks and must not fetch anything.
_BODY_STYLE = "margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.4;color:#1a1a1a"
_CELL_STYLE = "padding:4px 6px;border:1px solid #bbb;vertical-align:top;overflow-wrap:anywhere"  # kept short: once per cell
_HEAD_STYLE = _CELL_STYLE + ";text-align:left;background:#eee"
_NUMBER_STYLE = "padding:2px 8px;text-align:right"
_LATE_STYLE = "margin:0 0 12px;padding:8px 12px;background:#fff4e5;border-left:4px solid #b35900"


def _html_part(
    report: DailyReport, language: str, words: dict[str, str], rows: list[_Shown], zone_name: str, platform: str
) -> str:
    """The HTML body: a simple table with a caption and header cells, every value escaped."""
    values = {key: _escape(value) for key, value in _values(report, words).items()}
    title = words["title"].format(**values)
    lines = [
        "<!DOCTYPE html>",
        f'<html lang="{language}">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
        f"<title>{title}</title></head>",
        f'<body style="{_BODY_STYLE}">',
        f'<h1 style="margin:0 0 12px;font-size:20px">{title}</h1>',
    ]
    if report.late:
        lines.append(f'<p style="{_LATE_STYLE}"><strong>{_escape(words["late"])}</strong></p>')
    lines.append(f"<p>{words['intro'].format(**values)}</p>")

    lines.append('<table style="border-collapse:collapse;margin:0 0 8px">')
    for key in _totals(report):
        label, number = _escape(words[key]), _escape(_number(getattr(report, key), words))
        lines.append(
            f'<tr><th scope="row" style="padding:2px 8px 2px 0;text-align:left">{label}</th>'
            f'<td style="{_NUMBER_STYLE}">{number}</td></tr>'
        )
    lines.append("</table>")
    lines.append(
        f'<p style="font-size:12px;color:#555555">{_escape(words["expired_note"])}<br>'
        f"{_escape(words['times_in'].format(timezone=zone_name))}</p>"
    )

    if rows:
        lines.append('<table style="border-collapse:collapse;width:100%;margin:0 0 12px">')
        lines.append(f'<caption style="text-align:left;font-weight:bold;padding:0 0 6px">{_escape(words["failures"])}</caption>')
        headers = "".join(
            f'<th scope="col" style="{_HEAD_STYLE}">{_escape(words[key])}</th>' for key in ("time", "status", *_FIELDS)
        )
        lines += ["<thead>", f"<tr>{headers}</tr>", "</thead>", "<tbody>"]
        for row in rows:
            cells = "".join(f'<td style="{_CELL_STYLE}">{_escape(value)}</td>' for value in (row.when, row.status))
            cells += "".join(f'<td style="{_CELL_STYLE}">{_escape(getattr(row, field))}</td>' for field in _FIELDS)
            lines.append(f"<tr>{cells}</tr>")
        lines += ["</tbody>", "</table>"]

    if _total(report) > len(rows):
        lines.append(f"<p><strong>{words['shown'].format(**values)}</strong></p>")
    url = _link(report.area_url)
    if url:
        lines.append(f'<p>{_escape(words["link"])} <a href="{_escape(url)}">{_escape(url)}</a></p>')

    scripts = _by_script(rows)
    if scripts:
        lines.append(f'<h2 style="margin:16px 0 6px;font-size:16px">{_escape(words["by_script"])}</h2>')
        lines.append("<ul>")
        lines += [f"<li>{_escape(count)} \u2014 {_escape(script)}</li>" for script, count in scripts]
        lines.append("</ul>")

    lines += [
        f'<p style="font-size:12px;color:#555555">{words["footer"].format(**values)}</p>',
        f'<p style="font-size:12px;color:#555555">{_escape(words["signature"].format(platform=_clean(platform, HOSTING_LIMIT)))}</p>',
        "</body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"


def _shown(row: FailureRow, words: dict[str, str], zone: datetime.tzinfo) -> _Shown:
    """A row put in words: cleaned, capped, its time in the hosting's zone."""
    status = words.get(f"status_{row.status}") or _clean(row.status, 40)
    reply = _clean(row.text if row.code is None else f"{row.code} {row.text}", TEXT_LIMIT)
    return _Shown(
        when=_when(row.at, zone, words),
        status=status,
        sender=_clean(display_address(row.sender), ADDRESS_LIMIT) or "<>",
        recipient=_clean(display_address(row.recipient), ADDRESS_LIMIT),
        subject=_clean(row.subject, SUBJECT_LIMIT) or words["no_subject"],
        reply=reply or words["no_reply"],
        script=_clean(row.script, SCRIPT_LIMIT) or words["no_script"],
    )


def _clean(value: str, limit: int) -> str:
    """The value on one line, without control characters, at most `limit` characters long."""
    value = value[: limit * 4]  # bounded work whatever the size; spaces collapsed below may shorten it
    value = _SURROGATES.sub("\ufffd", _BIDI.sub("", _CONTROLS.sub(" ", value)))
    value = " ".join(value.split())
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return value


def _escape(value: str) -> str:
    return html.escape(value, quote=True)


def _when(at: float, zone: datetime.tzinfo, words: dict[str, str]) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(at, zone)
    except (OverflowError, OSError, ValueError):  # a time no calendar holds: show the row anyway
        return "?"
    return moment.strftime(f"{words['date']} %H:%M:%S")


def _zone(name: str) -> tuple[datetime.tzinfo, str]:
    """The hosting's time zone and its name; UTC when the name is not a known zone."""
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        return datetime.timezone.utc, "UTC"


def _language(language: str) -> str:
    return language if language in _FORMATS else "en"


def _values(report: DailyReport, words: dict[str, str]) -> dict[str, str]:
    """The values the report's sentences are filled with, not yet escaped."""
    return {
        "hosting": _clean(report.hosting, HOSTING_LIMIT),
        "day": report.day.strftime(words["date"]),
        "shown": _number(len(report.rows), words),
        "total": _number(_total(report), words),
    }


def _total(report: DailyReport) -> int:
    return max(report.total_failures, len(report.rows))


def _number(value: int, words: dict[str, str]) -> str:
    return f"{value:,}".replace(",", words["thousands"])


def _fill(paragraph: str) -> str:
    # Not on hyphens: "e-mail" must not be cut in two.
    return textwrap.fill(paragraph, width=_WIDTH, break_long_words=False, break_on_hyphens=False)


def _link(url: str) -> str:
    """The customer area's address if it is one a mail client may open, else nothing."""
    url = _clean(url, URL_LIMIT)
    return url if url.lower().startswith(("https://", "http://")) and " " not in url else ""


def _by_script(rows: list[_Shown]) -> list[tuple[str, str]]:
    """The scripts behind the failures shown, most failures first, with their counts."""
    counts = Counter(row.script for row in rows)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:SCRIPTS_LISTED]
    return [(script, str(count)) for script, count in ranked]


def _report_header(report: DailyReport) -> str:
    """X-Scriptmail-Report's value, folded by us: the email package, given the chance, may fold right after
    the colon, and Python's own parser then reads the value back with a leading space."""
    fields = ["daily", _parameter("hosting", _clean(report.hosting, HOSTING_LIMIT)), f"day={report.day.isoformat()}"]
    value = "; ".join(fields)
    return value if len(_REPORT_HEADER) + 2 + len(value) <= _POLICY.max_line_length else ";\r\n ".join(fields)


def _parameter(name: str, value: str) -> str:
    """name=value as a MIME parameter, always ASCII: a token (an A-label for an IDN), else a quoted
    string, else RFC 2231's percent-encoded UTF-8."""
    if not value.isascii():
        try:
            value = value.encode("idna").decode("ascii")
        except UnicodeError:
            return f"{name}*=utf-8''{urllib.parse.quote(value, safe='')}"
    if _TOKEN.fullmatch(value):
        return f"{name}={value}"
    return f'{name}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
