"""The notice itself: one `multipart/report; report-type=delivery-status` message (RFC 3464) per
message and kind of news, for all its recipients that have it. Pure: values in, bytes out.

Built with Python's own `email` package: it generates (and parses) `message/delivery-status`
as the blocks of fields RFC 3464 defines, so no other library is needed.

A notice about a message that needed SMTPUTF8 is a global one (RFC 6533): its addresses are
`utf-8` typed and written in UTF-8 (domains as U-labels), in `message/global-delivery-status`,
with the header returned as `message/global-headers`, and its own header fields in UTF-8
(RFC 6532) instead of encoded-words; it needs SMTPUTF8 itself, as the message did. ASCII mail
keeps RFC 3464's `rfc822` types.
"""

from __future__ import annotations

import email.policy
import io
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.generator import BytesGenerator
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid

from scriptmail import catalogues
from scriptmail.catalogues import N_
from scriptmail.control.notices import SIGNATURE
from scriptmail.international import smtputf8
from scriptmail.international.addresses import display, is_ascii_local

_POLICY = email.policy.SMTP  # CRLF line ends, folded at 78
_GLOBAL_POLICY = email.policy.SMTPUTF8  # the same, with UTF-8 header fields (RFC 6532)
HEADER_BYTES = 64 * 1024  # of the original message's header returned with the notice
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

SUBJECT_FAILED = N_("Undelivered mail returned to sender")
SUBJECT_DELAYED = N_("Delayed mail (still being retried)")
INTRO_FAILED = N_(
    "This is the mail system of {platform}. Your message could not be delivered to the recipients "
    "below, and it will not be tried again."
)
INTRO_DELAYED = N_(
    "This is the mail system of {platform}. Your message has not been delivered yet to the recipients "
    "below. It will be tried again until {until}: you do not need to send it again."
)
ABOUT = N_('The message: "{subject}", received on {arrival}.')
ATTACHED = N_("A report for mail programs, and the header of your message, are attached.")
TEXTS = (SUBJECT_FAILED, SUBJECT_DELAYED, INTRO_FAILED, INTRO_DELAYED, ABOUT, ATTACHED)


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """One recipient of the notice: its address and the last thing that happened to it."""

    address: str
    code: int | None
    text: str  # the server's reply, or why no server was asked
    remote: str  # the server that answered ("mx.example[192.0.2.1]:25"), or ""
    at: float  # when


def status_code(code: int | None, text: str, delayed: bool) -> str:
    """The RFC 3463 status: the one in the reply if it has one, else one for its class."""
    found = _STATUS.search(text)
    if found and (code is None or found.group(1) == str(code)[0]):
        return found.group(0)
    if code is not None and 500 <= code < 600:
        return "5.0.0"
    return "4.0.0" if delayed else "4.4.7"  # no final answer: still retried, or the lifetime ran out


def is_global(sender: str, addresses: list[str], original: bytes) -> bool:
    """Whether the notice must be a global one (RFC 6533): the message needed SMTPUTF8, because an
    envelope address has a UTF-8 local part or its header block is not ASCII."""
    if smtputf8.header_block_needs_it(original):
        return True
    return not all(is_ascii_local(address) for address in (sender, *addresses))


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text.replace("\r", " ").replace("\n", " ")).strip()


