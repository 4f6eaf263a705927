"""The customer's own account: change the password, and create or revoke API tokens.

A new token is shown on the page that answers the form, once: it is never stored (only its
hash), never put in the session's flash, and the answer is marked not to be cached. Changing the
password asks for the current one (throttled like a login) and ends every other session.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from scriptmail.store import accounts, customer_changes, web_sessions
from scriptmail.web import throttle
from scriptmail.web.pages import CsrfField, Page, PasswordField, logged_in, posted, see, too_many_attempts

router = APIRouter(prefix="/account", include_in_schema=False)

MIN_PASSWORD = 10
MAX_TOKENS = 20  # active tokens per person: enough for every tool, not a way to fill the store


async def _render(page: Page, status: int = 200, **values) -> Response:
    user = page.user
    tokens = await page.context.read(lambda c: accounts.tokens_of(c, user))
    active = [{**t, "created": page.when(t["created_at"])} for t in tokens if t["revoked_at"] is None]
    revoked = [
        {**t, "created": page.when(t["created_at"]), "revoked": page.when(t["revoked_at"])} for t in tokens if t["revoked_at"]
    ]
    shown = {"new_token": None, "password_error": None, "token_error": None, **values}
    response = page.render(
        "account.html", status=status, tokens=active, revoked=revoked[-10:], api_base=f"{page.request.base_url}1.0", **shown
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("")
async def account(request: Request) -> Response:
    return await _render(await logged_in(request))


@router.post("/password")
async def change_password(
    request: Request,
    current: PasswordField = "",
    new: PasswordField = "",
    again: PasswordField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await posted(request, csrf)
    context, user = page.context, page.user
    key = [f"account:{user.email}"]
    now = context.clock()
    wait = throttle.wait_left(await context.read(lambda c: web_sessions.failures(c, key)), now)
    if wait > 0:
        error = too_many_attempts(page, int(wait) + 1)
        return await _render(page, 429, password_error=error)
    if await context.read(lambda c: accounts.check_password(c, user.email, current)) is None:
        await context.write(lambda c: web_sessions.record_failure(c, key, now))
        return await _render(page, 400, password_error=page._("The current password is wrong."))
    if len(new) < MIN_PASSWORD:
        return await _render(
            page, 400, password_error=page._("The new password must have at least %(n)s characters.", n=MIN_PASSWORD)
        )
    if new != again:
        return await _render(page, 400, password_error=page._("The two new passwords differ."))
    hashed = await asyncio.to_thread(accounts.password_hash, new)  # slow on purpose: not in the writer
    await context.write(lambda c: customer_changes.password_changed(c, page.audit_actor, user, hashed, now))
    await context.write(lambda c: web_sessions.close_other_sessions(c, user, page.session_id))
    await page.flash("ok", page._("Your password has been changed; your other sessions are closed."))
    return see("/account")


@router.post("/tokens")
async def create_token(
    request: Request,
    label: Annotated[str, Form(max_length=200)] = "",
    csrf: CsrfField = "",
) -> Response:
    page = await posted(request, csrf)
    user = page.user
    label = " ".join(label.split())
    if not label:
        return await _render(page, 400, token_error=page._("Give the token a name, so you know later what uses it."))
    tokens = await page.context.read(lambda c: accounts.tokens_of(c, user))
    if sum(1 for t in tokens if t["revoked_at"] is None) >= MAX_TOKENS:
        return await _render(page, 400, token_error=page._("You have %(n)s active tokens: revoke one first.", n=MAX_TOKENS))
    token_id, token = await page.context.write(lambda c: customer_changes.token_create(c, page.audit_actor, user, label, page.context.clock()))
    return await _render(page, new_token={"id": token_id, "label": label, "token": token})


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int, csrf: CsrfField = "") -> Response:
    page = await posted(request, csrf)
    try:
        await page.context.write(lambda c: customer_changes.token_revoke(c, page.audit_actor, page.user, token_id, page.context.clock()))
    except accounts.AccountError:
        raise HTTPException(404, page._("No such token.")) from None
    await page.flash("ok", page._("The token has been revoked: it no longer opens the API."))
    return see("/account")
