"""The Scripts e-mail page of a hosting (the customer area's first tab), made cheap to serve while
its owner keeps it open.

Each view reads one snapshot of the hosting in one statement (its row, its counters, the newest
history entry) and, in the same connection, only what the kept blocks lack. The page is four
blocks (overview and actions, volumes, emails in error, state history); each is kept in a
PageCache with the part of the snapshot it shows and the minute, so a block is drawn again as soon
as what it shows changes, and at least once a minute (the hour and day of the charts move on).
The layout around the blocks (the session's e-mail, flash and CSRF token) is drawn at every view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import Connection, Select, bindparam, func, select, true

from scriptmail.catalogues import N_
from scriptmail.config import PlanSettings
from scriptmail.control.states import REQUESTS, SENDING_STATES, Action, Actor
from scriptmail.model import HostingState
from scriptmail.store import activity, stats
from scriptmail.store.hosting_control import REPEAT_SPAM_SECONDS, history
from scriptmail.store.schema import COUNTER_NAMES, activity_daily, hosting_events, hosting_totals, hostings
from scriptmail.web import charts, i18n
from scriptmail.web.page_cache import PageCache
from scriptmail.web.pages import Page, allowed

LIMITS = (10, 20, 50, 100)
MAX_BOUNCE_OFFSET = 10_000  # the reads of "Emails in error" grow with the offset: keep them bounded
HISTORY_ROWS = 50
TOTALS = ("sent", "bounced", "expired", "purged", "complaints", "suppressed")  # hosting_totals' counters
_ERROR_TOTALS = tuple(TOTALS.index(name) for name in ("bounced", "expired", "suppressed"))
_CHARTED = tuple(COUNTER_NAMES.index(name) for name in sorted({*charts.DAY_SERIES, *charts.HOUR_SERIES}))

# What each action does, said before it is confirmed (the guide's "Importante" notes).
ACTIONS = {
    "block": ("BLOCK", N_("Block sending"), "warning",
              N_("No email is deleted: emails are held for up to 72 hours. During that time you can unblock sending or purge them.")),
    "purge": ("PURGE", N_("Purge the sending queue"), "danger",
              N_("Every email waiting to be sent is deleted for good, then sending is unblocked by itself. This can take a few minutes.")),
    "unblock": ("UNBLOCK", N_("Unblock sending"), "primary",
                N_("Sending resumes with the next email, and the held emails go back into the queue and are sent.")),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one statement says of a hosting: enough to draw the top of its page, and to tell
    whether each kept block still shows the truth."""

    name: str
    state: HostingState
    plan: str
    report_recipient: str
    totals: tuple[int, ...]  # hosting_totals, in TOTALS order (zeros before the first mail)
    today: tuple[int, ...]  # today's activity_daily row, in COUNTER_NAMES order
    latest_event: int  # id of the newest state-history entry, 0 when there is none
    repeat_spam: bool  # two automatic spam blocks within a week: only an operator lifts the second

    def counters(self, plan: PlanSettings) -> dict[str, int]:
        """The reference's counters, as store.stats.counters computes them."""
        sent, bounced, expired, _, _, suppressed = self.totals
        return {"sent": sent, "sentToday": self.today[COUNTER_NAMES.index("sent")], "maxPerDay": plan.max_per_day,
                "bounce": bounced + expired + suppressed}  # fmt: skip


def _snapshot_query() -> Select:
    events, hosting_id = hosting_events, bindparam("hosting_id")
    latest = select(func.max(events.c.id)).where(events.c.hosting_id == hosting_id).scalar_subquery()
    spam_blocks = (
        select(func.count())
        .select_from(events)
        .where(events.c.hosting_id == hosting_id, events.c.action == Action.DETECT_SPAM.value, events.c.at >= bindparam("since"))
        .scalar_subquery()
    )
    # Sums without GROUP BY: always one row (NULLs before the first count), whether a counter is
    # kept in one row or spread over several (striped counter rows add up the same way).
    totals = (
        select(*(func.sum(hosting_totals.c[name]).label(f"total_{name}") for name in TOTALS))
        .where(hosting_totals.c.hosting_id == hosting_id)
        .subquery("totals")
    )
    today = (
        select(*(func.sum(activity_daily.c[name]).label(f"today_{name}") for name in COUNTER_NAMES))
        .where(activity_daily.c.hosting_id == hosting_id, activity_daily.c.day == bindparam("day"))
        .subquery("today")
    )
    return (
        select(
            hostings.c.name,
            hostings.c.state,
            hostings.c.plan,
            hostings.c.report_to,
            hostings.c.owner_email,
            *totals.c,
            *today.c,
            latest.label("latest_event"),
            spam_blocks.label("spam_blocks"),
        )  # fmt: skip
        .select_from(hostings.join(totals, true()).join(today, true()))
        .where(hostings.c.id == hosting_id)
    )


