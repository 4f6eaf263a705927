"""The customer area: log in, your hostings, and the "Scripts e-mail" page of each, where the
owner blocks, purges, unblocks and changes the error-report recipient (the seed's guide).

Server-rendered HTML forms that work without JavaScript. Sessions live in the store (cookie
`__Host-` prefixed, Secure, HttpOnly, SameSite=Lax, new id at login, deleted at logout); every
form carries the session's CSRF token and a cross-site Origin is refused; failed logins wait
longer and longer, per account and per address.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import Response

from scriptmail.control.states import REQUESTS, SENDING_STATES, Actor
from scriptmail.international.addresses import display
from scriptmail.model import Hosting, HostingState
from scriptmail.store import accounts, customer_changes, stats, web_sessions
from scriptmail.store import hostings as hosting_store
from scriptmail.web import area_overview, i18n, throttle
from scriptmail.web.pages import (
    EXPIRED_FORM,
    LANGUAGE_COOKIE,
    LOGIN_COOKIE,
    NOT_FOUND,
    SESSION_COOKIE,
    CsrfField,
    EmailField,
    FlagField,
    Page,
    PasswordField,
    check_form,
    current_page,
    logged_in,
    posted,
    same_origin,
    see,
    set_cookie,
    too_many_attempts,
)  # fmt: skip

router = APIRouter(include_in_schema=False)

LIMITS = area_overview.LIMITS
MAX_BOUNCE_OFFSET = area_overview.MAX_BOUNCE_OFFSET


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
    email: EmailField = "",
    password: PasswordField = "",
    csrf: CsrfField = "",
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
        error = too_many_attempts(page, int(wait) + 1)
        return page.render("login.html", status=429, error=error, login_csrf=expected)
    user = await context.read(lambda c: accounts.check_password(c, email.strip(), password))
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


@router.post("/logout")
async def logout(request: Request, csrf: CsrfField = "") -> Response:
    page = await posted(request, csrf)
    await page.context.write(lambda c: web_sessions.close_session(c, page.session_id))
    response = see("/login")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.post("/language")
async def language(
    request: Request,
    language: Annotated[str, Form(max_length=5)] = "",  # none given is refused like an unknown one
    next: Annotated[str, Form(max_length=500)] = "/",
    csrf: CsrfField = "",
) -> Response:
    page = await current_page(request)
    if language not in i18n.CODES:
        raise HTTPException(400, f"{page._('Choose one of the offered languages.')} ({', '.join(i18n.CODES)})")
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = see(target)
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


_ACTIONS = area_overview.ACTIONS


def _actor(page: Page) -> Actor:
    return Actor.OPERATOR if page.user.operator else Actor.CUSTOMER


async def _permitted(page: Page, hosting_id: int) -> dict[str, tuple[bool, str]]:
    """Whether each action is allowed now (or why not), from the hosting's snapshot."""
    snapshot = await page.context.read_small(lambda c: area_overview.read_snapshot(c, hosting_id, page.context.clock()))
    if snapshot is None:
        raise HTTPException(404, page._(NOT_FOUND))
    return area_overview.permitted(page, snapshot, page.user.operator)


def _badge(page: Page, hosting: Hosting) -> dict[str, Any]:
    """What _state.html shows of a hosting."""
    return {
        "name": hosting.name, "state": hosting.state.value, "state_label": page.state_label(hosting.state),
        "sending": hosting.state in SENDING_STATES, "purging": hosting.state is HostingState.PURGING,
    }  # fmt: skip


_base_url = area_overview.base_url


@router.get("/hostings/{name}")
async def hosting_page(
    request: Request, name: str, limit: int = 20, page_number: Annotated[int, Query(alias="page")] = 0
) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    limit = limit if limit in LIMITS else 20
    # "Emails in error" pages back to MAX_BOUNCE_OFFSET; older errors are in the message log.
    page_number = max(0, min(page_number, MAX_BOUNCE_OFFSET // limit))
    response = await area_overview.render(page, request, hosting_id, limit, page_number)
    if response is None:
        raise HTTPException(404, page._(NOT_FOUND))
    return response


def _fragment_or_page(page: Page, request: Request, fragment: str, status: int = 200, **values: Any) -> Response:
    """htmx asks for the dialog's content; a browser without JavaScript gets it as a page."""
    if request.headers.get("hx-request") == "true":
        return page.render(fragment, status=status, **values)
    return page.render("dialog_page.html", status=status, fragment=fragment, **values)


@router.get("/hostings/{name}/confirm/{key}")
async def hosting_confirm(request: Request, name: str, key: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    if key not in _ACTIONS:
        raise HTTPException(404, page._("Unknown action."))
    code, title, style, explain = _ACTIONS[key]
    permitted = await _permitted(page, hosting_id)
    ok, hint = permitted[key]
    return _fragment_or_page(
        page, request, "_confirm.html", key=key, code=code, title=page._(title), explain=page._(explain),
        allowed=ok, hint=hint, style=style, base_url=_base_url(name), hosting_name=name,
    )  # fmt: skip


@router.get("/hostings/{name}/state")
async def hosting_state(request: Request, name: str) -> Response:
    """The live badge while a purge runs; once it is over the whole page reloads (its buttons change)."""
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    view = _badge(page, await page.context.read(lambda c: hosting_store.get_hosting(c, hosting_id)))  # polled: the row only
    response = page.render("_state.html", hosting=view, base_url=_base_url(name))
    if not view["purging"]:
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/hostings/{name}/action")
async def hosting_action(
    request: Request,
    name: str,
    action: FlagField = "",
    confirm: FlagField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await posted(request, csrf)
    hosting_id = await page.owned(name)
    if action not in REQUESTS:
        raise HTTPException(400, page._("Unknown action."))
    if confirm != "yes":
        await page.flash("error", page._("Confirm the action first."))
        return see(_base_url(name))
    reason = f"{action.lower()} requested in the customer area by {page.user.email}"
    await page.flash(*await page.change(name, REQUESTS[action], _actor(page), reason))
    area_overview.cache_of(request).forget(hosting_id)  # its kept blocks show the state before: free them now
    return see(_base_url(name))


@router.get("/hostings/{name}/report-to")
async def hosting_report_to_form(request: Request, name: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    hosting = await page.context.read(lambda c: hosting_store.get_hosting(c, hosting_id))
    return _fragment_or_page(
        page,
        request,
        "_report_to.html",
        value=display(hosting.report_recipient),
        error=None,
        base_url=_base_url(name),
        hosting_name=name,
    )


@router.post("/hostings/{name}/report-to")
async def hosting_report_to(
    request: Request,
    name: str,
    email: EmailField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await posted(request, csrf)
    hosting_id = await page.owned(name)
    address = email.strip()
    try:
        if not address:
            raise hosting_store.HostingError("empty")
        await page.context.write(lambda c: customer_changes.report_to(c, page.audit_actor, name, address, page.context.clock()))
    except hosting_store.HostingError:
        # The form again, with what was typed and why it was refused: nothing is lost.
        error = page._("This is not a valid e-mail address.")
        return page.render(
            "dialog_page.html", status=400, fragment="_report_to.html", value=address, error=error,
            base_url=_base_url(name), hosting_name=name,
        )  # fmt: skip
    area_overview.cache_of(request).forget(hosting_id)
    await page.flash("ok", page._("The error report will go to %(email)s.", email=address))
    return see(_base_url(name))
