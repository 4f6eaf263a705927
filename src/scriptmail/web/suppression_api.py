"""The REST API of a hosting's suppression list: `/1.0/hosting/web/{serviceName}/email/suppressions`.

List (search, keyset paging), add, remove (optionally sending again what the entry stopped in
the last 72 h). Every answer has a model and every status code is documented; a foreign hosting
answers 404 exactly like an unknown one, before the body is even looked at.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from scriptmail.store import customer_changes, suppressions
from scriptmail.suppression.rules import EntryError, lookup_form
from scriptmail.web.api import NOT_FOUND, AuditActor, ByMethod, Context
from scriptmail.web.problems import responses

router = APIRouter(prefix="/1.0/hosting/web/{serviceName}/email/suppressions", tags=["suppressions"])


class Suppression(BaseModel):
    """One address the hosting's mail is not attempted to."""

    address: str = Field(description="The address (or whole domain), lower case, its domain as an A-label.")
    kind: str = Field(description="address or domain.")
    reason: str = Field(description="no-such-user, repeated-failure, manual, or what the owner wrote.")
    code: int | None = Field(description="The SMTP reply code that put it there, if any.")
    reply: str = Field(description="The SMTP reply text that put it there, if any.")
    since: str = Field(description="When it was added (ISO 8601, UTC).")
    until: str | None = Field(description="When it expires by itself (ISO 8601, UTC).")


class SuppressionPage(BaseModel):
    items: list[Suppression]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last one.")


class NewSuppression(BaseModel):
    # The same forms suppression.rules.entry_of accepts (it lower-cases, and stores a Unicode domain
    # as its A-label): an address, or a domain; UTF-8 local parts and IDN domains included. Labels are
    # `+`, not `{1,63}`: a bounded repeat of a Unicode class outgrows the regex size limit (entry_of checks lengths).
    address: str = Field(
        max_length=320,
        pattern=r"^((?:[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]|[^\x00-\x7f]){1,64}@(?:[^\W_]|-)+(\.(?:[^\W_]|-)+)+"
        r"|@?(?:[^\W_]|-)+(\.(?:[^\W_]|-)+)+\.?)$",
        description="An address or a whole domain, in Unicode or punycode (kept with its domain as an A-label).",
    )
    reason: str = Field("manual", max_length=32, pattern=r"^[^\x00-\x1f\x7f]*$")


class Removal(BaseModel):
    address: str
    requeued: int = Field(description="Recipients sent again (suppressed by it in the last 72 h).")


_ERRORS = responses(401, 404, 422, 429)


ServiceName = Annotated[str, Path(max_length=253)]


async def _hosting(serviceName: ServiceName, user: ByMethod, context: Context) -> int:
    """The hosting's id, or 404 before anything else is read (the body included)."""
    found = await context.visible_hosting(user, serviceName)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found


Hosting = Annotated[int, Depends(_hosting)]


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")


def _model(row: dict[str, Any]) -> Suppression:
    return Suppression(
        address=row["value"], kind=row["kind"], reason=row["reason"], code=row["code"], reply=row["reply"],
        since=_iso(row["created_at"]) or "", until=_iso(row["expires_at"]),
    )  # fmt: skip


@router.get("", response_model=SuppressionPage, responses=_ERRORS, summary="The hosting's suppressed addresses")
async def list_suppressions(
    hosting_id: Hosting, context: Context,
    search: Annotated[str, Query(max_length=320, description="Only entries containing this text.")] = "",
    after: Annotated[str | None, Query(max_length=320, description="The `next` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SuppressionPage:  # fmt: skip
    rows = await context.read(
        lambda c: suppressions.entries(c, hosting_id, context.clock(), search=search, after=after, limit=limit + 1)
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return SuppressionPage(items=[_model(row) for row in rows], next=rows[-1]["value"] if more else None)


@router.post(
    "", response_model=Suppression, status_code=201,
    responses=responses(400, 401, 404, 422, 429),
    summary="Stop mailing an address (or a domain)",
)  # fmt: skip
async def add_suppression(
    serviceName: ServiceName, hosting_id: Hosting, body: NewSuppression, actor: AuditActor, context: Context
) -> Suppression:
    days = context.settings.delivery.suppression_days

    def add(connection) -> dict[str, Any]:
        added = customer_changes.suppression_add(
            connection, actor, serviceName, hosting_id, body.address, context.clock(), days, body.reason or "manual"
        )
        (row,) = [r for r in suppressions.entries(connection, hosting_id, context.clock(), search=added.value) if r["value"] == added.value]
        return row

    try:
        return _model(await context.write(add))
    except EntryError as error:
        raise HTTPException(400, str(error)) from None


@router.delete(
    "/{address}", response_model=Removal,
    responses=_ERRORS,
    summary="Mail this address again; with requeue=true, also what it stopped in the last 72 h",
)  # fmt: skip
async def remove_suppression(
    serviceName: ServiceName, hosting_id: Hosting, address: Annotated[str, Path(max_length=320)], actor: AuditActor, context: Context,
    requeue: Annotated[bool, Query(description="Send again the mail suppressed in the last 72 hours.")] = False,
) -> Removal:  # fmt: skip
    removed = await context.write(
        lambda c: customer_changes.suppression_remove(c, actor, serviceName, hosting_id, address, context.clock(), requeue)
    )
    if not removed.found:
        raise HTTPException(404, "this address is not on the suppression list")
    return Removal(address=lookup_form(address), requeued=removed.requeued)
