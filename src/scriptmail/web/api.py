"""The REST API: the reference product's paths and JSON under /1.0, so tools written for it work
when pointed here, plus what scriptmail adds (messages, scripts, history).

A hosting the caller does not own answers 404 exactly like one that does not exist; a refused
state change answers 409 with the reason; bad input 400/422 with what is wrong.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from scriptmail.control.states import REQUESTS, Actor, TransitionNotAllowed
from scriptmail.model import REFERENCE_STATE, RecipientStatus
from scriptmail.store import accounts, stats
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log as store_log
from scriptmail.store.hosting_control import change_state, history
from scriptmail.web.context import WebContext

router = APIRouter(prefix="/1.0")
_bearer = HTTPBearer(auto_error=False, description="A token from the customer area or `scriptmail token create`.")

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
    email: str | None = Field(description="The new error-report recipient; null: back to the owner.")


class EmailRequest(BaseModel):
    action: Literal["BLOCK", "PURGE", "UNBLOCK"]


class Bounce(BaseModel):
    date: str
    to: str
    message: str


class Volume(BaseModel):
    date: str
    volume: int


def _context(request: Request) -> WebContext:
    return request.app.state.context


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> accounts.User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    user = await _context(request).read(lambda c: accounts.user_for_token(c, credentials.credentials))
    if user is None:
        raise HTTPException(401, "this token is not valid (revoked, or never issued)", headers={"WWW-Authenticate": "Bearer"})
    return user


User = Annotated[accounts.User, Depends(current_user)]
Context = Annotated[WebContext, Depends(_context)]


async def _hosting_id(context: WebContext, user: accounts.User, name: str) -> int:
    found = await context.read(lambda c: accounts.may_see(c, user, name))
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")


@router.get("/hosting/web", response_model=list[str], summary="The hostings the caller may see")
async def list_hostings(user: User, context: Context) -> list[str]:
    return await context.read(lambda c: accounts.hosting_names(c, user))


@router.get("/hosting/web/{serviceName}/email", response_model=Email, summary="State and counters of the scripts' mail")
async def get_email(serviceName: str, user: User, context: Context) -> Email:
    hosting_id = await _hosting_id(context, user, serviceName)

    def read(connection) -> Email:
        hosting = hosting_store.get_hosting(connection, hosting_id)
        counters = stats.counters(connection, hosting_id, context.settings.plan(hosting.plan), context.clock())
        return Email(state=REFERENCE_STATE[hosting.state], email=hosting.report_to, **counters)

    return await context.read(read)


@router.put("/hosting/web/{serviceName}/email", response_model=None, summary="Change the error-report recipient")
async def put_email(serviceName: str, body: EmailUpdate, user: User, context: Context) -> None:
    await _hosting_id(context, user, serviceName)
    try:
        await context.write(lambda c: hosting_store.update_hosting(c, serviceName, report_to=body.email or ""))
    except hosting_store.HostingError as error:
        raise HTTPException(400, str(error)) from None


@router.post("/hosting/web/{serviceName}/email/request", response_model=str, summary="Block, purge or unblock sending")
async def request_action(serviceName: str, body: EmailRequest, user: User, context: Context) -> str:
    """Answers the hosting's state after the action (in the reference's names). A purge runs in
    the background: the state is `purging` until it is done, then `ok`."""
    await _hosting_id(context, user, serviceName)
    action = REQUESTS[body.action]
    actor = Actor.OPERATOR if user.operator else Actor.CUSTOMER
    reason = f"{body.action.lower()} requested through the API by {user.email}"
    try:
        change = await context.write(lambda c: change_state(c, serviceName, action, actor, context.clock(), reason=reason))
    except TransitionNotAllowed as refused:
        raise HTTPException(409, refused.reason) from None
    await context.settle(change)  # once this answers, no new delivery starts
    return REFERENCE_STATE[change.after]


@router.get("/hosting/web/{serviceName}/email/bounces", response_model=list[Bounce], summary="The latest mail in error")
async def get_bounces(
    serviceName: str, user: User, context: Context,
    limit: Annotated[int, Query(ge=1, le=stats.MAX_BOUNCES, description="How many, newest first (1 to 100).")],
) -> list[Bounce]:  # fmt: skip
    hosting_id = await _hosting_id(context, user, serviceName)
    rows = await context.read(lambda c: stats.bounces(c, hosting_id, limit=limit))
    return [Bounce(date=_iso(row["date"]), to=row["to"], message=f"{row['code'] or ''} {row['message']}".strip()) for row in rows]


@router.get("/hosting/web/{serviceName}/email/volumes", response_model=list[Volume], summary="Mail sent per day, 30 days")
async def get_volumes(serviceName: str, user: User, context: Context) -> list[Volume]:
    hosting_id = await _hosting_id(context, user, serviceName)
    days = await context.read(lambda c: stats.daily_volumes(c, hosting_id, context.clock()))
    return [Volume(date=day["date"], volume=day["sent"]) for day in days]


# --- beyond the reference -------------------------------------------------------------------


@router.get("/hosting/web/{serviceName}/email/messages", summary="The message log, one row per recipient, newest first")
async def get_messages(
    serviceName: str, user: User, context: Context,
    status: RecipientStatus | None = None,
    recipient: Annotated[str | None, Query(max_length=320)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    script: Annotated[str | None, Query(max_length=200)] = None,
    since: date | None = None,
    until: date | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:  # fmt: skip
    await _hosting_id(context, user, serviceName)
    filters = store_log.Filters(
        hosting=serviceName, status=status, recipient=recipient, subject=subject, script=script,
        since=_day_start(since), until=_day_start(until),
    )  # fmt: skip
    rows = await context.read(lambda c: store_log.recent(c, filters, limit=limit))
    return [_public(row) for row in rows]


@router.get("/hosting/web/{serviceName}/email/messages/{id}", summary="One recipient in full, with every attempt")
async def get_message(serviceName: str, id: int, user: User, context: Context) -> dict[str, Any]:
    await _hosting_id(context, user, serviceName)
    found = await context.read(lambda c: store_log.detail(c, id))
    if found is None or found["hosting"] != serviceName:
        raise HTTPException(404, "no such message for this service")
    return _public(found)


@router.get("/hosting/web/{serviceName}/email/scripts", summary="Originating scripts and how much they sent")
async def get_scripts(serviceName: str, user: User, context: Context) -> list[dict[str, Any]]:
    hosting_id = await _hosting_id(context, user, serviceName)
    return await context.read(lambda c: stats.scripts(c, hosting_id))


@router.get("/hosting/web/{serviceName}/email/history", summary="State changes: who, when, from, to, why")
async def get_history(serviceName: str, user: User, context: Context) -> list[dict[str, Any]]:
    await _hosting_id(context, user, serviceName)
    rows = await context.read(lambda c: history(c, serviceName))
    return [{**row, "at": _iso(row["at"])} for row in rows]


def _day_start(day: date | None) -> float | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """Times as ISO 8601; the internal lease columns are not the API's business."""
    hidden = {"lease_owner", "lease_until"}
    return {
        key: (_iso(value) if key.endswith("_at") and isinstance(value, float) else value)
        for key, value in row.items()
        if key not in hidden
    }
