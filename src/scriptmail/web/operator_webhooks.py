"""The operator's page of the platform-wide webhook endpoints (`/operator/webhooks`): they get
the events of every hosting and the platform's own. The same page, forms and delivery log as a
customer's (web.area_webhooks), for endpoints that belong to no hosting."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from scriptmail.store import audit, webhooks
from scriptmail.store.audit import Actor
from scriptmail.web.area_webhooks import OPERATOR_URL, _render
from scriptmail.web.operator import operator_form, operator_page
from scriptmail.web.pages import CsrfField, Page, see
from scriptmail.webhooks.addresses import MAX_URL
from scriptmail.webhooks.events import SUBSCRIBABLE

router = APIRouter(prefix="/operator", include_in_schema=False)


@router.get("/webhooks")
async def platform_webhooks(request: Request) -> Response:
    return await _render(await operator_page(request), None)


@router.post("/webhooks")
async def platform_add(
    request: Request,
    url: Annotated[str, Form(max_length=MAX_URL)] = "",
    events: Annotated[list[str] | None, Form(max_length=len(SUBSCRIBABLE))] = None,
    description: Annotated[str, Form(max_length=200)] = "",
    csrf: CsrfField = "",
) -> Response:
    page = await operator_form(request, csrf)
    chosen = [event for event in events or [] if event]
    form = {"url": url, "description": description, "events": chosen}
    if not chosen:
        return await _render(page, None, 400, error=page._("Choose at least one event."), form=form)
    def create(connection) -> tuple[webhooks.Endpoint, str]:
        now = time.time()
        made = webhooks.create_endpoint(
            connection, None, url.strip(), chosen, now, " ".join(description.split()), page.user.email, cap=page.context.settings.webhooks.max_platform_endpoints
        )
        audit.record(connection, Actor.operator(page.user.email), "webhook.create", f"webhook {made[0].id}", now, after=audit.webhook(made[0]))
        return made

    try:
        endpoint, secret = await page.context.write(create)
    except webhooks.EndpointCapReached:
        cap = page.context.settings.webhooks.max_platform_endpoints
        return await _render(page, None, 409, error=page._("There are %(count)s webhook endpoints already, the most allowed: remove one first.", count=cap), form=form)
    except ValueError as error:
        reason = str(error)
        return await _render(page, None, 400, error=page._("This endpoint cannot be used: %(reason)s", reason=reason), form=form)
    return await _render(page, None, new_secret={"id": endpoint.id, "secret": secret})


async def _action(request: Request, csrf: str, name: str, id: int, action) -> tuple[Page, Any]:
    """Run one change of a platform-wide endpoint and audit it (`webhook.NAME`) in the same transaction."""
    page = await operator_form(request, csrf)

    def change(connection) -> Any:
        before = webhooks.get_endpoint(connection, id, None)
        done = action(connection)
        if name != "enable" or before.disabled_at is not None:  # enabling an enabled endpoint changes nothing
            recorded = {"disabled_reason": before.disabled_reason} if name == "enable" else audit.webhook(before) if name == "remove" else None
            audit.record(connection, Actor.operator(page.user.email), f"webhook.{name}", f"webhook {id}", time.time(), before=recorded)
        return done

    try:
        return page, await page.context.write(change)
    except webhooks.EndpointError:
        raise HTTPException(404, page._("No such webhook endpoint.")) from None


@router.post("/webhooks/{id}/test")
async def platform_test(request: Request, id: int, csrf: CsrfField = "") -> Response:
    page = await operator_form(request, csrf)
    try:  # a test event changes nothing: not audited, as in the admin API
        await page.context.write(lambda c: webhooks.queue_test(c, id, time.time(), None))
    except webhooks.EndpointError:
        raise HTTPException(404, page._("No such webhook endpoint.")) from None
    await page.flash("ok", page._("A test event is on its way; its delivery appears below in a few seconds."))
    return see(OPERATOR_URL)


@router.post("/webhooks/{id}/rotate")
async def platform_rotate(request: Request, id: int, csrf: CsrfField = "") -> Response:
    grace = request.app.state.context.settings.webhooks.rotation_grace
    page, secret = await _action(request, csrf, "rotate", id, lambda c: webhooks.rotate_secret(c, id, time.time(), grace, None))
    return await _render(page, None, new_secret={"id": id, "secret": secret, "grace_hours": f"{grace / 3600:g}"})


@router.post("/webhooks/{id}/enable")
async def platform_enable(request: Request, id: int, csrf: CsrfField = "") -> Response:
    page, _ = await _action(request, csrf, "enable", id, lambda c: webhooks.enable_endpoint(c, id, None))
    await page.flash("ok", page._("The endpoint is enabled again."))
    return see(OPERATOR_URL)


@router.post("/webhooks/{id}/remove")
async def platform_remove(request: Request, id: int, csrf: CsrfField = "") -> Response:
    page, _ = await _action(request, csrf, "remove", id, lambda c: webhooks.remove_endpoint(c, id, None))
    await page.flash("ok", page._("The endpoint is removed."))
    return see(OPERATOR_URL)
