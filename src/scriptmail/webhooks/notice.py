"""The mail that tells an endpoint's owner it was disabled because it kept failing (pure)."""

from __future__ import annotations

import email.policy
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from scriptmail import catalogues
from scriptmail.catalogues import N_

SUBJECT = N_("[{owner}] Webhook endpoint disabled: {url}")
GREETING = N_("Hello,")
DISABLED = N_("The webhook endpoint {url} of {owner} has been disabled on {when}: {reason}.")
KEPT = N_("Its events are no longer sent. Fix the receiver, then enable the endpoint again and send a test event.")
SIGNATURE = N_("The mail platform of {platform}")
TEXTS = (SUBJECT, GREETING, DISABLED, KEPT, SIGNATURE)


def disabled_notice(
    *, owner: str, url: str, reason: str, language: str, sender: str, recipient: str, platform: str, now: float
) -> tuple[str, bytes]:
    """`owner` is the hosting's name, or the platform's for a platform-wide endpoint."""
    _ = catalogues.translations(catalogues.MAIL, language).gettext
    when = datetime.fromtimestamp(now, timezone.utc)
    values = {"owner": owner, "url": url, "reason": reason, "when": when.strftime("%Y-%m-%d %H:%M UTC"), "platform": platform}
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = recipient
    subject = _(SUBJECT).format(**values)
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid(domain=platform)
    message["Auto-Submitted"] = "auto-generated"
    body = "\n\n".join((_(GREETING), _(DISABLED), _(KEPT))) + "\n\n-- \n" + _(SIGNATURE) + "\n"
    message.set_content(body.format(**values), cte="quoted-printable")
    return subject, bytes(message)