_SNAPSHOT = _snapshot_query()  # built once per process


def read_snapshot(connection: Connection, hosting_id: int, now: float) -> Snapshot | None:
    """The hosting's snapshot at `now`, or None if there is no such hosting."""
    row = connection.execute(
        _SNAPSHOT, {"hosting_id": hosting_id, "day": activity.day_of(now), "since": now - REPEAT_SPAM_SECONDS}
    ).first()
    if row is None:
        return None
    values = row._mapping
    return Snapshot(
        name=row.name,
        state=HostingState(row.state),
        plan=row.plan,
        report_recipient=row.report_to or row.owner_email,
        totals=tuple(int(values[f"total_{name}"] or 0) for name in TOTALS),
        today=tuple(int(values[f"today_{name}"] or 0) for name in COUNTER_NAMES),
        latest_event=int(row.latest_event or 0),
        repeat_spam=int(row.spam_blocks or 0) >= 2,
    )


def base_url(name: str) -> str:
    return f"/hostings/{quote(name, safe='')}"


def cache_of(request: Request) -> PageCache:
    """The blocks this web application keeps (one cache per application, so per process and store)."""
    state = request.app.state
    cache = getattr(state, "hosting_pages", None)
    if cache is None:
        cache = state.hosting_pages = PageCache()
    return cache


@dataclass(frozen=True, slots=True)
class _Blocks:
    """The keys and stamps of one view's blocks."""

    top: tuple
    top_stamp: tuple
    volumes: tuple
    volumes_stamp: tuple
    bounces: tuple
    bounces_stamp: tuple
    events: tuple
    events_stamp: tuple


def _blocks(hosting_id: int, lang: str, operator: bool, limit: int, page_number: int, minute: int, snapshot: Snapshot) -> _Blocks:
    errors = tuple(snapshot.totals[i] for i in _ERROR_TOTALS)
    # Today's counters of the charts' series: every count the charts show lands in today's row too
    # (store.activity.bump), so mail accepted but not yet sent does not draw them again.
    charted = tuple(snapshot.today[i] for i in _CHARTED)
    return _Blocks(
        top=(hosting_id, lang, "top", operator),
        top_stamp=(minute, snapshot),
        volumes=(hosting_id, lang, "volumes"),
        volumes_stamp=(minute, charted),
        bounces=(hosting_id, lang, "bounces", limit, page_number),
        bounces_stamp=(minute, errors),
        events=(hosting_id, lang, "events"),
        events_stamp=(minute, snapshot.state, snapshot.latest_event),
    )


_SLOT = Markup("<!--scriptmail-hosting-blocks-->")
_SLOT_BYTES = _SLOT.encode()


def _fragment(lang: str, template: str, **values: Any) -> bytes:
    """A block of the page, drawn and encoded once."""
    return i18n.environment(lang).get_template(template).render(lang=lang, **values).encode()


