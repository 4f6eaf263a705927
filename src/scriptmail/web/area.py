"""The customer area: log in, your hostings, and the "Scripts e-mail" page of each, where the
owner blocks, purges, unblocks and changes the error-report recipient (the seed's guide).

Server-rendered HTML forms that work without JavaScript. Sessions live in the store (cookie
`__Host-` prefixed, Secure, HttpOnly, SameSite=Lax, new id at login, deleted at logout); every
form carries the session's CSRF token and a cross-site Origin is refused; failed logins wait
longer and longer, per account and per address.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from scriptmail.control.states import REQUESTS, SENDING_STATES, Action, Actor, Context, TransitionNotAllowed, decide
from scriptmail.model import HostingState
from scriptmail.store import accounts, stats, web_sessions
from scriptmail.store import hostings as hosting_store
from scriptmail.store.hosting_control import change_state, history, repeated_spam
from scriptmail.web import i18n, throttle
from scriptmail.web.context import WebContext
from scriptmail.web.pages import (
    EXPIRED_FORM,
    LANGUAGE_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    check_form,
    current_page,
    posted,
    same_origin,
    see,
    set_cookie,
)  # fmt: skip

router = APIRouter(include_in_schema=False)

LIMITS = (10, 20, 50, 100)


# --- logging in and out ------------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    page = await current_page(request)
    return see("/hostings" if page.session else "/login")


@router.get("/login")
async def login_form(request: Request) -> Response:
    page = await current_page(request)
    if page.session:
        return see("/hostings")
    token = secrets.token_urlsafe(24)
    response = page.render("login.html", error=None, login_csrf=token)
    set_cookie(response, LOGIN_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    page = await current_page(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(csrf, expected) or not same_origin(request):
        raise HTTPException(403, EXPIRED_FORM)
    context = page.context
    address = request.client.host if request.client else "unknown"
    keys = [f"account:{email.strip().lower()}", f"ip:{address}"]
    now = context.clock()
    counts = await context.read(lambda c: web_sessions.failures(c, keys))
    wait = throttle.wait_left(counts, now)
    if wait > 0:
        error = page._("Too many failed attempts: try again in %(seconds)s seconds.", seconds=int(wait) + 1)
        return page.render("login.html", status=429, error=error, login_csrf=expected)
    user = await asyncio.to_thread(_check, context, email.strip(), password)
    if user is None:
        await context.write(lambda c: web_sessions.record_failure(c, keys, now))
        return page.render("login.html", status=401, error=page._("Wrong e-mail address or password."), login_csrf=expected)
    await context.write(lambda c: web_sessions.clear_failures(c, keys[0]))
    session_id = await context.write(lambda c: web_sessions.open_session(c, user, now))  # a new id at every login
    if page.session_id:
        await context.write(lambda c: web_sessions.close_session(c, page.session_id))
    response = see("/hostings")
    set_cookie(response, SESSION_COOKIE, session_id)
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


def _check(context: WebContext, email: str, password: str) -> accounts.User | None:
    with context.engine.connect() as connection:
        return accounts.check_password(connection, email, password)


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    page = await posted(request, csrf)
    await page.context.write(lambda c: web_sessions.close_session(c, page.session_id))
    response = see("/login")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.post("/language")
async def language(
    request: Request,
    language: Annotated[str, Form(max_length=5)] = "en",
    next: Annotated[str, Form(max_length=500)] = "/",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if language not in i18n.CODES:
        raise HTTPException(400, "unknown language")
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = see(target)
    page = await current_page(request)
    if page.session is not None:
        check_form(request, page, csrf)
        await page.context.write(lambda c: accounts.set_language(c, page.session.user, language))
    response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, path="/", samesite="lax")
    return response


# --- hostings ---------------------------------------------------------------------------


@router.get("/hostings")
async def my_hostings(request: Request) -> Response:
    page = await current_page(request)
    if page.session is None:
        return see("/login")
    context, user = page.context, page.session.user

    def read(connection) -> list[dict]:
        rows = []
        for name in accounts.hosting_names(connection, user):
            hosting = hosting_store.find_hosting(connection, name=name)
            counters = stats.counters(connection, hosting.id, context.settings.plan(hosting.plan), context.clock())
            rows.append({"name": name, "state": hosting.state.value, "state_label": page.state_label(hosting.state),
                         "sending": hosting.state in SENDING_STATES, "sent_today": counters["sentToday"]})  # fmt: skip
        return rows

    return page.render("hostings.html", hostings=await context.read(read))


def _allowed(state: HostingState, action: Action, actor: Actor, repeat: bool) -> tuple[bool, str]:
    try:
        decide(state, action, actor, context=Context(repeat_spam=repeat))
    except TransitionNotAllowed as refused:
        return False, refused.reason
    return True, ""


@router.get("/hostings/{name}")
async def hosting_page(request: Request, name: str, limit: int = 20) -> Response:
    page = await current_page(request)
    if page.session is None:
        return see("/login")
    hosting_id = await page.owned(name)
    limit = limit if limit in LIMITS else 20
    context, user = page.context, page.session.user
    actor = Actor.OPERATOR if user.operator else Actor.CUSTOMER

    def read(connection) -> dict:
        hosting = hosting_store.get_hosting(connection, hosting_id)
        counters = stats.counters(connection, hosting_id, context.settings.plan(hosting.plan), context.clock())
        repeat = repeated_spam(connection, hosting_id, context.clock())
        return {
            "hosting": hosting, "counters": counters, "repeat": repeat,
            "bounces": stats.bounces(connection, hosting_id, limit=limit), "history": history(connection, name, limit=50),
        }  # fmt: skip

    data = await context.read(read)
    hosting, counters = data["hosting"], data["counters"]
    can_block, _ = _allowed(hosting.state, Action.BLOCK, actor, data["repeat"])
    can_purge, purge_hint = _allowed(hosting.state, Action.PURGE, actor, data["repeat"])
    can_unblock, unblock_hint = _allowed(hosting.state, Action.UNBLOCK, actor, data["repeat"])
    return page.render(
        "hosting.html",
        refresh=hosting.state is HostingState.PURGING,
        hosting={
            "name": hosting.name, "state": hosting.state.value, "state_label": page.state_label(hosting.state),
            "sending": hosting.state in SENDING_STATES, "purging": hosting.state is HostingState.PURGING,
            "report_to": hosting.report_recipient, "sent": counters["sent"], "sent_today": counters["sentToday"],
            "max_per_day": counters["maxPerDay"], "bounce": counters["bounce"],
        },  # fmt: skip
        can_block=can_block,
        can_purge=can_purge,
        can_unblock=can_unblock,
        purge_hint=page._(purge_hint) if purge_hint else "",
        unblock_hint=page._(unblock_hint) if unblock_hint else "",
        bounces=[{"date": _when(row["date"]), "to": row["to"], "message": f"{row['code'] or ''} {row['message']}".strip()} for row in data["bounces"]],
        limit=limit,
        limits=LIMITS,
        history=[{**row, "at": _when(row["at"])} for row in data["history"]],
    )


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


_DONE = {"BLOCK": "Sending is blocked.", "PURGE": "The purge has started.", "UNBLOCK": "Sending is unblocked."}


@router.post("/hostings/{name}/action")
async def hosting_action(
    request: Request,
    name: str,
    action: Annotated[str, Form(max_length=10)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    page = await posted(request, csrf)
    await page.owned(name)
    if action not in REQUESTS:
        raise HTTPException(400, page._("Unknown action."))
    user = page.session.user
    if not confirm:
        flash = "error:" + page._("Tick the box to confirm.")
    else:
        actor = Actor.OPERATOR if user.operator else Actor.CUSTOMER
        reason = f"{action.lower()} requested in the customer area by {user.email}"
        try:
            change = await page.context.write(
                lambda c: change_state(c, name, REQUESTS[action], actor, page.context.clock(), reason=reason)
            )
        except TransitionNotAllowed as refused:
            flash = "error:" + page._(refused.reason)
        else:
            await asyncio.sleep(change.settle_seconds)  # once the page says so, nothing more goes out
            flash = "ok:" + page._(_DONE[action])
    await page.context.write(lambda c: web_sessions.touch(c, page.session_id, page.context.clock(), flash=flash))
    return see(f"/hostings/{name}")


@router.post("/hostings/{name}/report-to")
async def hosting_report_to(
    request: Request,
    name: str,
    email: Annotated[str, Form(max_length=320)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    page = await posted(request, csrf)
    await page.owned(name)
    address = email.strip()
    flash = "error:" + page._("This is not a valid e-mail address.")
    if address:
        try:
            await page.context.write(lambda c: hosting_store.update_hosting(c, name, report_to=address))
            flash = "ok:" + page._("The error report will go to %(email)s.", email=address)
        except hosting_store.HostingError:
            pass
    await page.context.write(lambda c: web_sessions.touch(c, page.session_id, page.context.clock(), flash=flash))
    return see(f"/hostings/{name}")
