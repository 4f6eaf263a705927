"""The REST API of a hosting's own webhook endpoints (the customer's; the operator's platform-wide
ones are managed with `scriptmail webhook`). Every answer a route can give is declared."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from scriptmail.store import customer_changes, webhooks
from scriptmail.web.api import AuditActor, ByMethod, Context, User, _hosting_id, _iso
from scriptmail.webhooks.addresses import MAX_URL
from scriptmail.webhooks.events import SUBSCRIBABLE

router = APIRouter(prefix="/1.0/hosting/web/{serviceName}/webhooks", tags=["webhooks"])

ServiceName = Annotated[str, Path(max_length=253)]
EndpointId = Annotated[int, Path(ge=1, le=2**62)]


class Message(BaseModel):
    message: str


class ValidationProblem(BaseModel):
    message: str
    errors: list[dict[str, Any]]


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "No token, or one that is not valid."},
    404: {"model": Message, "description": "No such hosting for this token (the same answer as one that does not exist), or no such endpoint."},  # noqa: E501
    422: {"model": ValidationProblem, "description": "The request does not have the documented shape."},
}
_BAD_INPUT: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "A URL or event list that cannot be used."},
    409: {"model": Message, "description": "The hosting has `webhooks.max_hosting_endpoints` endpoints already."},
}


class WebhookEndpoint(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str
    created_at: str
    enabled: bool
    disabled_at: str | None = Field(description="When it was disabled for failing; null while it is enabled.")
    disabled_reason: str
    failing_since: str | None = Field(description="First failure since its last success; null when it is not failing.")


class WebhookCreate(BaseModel):
    url: str = Field(min_length=1, max_length=MAX_URL, description="https:// URL that receives the events (POST, JSON).")
    events: list[str] = Field(min_length=1, max_length=len(SUBSCRIBABLE) + 1, description=f"Any of {', '.join(SUBSCRIBABLE)}; or ['*'].")  # noqa: E501
    description: str = Field("", max_length=200)


class WebhookCreated(WebhookEndpoint):
    secret: str = Field(description="The signing secret (whsec_...): shown this once.")


class WebhookSecret(BaseModel):
    secret: str = Field(description="The new signing secret: shown this once.")
    previous_valid_seconds: int = Field(description="How long the previous secret also signs.")


class WebhookTest(BaseModel):
    webhook_id: str = Field(description="The webhook-id of the test event; it appears in the deliveries.")


class WebhookDelivery(BaseModel):
    at: str
    webhook_id: str
    event_type: str
    status_code: int | None = Field(description="The receiver's HTTP status; null: no HTTP answer.")
    duration: float = Field(description="Seconds until the answer (or the failure).")
    error: str
    excerpt: str = Field(description="The start of the answer's body.")


async def _owned(serviceName: ServiceName, user: ByMethod, context: Context) -> str:
    """The hosting, checked before the body is: a foreign hosting is 404 whatever was posted."""
    await _hosting_id(context, user, serviceName)
    return serviceName


Hosting = Annotated[str, Depends(_owned)]


def public(endpoint: webhooks.Endpoint) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=endpoint.id, url=endpoint.url, events=list(endpoint.events), description=endpoint.description,
        created_at=_iso(endpoint.created_at), enabled=endpoint.disabled_at is None,
        disabled_at=_iso(endpoint.disabled_at) if endpoint.disabled_at else None, disabled_reason=endpoint.disabled_reason,
        failing_since=_iso(endpoint.failing_since) if endpoint.failing_since else None,
    )  # fmt: skip


async def _call(context, operation):
    try:
        return await context.write(operation)
    except webhooks.EndpointError as error:
        raise HTTPException(404, str(error)) from None


@router.get("", response_model=list[WebhookEndpoint], responses=_ERRORS, summary="The hosting's webhook endpoints")
async def list_webhooks(serviceName: Hosting, context: Context) -> list[WebhookEndpoint]:
    found = await context.read(lambda c: webhooks.list_endpoints(c, serviceName))
    return [public(endpoint) for endpoint in found]


@router.post(
    "", response_model=WebhookCreated, status_code=201, responses={**_ERRORS, **_BAD_INPUT}, summary="Add a webhook endpoint"
)
async def create_webhook(serviceName: Hosting, body: WebhookCreate, user: User, actor: AuditActor, context: Context) -> WebhookCreated:
    """The answer carries the signing secret, once: keep it in the receiver."""
    try:
        endpoint, secret = await context.write(
            lambda c: customer_changes.webhook_create(
                c, actor, serviceName, body.url, body.events, context.clock(), body.description, user.email,
                cap=context.settings.webhooks.max_hosting_endpoints,
            )
        )
    except webhooks.EndpointCapReached as error:
        raise HTTPException(409, str(error)) from None
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
    return WebhookCreated(**public(endpoint).model_dump(), secret=secret)


@router.get("/{id}", response_model=WebhookEndpoint, responses=_ERRORS, summary="One webhook endpoint")
async def get_webhook(serviceName: Hosting, id: EndpointId, context: Context) -> WebhookEndpoint:
    try:
        return public(await context.read(lambda c: webhooks.get_endpoint(c, id, serviceName)))
    except webhooks.EndpointError as error:
        raise HTTPException(404, str(error)) from None


@router.delete("/{id}", status_code=204, response_class=Response, responses=_ERRORS, summary="Remove a webhook endpoint")
async def delete_webhook(serviceName: Hosting, id: EndpointId, actor: AuditActor, context: Context) -> Response:
    await _call(context, lambda c: customer_changes.webhook_action(c, actor, serviceName, id, "remove", context.clock()))
    return Response(status_code=204)


@router.post("/{id}/rotate", response_model=WebhookSecret, responses=_ERRORS, summary="A new signing secret")
async def rotate_webhook(serviceName: Hosting, id: EndpointId, actor: AuditActor, context: Context) -> WebhookSecret:
    grace = context.settings.webhooks.rotation_grace
    secret = await _call(context, lambda c: customer_changes.webhook_action(c, actor, serviceName, id, "rotate", context.clock(), grace))
    return WebhookSecret(secret=secret, previous_valid_seconds=grace)


@router.post("/{id}/enable", response_model=WebhookEndpoint, responses=_ERRORS, summary="Send to a disabled endpoint again")
async def enable_webhook(serviceName: Hosting, id: EndpointId, actor: AuditActor, context: Context) -> WebhookEndpoint:
    await _call(context, lambda c: customer_changes.webhook_action(c, actor, serviceName, id, "enable", context.clock()))
    return public(await context.read(lambda c: webhooks.get_endpoint(c, id, serviceName)))


@router.post("/{id}/test", response_model=WebhookTest, status_code=202, responses=_ERRORS, summary="Send a test event")
async def test_webhook(serviceName: Hosting, id: EndpointId, actor: AuditActor, context: Context) -> WebhookTest:
    """Queues a `webhook.test` event for this endpoint; its outcome appears in the deliveries."""
    message = await _call(context, lambda c: customer_changes.webhook_action(c, actor, serviceName, id, "test", context.clock()))
    return WebhookTest(webhook_id=f"msg_{message}")


@router.get("/{id}/deliveries", response_model=list[WebhookDelivery], responses=_ERRORS, summary="The endpoint's delivery log")
async def webhook_deliveries(
    serviceName: Hosting, id: EndpointId, context: Context,
    limit: Annotated[int, Query(ge=1, le=200, description="How many attempts, newest first.")] = 50,
) -> list[WebhookDelivery]:  # fmt: skip

    def read(connection) -> list[dict[str, Any]]:
        webhooks.get_endpoint(connection, id, serviceName)
        return webhooks.delivery_log(connection, id, limit)

    try:
        entries = await context.read(read)
    except webhooks.EndpointError as error:
        raise HTTPException(404, str(error)) from None
    return [delivery(entry) for entry in entries]


def delivery(entry: dict[str, Any]) -> WebhookDelivery:
    """One row of store.webhooks.delivery_log as the API answers it (the admin API's too)."""
    return WebhookDelivery(
        at=_iso(entry["at"]), webhook_id=f"msg_{entry['message']}", event_type=entry["event_type"],
        status_code=entry["status_code"], duration=round(entry["duration"], 4), error=entry["error"], excerpt=entry["excerpt"],
    )  # fmt: skip
