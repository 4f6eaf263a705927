"""A hosting's own audit trail for its customer: `GET /1.0/hosting/web/{serviceName}/email/audit`.
Every change made to the hosting, newest first, a page at a time. The customer's own changes come
whole; the platform's (an operator, the CLI) say what changed and when, not who nor the values,
which may name other hostings. A foreign hosting answers 404 exactly like an unknown one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from scriptmail.store import audit
from scriptmail.web.api import Context, ServiceName, User, _hosting_id, _iso
from scriptmail.web.problems import responses

router = APIRouter(prefix="/1.0/hosting/web/{serviceName}/email", tags=["hosting"])

PLATFORM = "platform"  # who the customer is told made a change on the platform's side
MAX_OFFSET = 1_000_000


class AuditItem(BaseModel):
    at: str = Field(description="When (ISO 8601, UTC).")
    actor: str = Field(description="`token N (EMAIL)`, `user EMAIL`; `platform` for a change made by the platform's operator.")
    action: str = Field(description="e.g. `webhook.create`, `domain.rotate`, `suppression.remove`, `hosting.block`.")
    target: str = Field(description="The object: `webhook 3`, a domain, an address, `message 42`, the hosting.")
    before: Any = Field(description="What it was (never a secret); null when there is nothing to say, or the platform made it.")
    after: Any = Field(description="What it became (never a secret); null likewise.")


class AuditTrail(BaseModel):
    items: list[AuditItem]
    total: int = Field(description="How many entries the hosting has.")
    offset: int
    limit: int


def shown(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as the hosting's customer sees it (the API and the customer area)."""
    if entry["by_operator"]:
        return {"at": entry["at"], "actor": PLATFORM, "action": entry["action"], "target": entry["target"], "before": None, "after": None}
    return {key: entry[key] for key in ("at", "actor", "action", "target", "before", "after")}


@router.get("/audit", response_model=AuditTrail, summary="Every change made to the hosting, newest first",
            responses=responses(401, 404, 422, 429))  # fmt: skip
async def get_audit(
    serviceName: ServiceName, user: User, context: Context,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="How many of the newest to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=200, description="How many, newest first.")] = 50,
) -> AuditTrail:  # fmt: skip
    await _hosting_id(context, user, serviceName)
    rows, total = await context.read(lambda c: audit.entries(c, hosting=serviceName, offset=offset, limit=limit))
    items = [AuditItem(**{**shown(row), "at": _iso(row["at"])}) for row in rows]
    return AuditTrail(items=items, total=total, offset=offset, limit=limit)
