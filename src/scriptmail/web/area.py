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
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scriptmail.control.states import REQUESTS, SENDING_STATES, Action, Actor, Context, TransitionNotAllowed, decide
from scriptmail.model import HostingState
from scriptmail.store import accounts, stats, web_sessions
from scriptmail.store import hostings as hosting_store
from scriptmail.store.hosting_control import change_state, history, repeated_spam
from scriptmail.web import i18n, throttle
from scriptmail.web.context import WebContext

router = APIRouter(include_in_schema=False)

SESSION_COOKIE = "__Host-scriptmail-session"
LOGIN_COOKIE = "__Host-scriptmail-login"  # the login form's CSRF token, before there is a session
LANGUAGE_COOKIE = "scriptmail-language"
LIMITS = (10, 20, 50, 100)

_STATE_LABELS = {
    HostingState.ACTIVE: "enabled",
    HostingState.BLOCKED: "disabled",
    HostingState.PURGING: "purge",
    HostingState.SPAM: "spam",
    HostingState.BOUNCE: "bounce",
    HostingState.FORCED: "force",
}


class _Page:
    """What one request knows: its context, language, session (if any)."""

    def __init__(self, request: Request, context: WebContext, session: web_sessions.Session | None, session_id: str) -> None:
        self.request = request
        self.context = context
        self.session = session
        self.session_id = session_id
        self.lang = session.user.language if session else i18n.choose(
            request.headers.get("accept-language"), request.cookies.get(LANGUAGE_COOKIE)
        )

    def _(self, message: str, **values: object) -> str:
        return i18n.gettext(self.lang, message, **values)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        flash = None
        if self.session and self.session.flash:
            kind, _, text = self.session.flash.partition(":")
            flash = {"kind": kind, "text": text}
        html = i18n.environment(self.lang).get_template(template).render(
            lang=self.lang,
            user_email=self.session.user.email if self.session else None,
            csrf=self.session.csrf if self.session else values.pop("login_csrf", ""),
            languages=i18n.LANGUAGES,
            flash=flash,
            static="/static",
            path=self.request.url.path,
            refresh=values.pop("refresh", False),
            **values,
        )
        return HTMLResponse(html, status_code=status)


async def _page(request: Request) -> _Page:
    context: WebContext = request.app.state.context
    session_id = request.cookies.get(SESSION_COOKIE, "")
    session = None
    if session_id:
        now = context.clock()
        session = await context.read(lambda c: web_sessions.find_session(c, session_id, now))
        if session is not None and (session.flash or now - session.seen_at > web_sessions.TOUCH_SECONDS):
            await context.write(lambda c: web_sessions.touch(c, session_id, now, flash="" if session.flash else None))
    return _Page(request, context, session, session_id)


def _same_origin(request: Request) -> bool:
    """A browser says where a form came from; refuse another site's (CSRF, second line)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")
    return urlsplit(origin).netloc == request.headers.get("host")


_EXPIRED_FORM = "this form has expired or comes from another site; reload the page and try again"


def _check_form(request: Request, page: _Page, csrf: str) -> None:
    """A form of a logged-in page: the session's token, from this site; else 403 (or log in)."""
    if page.session is None:
        raise Redirect("/login")
    if not _same_origin(request) or not secrets.compare_digest(csrf, page.session.csrf):
        raise HTTPException(403, _EXPIRED_FORM)


async def _posted(request: Request, csrf: str) -> _Page:
    page = await _page(request)
    _check_form(request, page, csrf)
    return page


class Redirect(Exception):
    """Raised deep in a handler to send the browser elsewhere (the login page)."""

    def __init__(self, location: str) -> None:
        self.location = location


def _see(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax")


# --- logging in and out ------------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    page = await _page(request)
    return _see("/hostings" if page.session else "/login")


@router.get("/login")
async def login_form(request: Request) -> Response:
    page = await _page(request)
    if page.session:
        return _see("/hostings")
    token = secrets.token_urlsafe(24)
    response = page.render("login.html", error=None, login_csrf=token)
    _cookie(response, LOGIN_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    page = await _page(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(csrf, expected) or not _same_origin(request):
        raise HTTPException(403, _EXPIRED_FORM)
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
    response = _see("/hostings")
    _cookie(response, SESSION_COOKIE, session_id)
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


def _check(context: WebContext, email: str, password: str) -> accounts.User | None:
    with context.engine.connect() as connection:
        return accounts.check_password(connection, email, password)


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    page = await _posted(request, csrf)
    await page.context.write(lambda c: web_sessions.close_session(c, page.session_id))
    response = _see("/login")
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
    response = _see(target)
    page = await _page(request)
    if page.session is not None:
        _check_form(request, page, csrf)
        await page.context.write(lambda c: accounts.set_language(c, page.session.user, language))
    response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, path="/", samesite="lax")
    return response


# --- hostings ---------------------------------------------------------------------------


def _label(page: _Page, state: HostingState) -> str:
    return page._(_STATE_LABELS[state])


@router.get("/hostings")
async def my_hostings(request: Request) -> Response:
    page = await _page(request)
    if page.session is None:
        return _see("/login")
    context, user = page.context, page.session.user

    def read(connection) -> list[dict]:
        rows = []
        for name in accounts.hosting_names(connection, user):
            hosting = hosting_store.find_hosting(connection, name=name)
            counters = stats.counters(connection, hosting.id, context.settings.plan(hosting.plan), context.clock())
            rows.append({"name": name, "state": hosting.state.value, "state_label": _label(page, hosting.state),
                         "sending": hosting.state in SENDING_STATES, "sent_today": counters["sentToday"]})  # fmt: skip
        return rows

    return page.render("hostings.html", hostings=await context.read(read))


async def _owned(page: _Page, name: str) -> int:
    hosting_id = await page.context.read(lambda c: accounts.may_see(c, page.session.user, name))
    if hosting_id is None:
        raise HTTPException(404, page._("This service does not exist"))
    return hosting_id


def _allowed(state: HostingState, action: Action, actor: Actor, repeat: bool) -> tuple[bool, str]:
    try:
        decide(state, action, actor, context=Context(repeat_spam=repeat))
    except TransitionNotAllowed as refused:
        return False, refused.reason
    return True, ""


@router.get("/hostings/{name}")
async def hosting_page(request: Request, name: str, limit: int = 20) -> Response:
    page = await _page(request)
    if page.session is None:
        return _see("/login")
    hosting_id = await _owned(page, name)
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
            "name": hosting.name, "state": hosting.state.value, "state_label": _label(page, hosting.state),
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
    page = await _posted(request, csrf)
    await _owned(page, name)
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
    return _see(f"/hostings/{name}")


@router.post("/hostings/{name}/report-to")
async def hosting_report_to(
    request: Request,
    name: str,
    email: Annotated[str, Form(max_length=320)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    page = await _posted(request, csrf)
    await _owned(page, name)
    address = email.strip()
    flash = "error:" + page._("This is not a valid e-mail address.")
    if address:
        try:
            await page.context.write(lambda c: hosting_store.update_hosting(c, name, report_to=address))
            flash = "ok:" + page._("The error report will go to %(email)s.", email=address)
        except hosting_store.HostingError:
            pass
    await page.context.write(lambda c: web_sessions.touch(c, page.session_id, page.context.clock(), flash=flash))
    return _see(f"/hostings/{name}")
