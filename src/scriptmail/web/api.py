"""The REST API: the reference product's paths and JSON under /1.0, so tools written for it work
when pointed here, plus what scriptmail adds (messages, scripts, history).

A hosting the caller does not own answers 404 exactly like one that does not exist; a refused
state change answers 409 with the reason; bad input 400/422 with what is wrong.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from scriptmail.control.states import REQUESTS, Actor, TransitionNotAllowed
from scriptmail.international.addresses import display as display_address
from scriptmail.model import REFERENCE_STATE, RecipientStatus
from scriptmail.store import accounts, audit, customer_changes, stats
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log as store_log
from scriptmail.store.hosting_control import history
from scriptmail.web.api_auth import current_caller
from scriptmail.web.context import WebContext
from scriptmail.web.fields import EMAIL_PATTERN
from scriptmail.web.fields import TEXT_PATTERN as _TEXT
from scriptmail.web.problems import responses

router = APIRouter(prefix="/1.0", tags=["hosting"])

NOT_FOUND = "This service does not exist"  # the same words for unknown and foreign hostings


class Email(BaseModel):
    """The reference's `hosting.web.email` object."""

    bounce: int = Field(description="Recipients not delivered (bounced or expired), since creation.")
    email: str | None = Field(description="Where the daily error report goes; null: the owner's address.")
    maxPerDay: int = Field(description="Daily limit of the hosting's plan; 0: none.")
    sent: int = Field(description="Recipients delivered since creation.")
    sentToday: int
    state: Literal["ok", "ko", "purging", "spam", "bounce", "force"]


class EmailUpdate(BaseModel):
    email: Annotated[str, Field(max_length=320, pattern=EMAIL_PATTERN)] | None = Field(
        description="The new error-report recipient; null: back to the owner."
    )


class EmailRequest(BaseModel):
    action: Literal["BLOCK", "PURGE", "UNBLOCK"]


class Bounce(BaseModel):
    date: str
    to: str
    message: str


class Volume(BaseModel):
    date: str
    volume: int


async def _context(request: Request) -> WebContext:
    return request.app.state.context


async def current_user(caller: Annotated[accounts.Caller, Depends(current_caller)]) -> accounts.User:
    return caller.user


async def current_writer(caller: Annotated[accounts.Caller, Depends(current_caller)]) -> accounts.User:
    """A change: a customer on their hostings, or an operator token reaching `manage`."""
    if caller.user.operator and not caller.may("manage"):
        raise HTTPException(403, f"this token's scope ({caller.scope}) does not reach 'manage'")
    return caller.user


async def current_user_for(request: Request, caller: Annotated[accounts.Caller, Depends(current_caller)]) -> accounts.User:
    """The caller, as a writer for a change (any method but GET and HEAD), else as a reader."""
    if request.method not in ("GET", "HEAD"):
        return await current_writer(caller)
    return caller.user


async def current_actor(caller: Annotated[accounts.Caller, Depends(current_caller)]) -> audit.Actor:
    """Who the audit log says made a change through the API: the token and its owner."""
    return audit.Actor.token(caller.token_id, caller.user.email, operator=caller.user.operator)


User = Annotated[accounts.User, Depends(current_user)]
AuditActor = Annotated[audit.Actor, Depends(current_actor)]
Writer = Annotated[accounts.User, Depends(current_writer)]
ByMethod = Annotated[accounts.User, Depends(current_user_for)]  # for routers whose routes share one dependency
# A hosting's name as the server reads it (longer or with control characters: 422).
ServiceName = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[^\x00-\x1f\x7f/]+$")]
_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
Context = Annotated[WebContext, Depends(_context)]


async def _hosting_id(context: WebContext, user: accounts.User, name: str) -> int:
    found = await context.visible_hosting(user, name)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")


@router.get("/hosting/web", response_model=list[str], summary="The hostings the caller may see", responses=responses(401, 429))
async def list_hostings(user: User, context: Context) -> list[str]:
    return await context.read(lambda c: accounts.hosting_names(c, user))


@router.get("/hosting/web/{serviceName}/email", response_model=Email, summary="State and counters of the scripts' mail",
            responses=responses(401, 404, 422, 429))
async def get_email(serviceName: ServiceName, user: User, context: Context) -> Email:
    hosting_id = await _hosting_id(context, user, serviceName)

    def read(connection) -> Email:
        hosting = hosting_store.get_hosting(connection, hosting_id)
        counters = stats.counters(connection, hosting_id, context.settings.plan(hosting.plan), context.clock())
        return Email(state=REFERENCE_STATE[hosting.state], email=hosting.report_to, **counters)

    return await context.read_small(read)


@router.put("/hosting/web/{serviceName}/email", response_model=None, summary="Change the error-report recipient",
            responses=responses(400, 401, 403, 404, 422, 429))
async def put_email(serviceName: ServiceName, body: EmailUpdate, user: Writer, actor: AuditActor, context: Context) -> None:
    await _hosting_id(context, user, serviceName)
    try:
        await context.write(lambda c: customer_changes.report_to(c, actor, serviceName, body.email or "", context.clock()))
    except hosting_store.HostingError as error:
        raise HTTPException(400, str(error)) from None


@router.post("/hosting/web/{serviceName}/email/request", response_model=str, summary="Block, purge or unblock sending",
             responses=responses(401, 403, 404, 409, 422, 429))
