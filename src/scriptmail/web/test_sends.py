"""The test send shared by the customer area and the API: a message handed to intake's own
acceptance (web.context.acceptor), so it meets the hosting's quota, signing and state exactly as
its scripts' mail does, counted per hour before it goes (a refused test counts too)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scriptmail.intake.accept import Provenance
from scriptmail.intake.checks import Refused, check_address
from scriptmail.model import Origin
from scriptmail.store import audit, test_sends
from scriptmail.store import domains as domain_store
from scriptmail.store.writer import StoreUnavailable
from scriptmail.testsend import message, outcome
from scriptmail.web.context import WebContext
from scriptmail.web.fields import EMAIL_PATTERN

_EMAIL = re.compile(EMAIL_PATTERN)


class TestSendError(Exception):
    """The test cannot be sent; `kind` says why: address, sender, unavailable."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Senders:
    """The From addresses a test may use: one per domain of the hosting (its name, its sending domains)."""

    addresses: tuple[str, ...]

    @property
    def default(self) -> str:
        return self.addresses[0]


def senders(connection, hosting_id: int, hosting_name: str) -> Senders:
    """Verified sending domains first (their tests are signed with them), then the others, then the name."""
    found = [row for row in domain_store.list_domains(connection, hosting_id) if row["state"] != "not-set-up"]
    found.sort(key=lambda row: row["state"] != "verified")
    domains = [row["domain"] for row in found] + [hosting_name]
    return Senders(
        tuple(dict.fromkeys(f"test@{domain}" for domain in domains if _EMAIL.match(f"test@{domain}"))) or ("test@invalid",)
    )


def _address(text: str) -> str:
    address = text.strip()
    if not _EMAIL.match(address):
        raise TestSendError("address", "not a valid e-mail address")
    try:
        return check_address(address)
    except Refused as refused:
        raise TestSendError("address", refused.reply) from None


async def send(
    context: WebContext, hosting_id: int, hosting_name: str, to: str, sender: str, actor: audit.Actor, by: str, via: str = "customer area"
) -> int:
    """Send one test message; its id in test_sends. TestSendError, or TooManyTests past the hour's allowance."""
    address = _address(to)
    allowed = await context.read(lambda c: senders(c, hosting_id, hosting_name))
    sender = sender.strip() or allowed.default
    if sender not in allowed.addresses:
        raise TestSendError("sender", "the sender must be one of: " + ", ".join(allowed.addresses))
    acceptor = context.acceptor
    if acceptor is None:
        raise TestSendError("unavailable", "this process does not take mail")
    now = context.clock()
    limit = context.settings.web.test_sends_per_hour

    def reserve(connection) -> int:
        """The test counted against the hour, and audited, before it goes (a refused one too)."""
        test_id = test_sends.reserve(connection, hosting_id, sender, address, by, now, limit)
        audit.record(connection, actor, "test.send", f"test {test_id}", now, after={"to": address, "sender": sender}, hosting=hosting_name)
        return test_id

    test_id = await context.write(reserve)
    data = message.compose(hosting_name, sender, address, by, now, context.settings.hostname)
    # Shown as the message's provenance in the log: a test, who asked for it and where.
    provenance = Provenance(origin=Origin.SMTP, client=f"test send ({via})", command=f"test send by {by}"[:4096])
    try:
        hosting = await acceptor.hosting_by_name(hosting_name)
        if hosting is None:
            raise Refused("550 5.7.1 this hosting does not send")
        queue_id, submission = await acceptor.accept_submission(hosting, sender, [address], data, provenance)
    except Refused as refusal:
        reply = refusal.reply
        await context.write(lambda c: test_sends.record(c, test_id, refused=reply))
        return test_id
    except StoreUnavailable as error:
        raise TestSendError("unavailable", f"the store is unavailable: {error}") from None
    signed_by = message.signature_domains(submission.data)
    await context.write(
        lambda c: test_sends.record(
            c, test_id, queue_id=queue_id, dkim=submission.dkim, dkim_domain=signed_by[0] if signed_by else ""
        )
    )
    return test_id


def view(row: dict[str, Any]) -> dict[str, Any]:
    """A test as the page and the API name it: its phase, whether it is over, the reply, the signature."""
    name = outcome.phase(row)
    return {
        "id": row["id"], "created_at": row["created_at"], "sender": row["sender"], "to": row["address"],
        "queue_id": row["queue_id"], "phase": name, "final": outcome.is_final(name), "reply": outcome.reply(row),
        "code": row["last_code"] if not row["refused"] else None, "attempts": row["attempts"] or 0,
        "signed": bool(row["dkim_domain"]), "dkim": row["dkim"] or "", "dkim_domain": row["dkim_domain"],
        "recipient_id": row["recipient_id"],
    }  # fmt: skip