def notice(
    *,
    action: str,
    recipients: list[RecipientReport],
    sender: str,
    from_address: str,
    reporting_mta: str,
    arrival: float,
    subject: str,
    original: bytes,
    language: str,
    now: float,
    retry_until: float | None = None,
) -> tuple[str, bytes]:
    """The notice for `recipients` of one message (`action` "failed" or "delayed"), to `sender`,
    in `language` (English otherwise): its subject and its bytes."""
    _ = catalogues.translations(catalogues.MAIL, language).gettext
    delayed = action == "delayed"
    worldwide = is_global(sender, [recipient.address for recipient in recipients], original)
    policy = _GLOBAL_POLICY if worldwide else _POLICY
    shown = display if worldwide else str  # U-labels only where UTF-8 may travel
    when = datetime.fromtimestamp(now, timezone.utc)
    values = {
        "platform": reporting_mta,
        "until": datetime.fromtimestamp(retry_until or now, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "subject": _clean(subject)[:200],
        "arrival": datetime.fromtimestamp(arrival, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    title = _(SUBJECT_DELAYED if delayed else SUBJECT_FAILED)
    lines = [_(INTRO_DELAYED if delayed else INTRO_FAILED).format(**values), "", _(ABOUT).format(**values), ""]
    for recipient in recipients:
        reply = f"{recipient.code or ''} {_clean(recipient.text)}".strip()
        lines.append(f"  <{display(recipient.address)}>: {reply[:500]}")
    lines += ["", _(ATTACHED), "", "-- ", _(SIGNATURE).format(**values), ""]

    report = MIMEMultipart("report", report_type="delivery-status", policy=policy)
    report["From"] = formataddr(("Mail Delivery System", from_address))
    report["To"] = shown(sender)
    report["Subject"] = title
    report["Date"] = format_datetime(when)
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834: no automatic answer to this
    report.attach(MIMEText("\n".join(lines), "plain", "utf-8", policy=policy))

    kind = "utf-8" if worldwide else "rfc822"
    blocks = [[("Reporting-MTA", f"dns; {reporting_mta}"), ("Arrival-Date", format_datetime(_utc(arrival)))]]
    for recipient in recipients:
        fields = [("Final-Recipient", f"{kind}; {shown(recipient.address)}")]
        if worldwide:
            # No ORCPT is kept, so the original recipient is the address as intake accepted it.
            fields.append(("Original-Recipient", f"utf-8; {display(recipient.address)}"))
        fields += [("Action", action), ("Status", status_code(recipient.code, recipient.text, delayed))]
        if recipient.remote:
            fields.append(("Remote-MTA", f"dns; {recipient.remote.partition('[')[0] or recipient.remote}"))
        if recipient.code is not None:
            fields.append(("Diagnostic-Code", f"smtp; {recipient.code} {_clean(recipient.text)[:900]}"))
        fields.append(("Last-Attempt-Date", format_datetime(_utc(recipient.at))))
        if delayed and retry_until:
            fields.append(("Will-Retry-Until", format_datetime(_utc(retry_until))))
        blocks.append(fields)
    report.attach(_global_status(blocks) if worldwide else _status(blocks))

    head = original.split(b"\r\n\r\n", 1)[0][:HEADER_BYTES].decode("utf-8", "replace")
    if worldwide:
        report.attach(_global_part("global-headers", head.replace("\r\n", "\n").rstrip("\n") + "\n"))
    else:
        charset = "us-ascii" if head.isascii() else "utf-8"
        report.attach(MIMEText(head.replace("\r\n", "\n") + "\n", "rfc822-headers", charset, policy=_POLICY))
    if not worldwide:
        return title, report.as_bytes(policy=policy)
    out = io.BytesIO()
    _GlobalGenerator(out, policy=policy).flatten(report)
    return title, out.getvalue()


class _GlobalGenerator(BytesGenerator):
    """Writes `message/global-*` parts as the UTF-8 text they are: the email package knows them
    only as `message/*`, which it would take for an encapsulated ASCII message."""

    _handle_message_global_delivery_status = BytesGenerator._handle_text
    _handle_message_global_headers = BytesGenerator._handle_text


def _status(blocks: list[list[tuple[str, str]]]) -> Message:
    status = Message(policy=_POLICY)
    status.set_type("message/delivery-status")
    status.set_payload([_fields(*fields) for fields in blocks])
    return status


def _global_status(blocks: list[list[tuple[str, str]]]) -> Message:
    """`message/global-delivery-status`: the same blocks as UTF-8 text (the email package builds
    blocks only for `message/delivery-status`)."""
    text = "\n\n".join("\n".join(f"{name}: {_octets(_clean(value), 900)}" for name, value in fields) for fields in blocks)
    return _global_part("global-delivery-status", text + "\n")


def _octets(text: str, limit: int) -> str:
    """At most `limit` octets of UTF-8, cut between characters: unfolded lines stay under RFC 5322's 998."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _global_part(subtype: str, text: str) -> Message:
    """A `message/global-*` part: UTF-8 lines sent as they are (8bit: the notice travels in SMTPUTF8)."""
    part = Message(policy=_GLOBAL_POLICY)
    part.set_type(f"message/{subtype}")
    part["Content-Transfer-Encoding"] = "8bit"
    part.set_payload(text.replace("\n", "\r\n").encode("utf-8").decode("ascii", "surrogateescape"))
    return part


def _fields(*pairs: tuple[str, str]) -> Message:
    block = Message(policy=_POLICY)
    for name, value in pairs:
        block[name] = value
    return block


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, timezone.utc)
