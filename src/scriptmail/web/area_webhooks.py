"""The customer area's Webhooks page of one hosting: its endpoints, each one's delivery log, and
the forms to add one (its secret shown once, on the answer), send a test event, rotate the
secret, enable again and remove. Every route answers 404 for a hosting the user may not see."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from scriptmail.catalogues import N_
from scriptmail.store import customer_changes, webhooks
from scriptmail.web.pages import CsrfField, Page, logged_in, posted, see
from scriptmail.webhooks.addresses import MAX_URL
from scriptmail.webhooks.events import SUBSCRIBABLE

router = APIRouter(include_in_schema=False)

LOG_SHOWN = 10
EVENT_LABELS = {
    "hosting.state_changed": N_("The state of the hosting changes (blocked, unblocked, automatic block)"),
    "hosting.quota_reached": N_("The hourly or daily quota holds mail back"),
    "message.bounced": N_("A message bounces"),
    "message.expired": N_("A message expires without being delivered"),
    "message.complained": N_("A recipient reports a message as spam"),
    "report.sent": N_("The daily error report is sent"),
    "suppression.added": N_("An address is put on a suppression list"),
}


OPERATOR_URL = "/operator/webhooks"


def _url(name: str) -> str:
    return f"/hostings/{quote(name, safe='')}/webhooks"


async def _render(page: Page, name: str | None, status: int = 200, **values: Any) -> Response:
    """A hosting's page, or with `name=None` the operator's page of the platform-wide endpoints."""

    def read(connection) -> list[dict[str, Any]]:
        found = []
        for endpoint in webhooks.list_endpoints(connection, name):
            log = webhooks.delivery_log(connection, endpoint.id, LOG_SHOWN)
            found.append({"endpoint": endpoint, "log": log})
        return found

    endpoints = await page.context.read(read)
    shown = [
        {
            "id": item["endpoint"].id, "url": item["endpoint"].url, "description": item["endpoint"].description,
            "events": [page._(EVENT_LABELS[e]) for e in item["endpoint"].events if e in EVENT_LABELS],
            "disabled": page.when(item["endpoint"].disabled_at), "disabled_reason": item["endpoint"].disabled_reason,
            "failing_since": page.when(item["endpoint"].failing_since),
            "log": [{**entry, "at": page.when(entry["at"], seconds=True), "duration": f"{entry['duration']:.3f}"} for entry in item["log"]],
        }
        for item in endpoints
    ]  # fmt: skip
    defaults = {"error": None, "new_secret": None, "form": {"url": "", "description": "", "events": list(SUBSCRIBABLE)}}
    response = page.render(
        "webhooks.html", status=status, hosting_name=name, base_url=_url(name) if name is not None else OPERATOR_URL, endpoints=shown,
        event_choices=[(event, page._(EVENT_LABELS[event])) for event in SUBSCRIBABLE], **(defaults | values),
    )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"  # a page may show a secret once
    return response


@router.get("/hostings/{name}/webhooks")
async def webhooks_page(request: Request, name: str) -> Response:
    page = await logged_in(request)
    await page.owned(name)
    return await _render(page, name)


@router.post("/hostings/{name}/webhooks")
async def add_webhook(
    request: Request,
    name: str,
    url: Annotated[str, Form(max_length=MAX_URL)] = "",
    events: Annotated[list[str] | None, Form(max_length=len(SUBSCRIBABLE))] = None,
    description: Annotated[str, Form(max_length=200)] = "",
    csrf: CsrfField = "",
) -> Response:
    page = await posted(request, csrf)
    await page.owned(name)
    chosen = [event for event in events or [] if event]
    form = {"url": url, "description": description, "events": chosen}
    if not chosen:
        return await _render(page, name, 400, error=page._("Choose at least one event."), form=form)
    try:
        endpoint, secret = await page.context.write(
            lambda c: customer_changes.webhook_create(
                c, page.audit_actor, name, url.strip(), chosen, time.time(), " ".join(description.split()), page.user.email,
                cap=page.context.settings.webhooks.max_hosting_endpoints,
            )
        )
    except webhooks.EndpointCapReached:
        cap = page.context.settings.webhooks.max_hosting_endpoints
        return await _render(page, name, 409, error=page._("There are %(count)s webhook endpoints already, the most allowed: remove one first.", count=cap), form=form)
    except ValueError as error:
        return await _render(page, name, 400, error=page._("This endpoint cannot be used: %(reason)s", reason=str(error)), form=form)
    return await _render(page, name, new_secret={"id": endpoint.id, "secret": secret})


async def _endpoint_action(request: Request, name: str, id: int, csrf: str, what: str, grace: float = 0) -> tuple[Page, Any]:
    """One change of the hosting's endpoint `id`, audited with the signed-in user."""
    page = await posted(request, csrf)
    await page.owned(name)
    try:
        return page, await page.context.write(lambda c: customer_changes.webhook_action(c, page.audit_actor, name, id, what, time.time(), grace))
    except webhooks.EndpointError:
        raise HTTPException(404, page._("No such webhook endpoint.")) from None


@router.post("/hostings/{name}/webhooks/{id}/test")
async def test_webhook(request: Request, name: str, id: int, csrf: CsrfField = "") -> Response:
    page, _ = await _endpoint_action(request, name, id, csrf, "test")
    await page.flash("ok", page._("A test event is on its way; its delivery appears below in a few seconds."))
    return see(_url(name))


@router.post("/hostings/{name}/webhooks/{id}/rotate")
async def rotate_webhook(request: Request, name: str, id: int, csrf: CsrfField = "") -> Response:
    grace = request.app.state.context.settings.webhooks.rotation_grace
    page, secret = await _endpoint_action(request, name, id, csrf, "rotate", grace)
    return await _render(page, name, new_secret={"id": id, "secret": secret, "grace_hours": f"{grace / 3600:g}"})


@router.post("/hostings/{name}/webhooks/{id}/enable")
async def enable_webhook(request: Request, name: str, id: int, csrf: CsrfField = "") -> Response:
    page, _ = await _endpoint_action(request, name, id, csrf, "enable")
    await page.flash("ok", page._("The endpoint is enabled again."))
    return see(_url(name))


@router.post("/hostings/{name}/webhooks/{id}/remove")
async def remove_webhook(request: Request, name: str, id: int, csrf: CsrfField = "") -> Response:
    page, _ = await _endpoint_action(request, name, id, csrf, "remove")
    await page.flash("ok", page._("The endpoint is removed."))
    return see(_url(name))
