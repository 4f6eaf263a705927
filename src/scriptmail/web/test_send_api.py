"""The API's test send: `POST /1.0/hosting/web/{serviceName}/email/test` sends one test message
through the hosting's own path (web/test_sends.py); `GET .../email/test/{id}` says what became of
it. A foreign hosting answers 404 exactly like an unknown one, before the body is looked at."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from scriptmail.store import accounts
from scriptmail.store import test_sends as store
from scriptmail.web import test_sends
from scriptmail.web.api import NOT_FOUND, AuditActor, ByMethod, Context
from scriptmail.web.fields import EMAIL_PATTERN
from scriptmail.web.problems import responses

router = APIRouter(prefix="/1.0/hosting/web/{serviceName}/email/test", tags=["test send"])


class NewTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(max_length=320, pattern=EMAIL_PATTERN, description="Where the test message goes.")
    sender: str | None = Field(
        None, max_length=320, pattern=EMAIL_PATTERN,
        description="`test@` one of the hosting's domains (its verified sending domains first); default: the first.",
    )  # fmt: skip


class TestSend(BaseModel):
    """A test message and what became of it so far."""

    id: int
    at: str = Field(description="When it was sent (ISO 8601, UTC).")
    to: str
    sender: str
    queueId: int | None = Field(description="The message's queue id once the gateway accepted it.")
    phase: Literal["pending", "refused", "waiting", "held", "accepted", "rejected", "suppressed", "purged"] = Field(
        description="refused: by the gateway; waiting: queued or retried; held: the hosting is blocked; "
        "accepted or rejected: by the receiving server."
    )
    final: bool = Field(description="Whether the phase can still change (false: ask again).")
    code: int | None = Field(description="The receiving server's reply code, if it answered.")
    reply: str = Field(description="The receiving server's reply (or the gateway's refusal).")
    signed: bool = Field(description="Whether the message carries a DKIM signature.")
    dkimDomain: str = Field(description="The d= of its signature; empty when unsigned.")


async def _hosting(
    serviceName: Annotated[str, Path(max_length=253)], user: ByMethod, context: Context
) -> tuple[int, accounts.User]:
    found = await context.visible_hosting(user, serviceName)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found, user


Hosting = Annotated[tuple[int, accounts.User], Depends(_hosting)]


def _model(row: dict) -> TestSend:
    test = test_sends.view(row)
    return TestSend(
        id=test["id"], at=datetime.fromtimestamp(test["created_at"], timezone.utc).isoformat(timespec="seconds"),
        to=test["to"], sender=test["sender"], queueId=test["queue_id"], phase=test["phase"], final=test["final"],
        code=test["code"], reply=test["reply"], signed=test["signed"], dkimDomain=test["dkim_domain"],
    )  # fmt: skip


@router.post("", response_model=TestSend, status_code=201, responses=responses(400, 401, 403, 404, 422, 429),
             summary="Send a test message through the hosting's own path (quota, signing, state)")  # fmt: skip
async def send_test(
    serviceName: Annotated[str, Path(max_length=253)], hosting: Hosting, body: NewTest, actor: AuditActor, context: Context
) -> TestSend:
    """At most `web.test_sends_per_hour` per hosting and rolling hour: beyond, 429 with Retry-After."""
    hosting_id, user = hosting
    try:
        test_id = await test_sends.send(context, hosting_id, serviceName, body.to, body.sender or "", actor, user.email, via="API")
    except test_sends.TestSendError as error:
        raise HTTPException(503 if error.kind == "unavailable" else 400, error.detail) from None
    except store.TooManyTests as error:
        raise HTTPException(429, str(error), headers={"Retry-After": str(error.retry_after)}) from None
    row = await context.read(lambda c: store.result(c, hosting_id, test_id))
    return _model(row)


@router.get("/{id}", response_model=TestSend, responses=responses(401, 404, 422, 429), summary="What became of a test message")
async def get_test(hosting: Hosting, id: Annotated[int, Path(ge=1, le=2**53 - 1)], context: Context) -> TestSend:
    row = await context.read(lambda c: store.result(c, hosting[0], id))
    if row is None:
        raise HTTPException(404, "no such test message for this service")
    return _model(row)
