"""What a report that came back to a VERP address does to its recipient.

A hard bounce turns a `sent` recipient `bounced` with the report's status and diagnostic (and
counts for the bounce policy); a feedback report (ARF) counts as a complaint for the spam policy;
a delay notice is only logged. Every report is kept, parsed or not. Applying the same report twice
changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from scriptmail.bounces.reports import Report
from scriptmail.control.policy import is_unknown_user
from scriptmail.model import AttemptResult, RecipientStatus
from scriptmail.store import activity, suppressions, webhooks
from scriptmail.store.schema import attempts, inbound_reports, messages, recipients
from scriptmail.webhooks.events import EventType

KEPT_BYTES = 256 * 1024  # of each report, for the log; the rest is not needed to understand it
NODE = "bounce-report"  # the attempts row of a later report names this instead of a delivery node


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: str  # bounced, delayed, complaint, ignored, unparsed, unknown-recipient, already-final
    hosting_id: int | None = None
    original_sender: str = ""


def apply_report(
    connection: Connection, recipient_id: int, report: Report, data: bytes, client: str, now: float, suppression_days: int = 30
) -> Applied:
    """Keep the report and apply it; a hard bounce may also put the address on its hosting's
    suppression list, as a bounce at delivery does."""
    row = connection.execute(
        select(recipients.c.id, recipients.c.status, recipients.c.hosting_id, recipients.c.address, messages.c.envelope_from)
        .join(messages, messages.c.id == recipients.c.message_id)
        .where(recipients.c.id == recipient_id)
    ).first()
    if row is None:
        return Applied("unknown-recipient")  # pruned from the log since
    connection.execute(
        insert(inbound_reports).values(
            recipient_id=recipient_id,
            received_at=now,
            kind=report.kind,
            client=client[:255],
            summary=_summary(report)[:2000],
            data=data[:KEPT_BYTES],
        )
    )
    applied = _outcome(connection, row, report, now, suppression_days)
    return Applied(applied, row.hosting_id, row.envelope_from)


def _outcome(connection: Connection, row, report: Report, now: float, suppression_days: int) -> str:
    if report.kind == "arf":
        activity.bump(connection, [(row.hosting_id, now, {"complaints": 1})])
        text = f"complaint ({report.feedback_type or 'abuse'}) reported by the recipient's provider"
        webhooks.recipient_events(connection, [(row.id, row.hosting_id, EventType.COMPLAINED, None, text)], now)
        _attempt(
            connection,
            row.id,
            now,
            None,
            f"complaint ({report.feedback_type or 'abuse'}) reported by the recipient's provider",
            "",
        )
        return "complaint"
    if report.kind not in ("dsn", "plain"):
        return report.kind if report.kind == "unparsed" else "ignored"
    failure = _failure_for(report, row.address)
    if failure is None:
        return "ignored"
    text = " ".join(part for part in (failure.status, failure.diagnostic) if part)[:2000] or "reported as undeliverable"
    if failure.action == "delayed" or not _permanent(failure):
        _attempt(connection, row.id, now, failure.code, f"delayed: {text}", failure.remote_mta)
        return "delayed"
    code = failure.code or 550
    if row.status != RecipientStatus.SENT.value:
        return "already-final"
    changed = connection.execute(
        update(recipients)
        .where(recipients.c.id == row.id, recipients.c.status == RecipientStatus.SENT.value)
        .values(status=RecipientStatus.BOUNCED.value, last_code=code, last_text=text, updated_at=now)
    ).rowcount
    if not changed:
        return "already-final"
    _attempt(connection, row.id, now, code, text, failure.remote_mta)
    unknown = int(is_unknown_user(code, text))
    activity.bump(connection, [(row.hosting_id, now, {"bounced": 1, "unknown_user": unknown})])
    activity.adjust_totals(connection, row.hosting_id, {"sent": -1})
    activity.count_script_bounces(connection, [row.id])
    webhooks.recipient_events(connection, [(row.id, row.hosting_id, EventType.BOUNCED, code, text)], now)
    bounce = AttemptResult(row.id, RecipientStatus.BOUNCED, code, text, failure.remote_mta, now, 0.0, hosting_id=row.hosting_id)
    suppressions.learn(connection, [bounce], now, suppression_days)
    return "bounced"


def _failure_for(report: Report, address: str):
    """The report's entry for our recipient (reports about several name each one), else its first."""
    if not report.failures:
        return None
    for failure in report.failures:
        if failure.recipient.lower() == address.lower():
            return failure
    return report.failures[0]


def _permanent(failure) -> bool:
    """The status decides when there is one (550 with 4.4.7 is not permanent); else the reply code."""
    if failure.status:
        return failure.status.startswith("5")
    return failure.code is not None and 500 <= failure.code < 600


def _attempt(connection: Connection, recipient_id: int, now: float, code: int | None, text: str, server: str) -> None:
    connection.execute(
        insert(attempts).values(
            recipient_id=recipient_id, at=now, node=NODE, mx_host=server[:300], code=code, text=text[:2000], duration=0.0
        )
    )


def _summary(report: Report) -> str:
    if report.kind == "arf":
        return f"feedback report: {report.feedback_type}"
    if report.kind == "unparsed":
        return f"unparsed: {report.reason}"
    return "; ".join(f"{f.recipient} {f.action} {f.status} {f.diagnostic}".strip() for f in report.failures[:5])
