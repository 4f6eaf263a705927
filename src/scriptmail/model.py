"""Plain values shared by every part: states, statuses, origins and the records that cross parts."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class HostingState(enum.StrEnum):
    """A hosting's sending state; the reference API's names are in REFERENCE_STATE."""

    ACTIVE = "active"
    BLOCKED = "blocked"
    PURGING = "purging"
    SPAM = "spam"
    BOUNCE = "bounce"
    FORCED = "forced"


REFERENCE_STATE: dict[HostingState, str] = {
    HostingState.ACTIVE: "ok",
    HostingState.BLOCKED: "ko",
    HostingState.PURGING: "purging",
    HostingState.SPAM: "spam",
    HostingState.BOUNCE: "bounce",
    HostingState.FORCED: "force",
}


class RecipientStatus(enum.StrEnum):
    """Where one recipient of one message stands. The recipient is the unit of delivery."""

    QUEUED = "queued"
    DEFERRED = "deferred"
    SENDING = "sending"
    SENT = "sent"
    BOUNCED = "bounced"
    EXPIRED = "expired"
    HELD = "held"
    PURGED = "purged"
    SUPPRESSED = "suppressed"  # not attempted: the address is on a suppression list


FINAL_STATUSES = frozenset(
    {
        RecipientStatus.SENT,
        RecipientStatus.BOUNCED,
        RecipientStatus.EXPIRED,
        RecipientStatus.PURGED,
        RecipientStatus.SUPPRESSED,
    }
)
WAITING_STATUSES = frozenset({RecipientStatus.QUEUED, RecipientStatus.DEFERRED})


class Origin(enum.StrEnum):
    """How a message reached intake."""

    SMTP = "smtp"
    SENDMAIL = "sendmail"
    MAILDROP = "maildrop"


@dataclass(frozen=True, slots=True)
class Submission:
    """A message as intake accepted it, ready to be committed with its recipients."""

    hosting_id: int
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    origin: Origin
    client: str
    subject: str = ""
    message_id: str = ""
    script: str = ""
    cwd: str = ""
    command: str = ""
    score: float = 0.0  # content score: how much the message looks like spam
    score_reasons: str = ""
    from_domain: str = ""  # the RFC 5322 From domain (A-label), counted per hosting
    dkim: str = ""  # how intake signed it: "signed" (its domain), "platform", "failed", "" (unsigned)


@dataclass(frozen=True, slots=True)
class Hosting:
    id: int
    name: str
    owner_email: str
    uid: int | None
    plan: str
    state: HostingState
    has_smtp_password: bool = False
    report_to: str | None = None  # where error reports go; None: the owner
    language: str = "en"
    notices: bool = True  # delivery status notices (DSN) to the senders of its mail

    @property
    def report_recipient(self) -> str:
        return self.report_to or self.owner_email


@dataclass(frozen=True, slots=True)
class DueRecipient:
    """A recipient claimed for one delivery attempt, with what the attempt needs."""

    id: int
    message_id: int
    hosting_id: int
    address: str
    domain: str
    envelope_from: str
    attempts: int
    first_queued_at: float
    released: bool = False  # its message was released one by one: sent though the hosting is blocked


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """The outcome of one delivery attempt for one recipient."""

    recipient_id: int
    status: RecipientStatus
    code: int | None
    text: str
    mx_host: str
    started_at: float
    duration: float
    next_attempt_at: float | None = None
    hosting_id: int = 0  # for the per-hosting counters (activity)
    warn_delay: bool = False  # deferred past `delivery.delay_warning`: its sender is told (once)
