"""The mail scriptmail itself sends to a hosting's owner when the policy engine blocks it.

Pure: builds the message; the store queues it as system mail, which no block ever holds.
"""

from __future__ import annotations

import email.policy
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from scriptmail import catalogues
from scriptmail.catalogues import N_
from scriptmail.control.evidence import describe
from scriptmail.model import HostingState

# CRLF line ends, lines folded at 78 (quoted-printable body lines stay within RFC 2045's 76).
_POLICY = email.policy.SMTP

# The texts, in English: the msgids of translations/LANG/LC_MESSAGES/notices.po, one a paragraph (SIGNATURE
# is the daily report's too: its one translation is in notices.po).
SUBJECT = N_("[{hosting}] E-mail from your scripts blocked ({state})")
GREETING = N_("Hello,")
BLOCKED = N_("The e-mail sent by the scripts of your hosting {hosting} has been blocked automatically on {when}.")
DETECTED = N_("What was detected: {reason}.")
KEPT = N_(
    "Nothing has been deleted: the messages already waiting, and those your scripts send from now on, "
    "are kept for {hold_hours} hours."
)
WHAT_TO_DO = N_("What to do:")
STEP_FIND = N_(
    "1. Find the script that sends this mail (the customer area lists which script sent each message) "
    "and fix or remove it; change the passwords of the site if it was hacked."
)
STEP_PURGE = N_("2. Then purge the waiting messages (they are deleted and sending resumes by itself){unblock}.")
UNBLOCK_BOUNCE = N_(", or unblock sending if the addresses are right (the allowed share of errors is doubled)")
SIGNATURE = N_("The mail platform of {platform}")
SAMPLES = N_("Some of the messages concerned (queue id, time, recipient, subject, script):")
TEXTS = (SUBJECT, GREETING, BLOCKED, DETECTED, KEPT, WHAT_TO_DO, STEP_FIND, STEP_PURGE, UNBLOCK_BOUNCE, SIGNATURE, SAMPLES)


def block_notice(
    *,
    hosting: str,
    state: HostingState,
    reason: str,
    language: str,
    sender: str,
    recipient: str,
    platform: str,
    hold_hours: float,
    now: float,
    evidence: dict | None = None,
    zone: ZoneInfo | None = None,
) -> tuple[str, bytes]:
    """The owner's notification of an automatic block, in the hosting's language (English otherwise):
    its subject and the whole message, with the evidence (figures, window, samples) when there is one."""
    _ = catalogues.translations(catalogues.MAIL, language).gettext  # English: the msgids themselves
    when = datetime.fromtimestamp(now, timezone.utc)
    values = {
        "hosting": hosting,
        "state": state.value,
        "reason": reason.rstrip("."),
        "when": when.strftime("%Y-%m-%d %H:%M UTC"),
        "hold_hours": f"{hold_hours:g}",
        "platform": platform,
        "unblock": _(UNBLOCK_BOUNCE) if state is HostingState.BOUNCE else "",
    }
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = recipient
    subject = _(SUBJECT).format(**values)
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid(domain=platform)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    paragraphs = [_(GREETING).format(**values), _(BLOCKED).format(**values), _(DETECTED).format(**values)]
    if evidence:
        paragraphs.append(_evidence_text(evidence, _, language, zone or ZoneInfo("UTC")))
    paragraphs += [_(KEPT).format(**values), "\n".join(_(text).format(**values) for text in (WHAT_TO_DO, STEP_FIND, STEP_PURGE))]
    body = "\n\n".join(paragraphs) + "\n\n-- \n" + _(SIGNATURE).format(**values) + "\n"
    message.set_content(body, cte="quoted-printable")
    return subject, bytes(message)


def _evidence_text(evidence: dict, gettext, language: str, zone: ZoneInfo) -> str:
    """The figures against their threshold, the window, and the sample messages, one a line.
    Values from the messages (subject, script) are never format strings: they are joined as they are."""
    told = describe(evidence, gettext, language, zone)
    lines = [f"{told['signal']}: {told['figures']}.", f"{told['window']}."]
    if evidence.get("samples"):
        lines.append(gettext(SAMPLES))
        for sample in evidence["samples"]:
            at = datetime.fromtimestamp(sample["at"], zone).strftime("%Y-%m-%d %H:%M")
            subject = " ".join(str(sample["subject"]).split())[:100]
            lines.append(f"  #{sample['id']}  {at}  {sample['to']}  \"{subject}\"  {sample['script'] or '-'}")
    return "\n".join(lines)
