"""The policy sweep: look at the hostings that sent anything in the last minutes, block those the
policy engine (control.policy) says must stop, and tell their owners by mail."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from scriptmail.config import Settings
from scriptmail.control.notices import block_notice
from scriptmail.control.policy import Detection, evaluate
from scriptmail.control.states import Actor, TransitionNotAllowed
from scriptmail.model import HostingState
from scriptmail.store import activity, evidence
from scriptmail.store.hosting_control import change_state
from scriptmail.store.hostings import SYSTEM_HOSTING, get_hosting
from scriptmail.store.schema import hostings
from scriptmail.store.system_mail import queue_system_mail

log = logging.getLogger(__name__)

RECENT_MINUTES = 3  # a hosting whose counters moved this recently is looked at again


@dataclass(frozen=True, slots=True)
class Block:
    hosting: str
    state: HostingState
    reason: str
    evidence: dict | None = None


def find_detections(engine: Engine, settings: Settings, now: float) -> list[tuple[int, Detection]]:
    """Read-only: which hostings deserve an automatic block now."""
    found = []
    with engine.connect() as connection:
        busy = activity.busy_hostings(connection, activity.minute_of(now) - RECENT_MINUTES)
        if not busy:
            return []
        rows = connection.execute(
            select(hostings.c.id, hostings.c.name, hostings.c.plan, hostings.c.state).where(hostings.c.id.in_(busy))
        ).all()
        released = activity.last_releases(connection, busy)
        for row in rows:
            plan = settings.plan(row.plan)
            state = HostingState(row.state)
            if row.name == SYSTEM_HOSTING or not plan.policies:
                continue
            signals = activity.signals(connection, row.id, plan, now, released.get(row.id))
            detection = evaluate(plan, state, signals)
            if detection is not None:
                found.append((row.id, detection))
    return found


def apply_detection(connection: Connection, settings: Settings, hosting_id: int, detection: Detection, now: float) -> Block | None:
    """Block the hosting and queue the owner's notice, in one transaction (None: already blocked)."""
    hosting = get_hosting(connection, hosting_id)
    found = evidence.complete(connection, hosting_id, detection.evidence, now) if detection.evidence else None
    try:
        change = change_state(connection, hosting.name, detection.action, Actor.POLICY, now, reason=detection.reason, evidence=found)
    except TransitionNotAllowed:
        return None
    subject, data = block_notice(
        hosting=hosting.name,
        state=change.after,
        reason=detection.reason,
        language=hosting.language,
        sender=settings.control.notify_from,
        recipient=hosting.owner_email,
        platform=settings.hostname,
        hold_hours=settings.control.hold_seconds / 3600,
        now=now,
        evidence=found,
        zone=ZoneInfo(settings.timezone),
    )
    queue_system_mail(
        connection, settings.control.notify_from, hosting.owner_email, data, subject, now, "policy notice", domains=settings.domains
    )
    return Block(hosting.name, change.after, detection.reason, found)
