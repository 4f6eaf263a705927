"""Per-hosting, per-minute counters: one upsert per hosting per commit, read by the hourly quota,
the policy engine and the volume charts in a few small rows instead of a scan of the log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from scriptmail.config import PlanSettings
from scriptmail.control.content import HIGH_SCORE
from scriptmail.control.policy import Signals, needs_baseline
from scriptmail.control.quota import Room, earliest_minute, room
from scriptmail.control.states import SENDING_STATES
from scriptmail.store.schema import activity, hosting_events, messages

COUNTERS = ("accepted", "flagged", "dispatched", "sent", "bounced", "unknown_user")


def minute_of(now: float) -> int:
    return int(now // 60)


def bump(connection: Connection, increments: Iterable[tuple[int, float, Mapping[str, int]]]) -> None:
    """Add counts: each item is (hosting id, time, {counter: n}); items of one minute are summed first."""
    totals: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    for hosting_id, at, counts in increments:
        row = totals[(hosting_id, minute_of(at))]
        for name, count in counts.items():
            row[name] += count
    rows = [
        {"hosting_id": hosting_id, "minute": minute, **counts}
        for (hosting_id, minute), counts in sorted(totals.items())  # one lock order for every writer
        if any(counts.values())
    ]
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(activity)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[activity.c.hosting_id, activity.c.minute],
            set_={name: activity.c[name] + statement.excluded[name] for name in COUNTERS},
        ),
        rows,
    )


def dispatched_since(connection: Connection, hosting_ids: Iterable[int], since_minute: int) -> dict[int, list[tuple[int, int]]]:
    """(minute, recipients first sent) per hosting since a minute, oldest first: what the quota counts."""
    result: dict[int, list[tuple[int, int]]] = defaultdict(list)
    rows = connection.execute(
        select(activity.c.hosting_id, activity.c.minute, activity.c.dispatched)
        .where(activity.c.hosting_id.in_(list(hosting_ids)), activity.c.minute >= since_minute, activity.c.dispatched > 0)
        .order_by(activity.c.hosting_id, activity.c.minute)
    )
    for row in rows:
        result[row.hosting_id].append((row.minute, row.dispatched))
    return result


def quota_room(connection: Connection, hosting_id: int, plan: PlanSettings, now: float, zone: ZoneInfo) -> Room:
    """How much the hosting may still send now under its plan (the same count the claim makes)."""
    since = earliest_minute(plan, now, zone)
    return room(plan, dispatched_since(connection, [hosting_id], since).get(hosting_id, []), now, zone)


def totals_since(connection: Connection, hosting_id: int, since_minute: int) -> dict[str, int]:
    """Every counter of one hosting summed since a minute."""
    row = connection.execute(
        select(*(func.coalesce(func.sum(activity.c[name]), 0).label(name) for name in COUNTERS)).where(
            activity.c.hosting_id == hosting_id, activity.c.minute >= since_minute
        )
    ).one()
    return dict(row._mapping)


def hourly_accepted(connection: Connection, hosting_id: int, since_minute: int, until_minute: int) -> dict[int, int]:
    """Messages accepted per hour (hour number = minute // 60) in [since, until): the volume baseline."""
    hour = activity.c.minute // 60
    rows = connection.execute(
        select(hour.label("hour"), func.sum(activity.c.accepted))
        .where(activity.c.hosting_id == hosting_id, activity.c.minute >= since_minute, activity.c.minute < until_minute)
        .group_by("hour")
    )
    return {int(hour): int(count) for hour, count in rows}


def busy_hostings(connection: Connection, since_minute: int) -> list[int]:
    """Hostings with any activity since a minute: the only ones the policy sweep looks at."""
    return list(connection.execute(select(activity.c.hosting_id).where(activity.c.minute >= since_minute).distinct()).scalars())


def prune(connection: Connection, before_minute: int) -> int:
    """Delete counters older than a minute, at most an hour of them per call (small transactions)."""
    oldest = connection.execute(select(func.min(activity.c.minute))).scalar()
    if oldest is None or oldest >= before_minute:
        return 0
    return connection.execute(delete(activity).where(activity.c.minute < min(before_minute, oldest + 60))).rowcount


def signals(connection: Connection, hosting_id: int, plan: PlanSettings, now: float, released_at: float | None = None) -> Signals:
    """Everything the policy engine needs about one hosting, in a few small queries.

    Only what happened since the hosting last started sending again (`released_at`: an unblock,
    the end of a purge) counts: the traffic that caused a block must not block it again at once.
    Messages are counted exactly from the log's (hosting, time) index; outcomes, which arrive
    later, from the per-minute counters after the release minute.
    """
    minute = minute_of(now)
    since = max(now - 3600, released_at or 0.0)
    accepted, flagged = connection.execute(
        select(func.count(), func.coalesce(func.sum(case((messages.c.score >= HIGH_SCORE, 1), else_=0)), 0)).where(
            messages.c.hosting_id == hosting_id, messages.c.received_at >= since
        )
    ).one()
    first_minute = minute_of(released_at) + 1 if released_at else 0
    recent = totals_since(connection, hosting_id, max(minute - plan.unknown_user_window // 60 + 1, first_minute))
    partial = Signals(accepted_hour=accepted, flagged_hour=flagged)
    baseline = None
    if needs_baseline(plan, partial):
        this_hour = minute // 60
        counts = hourly_accepted(connection, hosting_id, (this_hour - 168) * 60, this_hour * 60)
        baseline = [counts.get(h, 0) for h in range(this_hour - 168, this_hour)]
    outcomes = connection.execute(
        select(activity.c.sent, activity.c.bounced)
        .where(
            activity.c.hosting_id == hosting_id,
            activity.c.minute >= max(minute - 7 * 24 * 60, first_minute),
            (activity.c.sent + activity.c.bounced) > 0,
        )
        .order_by(activity.c.minute.desc())
        .limit(plan.bounce_window)  # every row holds at least one outcome
    ).all()
    return Signals(
        accepted_hour=accepted,
        flagged_hour=flagged,
        hourly_baseline=baseline,
        outcomes=[(row.sent, row.bounced) for row in outcomes],
        unknown_recent=recent["unknown_user"],
    )


def last_releases(connection: Connection, hosting_ids: Iterable[int]) -> dict[int, float]:
    """When each hosting last entered a sending state (unblock, end of a purge, operator)."""
    sending = [state.value for state in SENDING_STATES]
    rows = connection.execute(
        select(hosting_events.c.hosting_id, func.max(hosting_events.c.at))
        .where(hosting_events.c.hosting_id.in_(list(hosting_ids)), hosting_events.c.to_state.in_(sending))
        .group_by(hosting_events.c.hosting_id)
    )
    return dict(rows.all())