async def request_action(serviceName: ServiceName, body: EmailRequest, user: Writer, actor: AuditActor, context: Context) -> str:
    """Answers the hosting's state after the action (in the reference's names). A purge runs in
    the background: the state is `purging` until it is done, then `ok`."""
    await _hosting_id(context, user, serviceName)
    action = REQUESTS[body.action]
    who = Actor.OPERATOR if user.operator else Actor.CUSTOMER
    reason = f"{body.action.lower()} requested through the API by {user.email}"
    try:
        change = await context.write(lambda c: customer_changes.state(c, actor, serviceName, action, who, context.clock(), reason))
    except TransitionNotAllowed as refused:
        raise HTTPException(409, refused.reason) from None
    await context.settle(change)  # once this answers, no new delivery starts
    return REFERENCE_STATE[change.after]


@router.get("/hosting/web/{serviceName}/email/bounces", response_model=list[Bounce], summary="The latest mail in error",
            responses=responses(401, 404, 422, 429))
async def get_bounces(
    serviceName: ServiceName, user: User, context: Context,
    limit: Annotated[int, Query(ge=1, le=stats.MAX_BOUNCES, description="How many, newest first (1 to 100).")],
) -> list[Bounce]:  # fmt: skip
    hosting_id = await _hosting_id(context, user, serviceName)
    rows = await context.read(lambda c: stats.bounces(c, hosting_id, limit=limit))
    return [Bounce(date=_iso(row["date"]), to=display_address(row["to"]), message=f"{row['code'] or ''} {row['message']}".strip()) for row in rows]


@router.get("/hosting/web/{serviceName}/email/volumes", response_model=list[Volume], summary="Mail sent per day, 30 days",
            responses=responses(401, 404, 422, 429))
async def get_volumes(serviceName: ServiceName, user: User, context: Context) -> list[Volume]:
    hosting_id = await _hosting_id(context, user, serviceName)
    days = await context.read(lambda c: stats.daily_volumes(c, hosting_id, context.clock()))
    return [Volume(date=day["date"], volume=day["sent"]) for day in days]


# --- beyond the reference -------------------------------------------------------------------


@router.get("/hosting/web/{serviceName}/email/messages", summary="The message log, one row per recipient, newest first",
            responses=responses(401, 404, 422, 429))
async def get_messages(
    serviceName: ServiceName, user: User, context: Context,
    status: RecipientStatus | None = None,
    recipient: Annotated[str | None, Query(max_length=320, pattern=_TEXT)] = None,
    subject: Annotated[str | None, Query(max_length=200, pattern=_TEXT)] = None,
    script: Annotated[str | None, Query(max_length=200, pattern=_TEXT)] = None,
    since: Annotated[str | None, Query(pattern=_DAY, json_schema_extra={"format": "date"},
                                       description="A day, YYYY-MM-DD (UTC): rows from its start.")] = None,
    until: Annotated[str | None, Query(pattern=_DAY, json_schema_extra={"format": "date"},
                                       description="A day, YYYY-MM-DD (UTC): rows before its start.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:  # fmt: skip
    first, last = _day(since, "since"), _day(until, "until")
    await _hosting_id(context, user, serviceName)
    filters = store_log.Filters(
        hosting=serviceName, status=status, recipient=recipient, subject=subject, script=script,
        since=_day_start(first), until=_day_start(last),
    )  # fmt: skip
    rows = await context.read(lambda c: store_log.recent(c, filters, limit=limit))
    return [_public(row) for row in rows]


@router.get("/hosting/web/{serviceName}/email/messages/{id}", summary="One recipient in full, with every attempt",
            responses=responses(401, 404, 422, 429))
async def get_message(
    serviceName: ServiceName, id: Annotated[int, Path(ge=1, le=2**53 - 1)], user: User, context: Context
) -> dict[str, Any]:
    await _hosting_id(context, user, serviceName)
    found = await context.read(lambda c: store_log.detail(c, id))
    if found is None or found["hosting"] != serviceName:
        raise HTTPException(404, "no such message for this service")
    return _public(found)


@router.get("/hosting/web/{serviceName}/email/scripts", summary="Originating scripts and how much they sent",
            responses=responses(401, 404, 422, 429))
async def get_scripts(serviceName: ServiceName, user: User, context: Context) -> list[dict[str, Any]]:
    hosting_id = await _hosting_id(context, user, serviceName)
    return await context.read(lambda c: stats.scripts(c, hosting_id))


@router.get("/hosting/web/{serviceName}/email/history", summary="State changes: who, when, from, to, why",
            responses=responses(401, 404, 422, 429))
async def get_history(serviceName: ServiceName, user: User, context: Context) -> list[dict[str, Any]]:
    await _hosting_id(context, user, serviceName)
    rows = await context.read(lambda c: history(c, serviceName))
    return [{**row, "at": _iso(row["at"]), "false_positive_at": row["false_positive_at"] and _iso(row["false_positive_at"])} for row in rows]


def _day(text: str | None, name: str) -> date | None:
    """A YYYY-MM-DD that is a real day (the pattern lets 2026-13-45 through): else 422, like the schema."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"invalid request: query.{name}: {text!r} is not a day (YYYY-MM-DD)") from None


def _day_start(day: date | None) -> float | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """Times as ISO 8601, addresses with Unicode domains; the internal lease columns are not the API's business."""
    hidden = {"lease_owner", "lease_until"}
    shown = {key: (_iso(value) if key.endswith("_at") and isinstance(value, float) else value) for key, value in row.items() if key not in hidden}
    for key in _ADDRESSES & shown.keys():
        shown[key] = display_address(shown[key])
    return shown


_ADDRESSES = frozenset({"sender", "recipient"})