async def render(page: Page, request: Request, hosting_id: int, limit: int, page_number: int) -> HTMLResponse | None:
    """The page, or None if the hosting is gone. `limit` and `page_number` are already bounded."""
    context, cache = page.context, cache_of(request)
    now, zone, lang = context.clock(), page.zone, page.lang
    operator = page.user.operator
    minute = int(now // 60)

    def read(connection: Connection) -> tuple[Snapshot, _Blocks, dict[str, Any], dict[str, Any]] | None:
        snapshot = read_snapshot(connection, hosting_id, now)
        if snapshot is None:
            return None
        keys = _blocks(hosting_id, lang, operator, limit, page_number, minute, snapshot)
        kept = {
            "top": cache.get(keys.top, keys.top_stamp),
            "volumes": cache.get(keys.volumes, keys.volumes_stamp),
            "bounces": cache.get(keys.bounces, keys.bounces_stamp),
            "events": cache.get(keys.events, keys.events_stamp),
        }
        fresh: dict[str, Any] = {}
        if kept["volumes"] is None:
            fresh["volumes"] = (
                stats.daily_volumes(connection, hosting_id, now),
                stats.hourly_volumes(connection, hosting_id, now, zone),
            )
        if kept["bounces"] is None:
            fresh["bounces"] = stats.bounces(connection, hosting_id, limit=limit + 1, offset=page_number * limit)
        if kept["events"] is None:
            fresh["events"] = history(connection, snapshot.name, limit=HISTORY_ROWS)
        return snapshot, keys, kept, fresh

    # The first page of errors is a few rows by key; deeper pages read more, off the event loop.
    found = await (context.read_small(read) if page_number == 0 else context.read(read))
    if found is None:
        return None
    snapshot, keys, kept, fresh = found

    events = kept["events"]
    if events is None:
        rows = fresh["events"]
        events = (_fragment(lang, "_history.html", history=page.history(rows)), _latest_block(page, snapshot, rows))
        cache.put(keys.events, keys.events_stamp, events, len(events[0]))
    history_block, latest_block = events

    top = kept["top"]
    if top is None:
        top = _top(page, snapshot, operator, latest_block)
        cache.put(keys.top, keys.top_stamp, top, len(top))

    volumes = kept["volumes"]
    if volumes is None:
        daily, hourly = fresh["volumes"]
        volumes = _fragment(lang, "_hosting_volumes.html", charts=charts.hosting_charts(daily, hourly, page._))
        cache.put(keys.volumes, keys.volumes_stamp, volumes, len(volumes))

    bounces = kept["bounces"]
    if bounces is None:
        rows = fresh["bounces"]
        bounces = _fragment(
            lang, "_hosting_bounces.html", hosting={"name": snapshot.name}, limit=limit, limits=LIMITS, bounce_page=page_number,
            bounces=[
                {"date": page.when(row["date"]), "to": row["to"], "message": f"{row['code'] or ''} {row['message']}".strip()}
                for row in rows[:limit]
            ],
            more_bounces=len(rows) > limit, last_bounce_page=page_number == MAX_BOUNCE_OFFSET // limit,
        )  # fmt: skip
        cache.put(keys.bounces, keys.bounces_stamp, bounces, len(bounces))

    # The layout is drawn around a slot, and the kept blocks (already UTF-8) go in its place: the
    # page's 100 kB are neither escaped nor encoded again. Everything Jinja puts in the layout is
    # escaped, so the slot's "<!--" can only be the slot itself.
    layout = page.render("hosting.html", refresh=snapshot.state is HostingState.PURGING, hosting={"name": snapshot.name},
                         content=_SLOT)  # fmt: skip
    head, _, tail = layout.body.partition(_SLOT_BYTES)
    return HTMLResponse(
        b"".join((head, b"\n\n".join((top, volumes, bounces, history_block)), tail)), status_code=layout.status_code
    )


def permitted(page: Page, snapshot: Snapshot, operator: bool) -> dict[str, tuple[bool, str]]:
    """Whether each action is allowed now, and if not why (translated): the state machine always says."""
    actor = Actor.OPERATOR if operator else Actor.CUSTOMER
    answers = {}
    for key, (code, *_) in ACTIONS.items():
        ok, reason = allowed(snapshot.state, REQUESTS[code], actor, snapshot.repeat_spam)
        answers[key] = (ok, page._(reason) if reason else "")
    return answers


def _top(page: Page, snapshot: Snapshot, operator: bool, latest_block: dict[str, Any] | None) -> bytes:
    allowed_now = permitted(page, snapshot, operator)
    counters = snapshot.counters(page.context.settings.plan(snapshot.plan))
    view = {
        "name": snapshot.name, "state": snapshot.state.value, "state_label": page.state_label(snapshot.state),
        "sending": snapshot.state in SENDING_STATES, "purging": snapshot.state is HostingState.PURGING,
        "report_to": snapshot.report_recipient, "sent": counters["sent"], "sent_today": counters["sentToday"],
        "max_per_day": counters["maxPerDay"], "bounce": counters["bounce"],
    }  # fmt: skip
    return _fragment(
        page.lang,
        "_hosting_top.html",
        hosting=view,
        base_url=base_url(snapshot.name),
        can_block=allowed_now["block"][0],
        can_purge=allowed_now["purge"][0],
        can_unblock=allowed_now["unblock"][0],
        block_hint=allowed_now["block"][1],
        purge_hint=allowed_now["purge"][1],
        unblock_hint=allowed_now["unblock"][1],
        explanations={key: page._(text) for key, (_, _, _, text) in ACTIONS.items()},
        latest_block=latest_block,
    )


def _latest_block(page: Page, snapshot: Snapshot, events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The evidence of the automatic block the hosting is in now, for its state section."""
    state = snapshot.state.value
    if state not in (HostingState.SPAM.value, HostingState.BOUNCE.value):
        return None
    for event in events:
        if event["to_state"] == state and event["actor"] == Actor.POLICY.value and event.get("evidence"):
            return {**event, **page.evidence(event["evidence"])}
        if event["to_state"] != state:
            break
    return None
