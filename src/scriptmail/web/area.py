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
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import Response

from scriptmail.catalogues import N_
from scriptmail.control.states import REQUESTS, SENDING_STATES, Actor
from scriptmail.international.addresses import display
from scriptmail.model import Hosting, HostingState
from scriptmail.store import accounts, customer_changes, stats, web_sessions
from scriptmail.store import hostings as hosting_store
from scriptmail.store.hosting_control import history, repeated_spam
from scriptmail.web import charts, i18n, throttle
from scriptmail.web.pages import (
    EXPIRED_FORM,
    LANGUAGE_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CsrfField,
    EmailField,
    FlagField,
    Page,
    PasswordField,
    allowed,
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

LIMITS = (10, 20, 50, 100)
MAX_BOUNCE_OFFSET = 10_000  # the reads of "Emails in error" grow with the offset: keep them bounded


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


# What each action does, said before it is confirmed (the guide's "Importante" notes).
_ACTIONS = {
    "block": ("BLOCK", N_("Block sending"), "warning",
              N_("No email is deleted: emails are held for up to 72 hours. During that time you can unblock sending or purge them.")),
    "purge": ("PURGE", N_("Purge the sending queue"), "danger",
              N_("Every email waiting to be sent is deleted for good, then sending is unblocked by itself. This can take a few minutes.")),
    "unblock": ("UNBLOCK", N_("Unblock sending"), "primary",
                N_("Sending resumes with the next email, and the held emails go back into the queue and are sent.")),
}  # fmt: skip


def _actor(page: Page) -> Actor:
    return Actor.OPERATOR if page.user.operator else Actor.CUSTOMER


async def _hosting_view(page: Page, hosting_id: int) -> tuple[dict[str, Any], dict[str, tuple[bool, str]]]:
    """The hosting as its pages show it, and whether each action is allowed now (or why not)."""
    context = page.context

    def read(connection) -> tuple:
        hosting = hosting_store.get_hosting(connection, hosting_id)
        counters = stats.counters(connection, hosting_id, context.settings.plan(hosting.plan), context.clock())
        return hosting, counters, repeated_spam(connection, hosting_id, context.clock())

    hosting, counters, repeat = await context.read_small(read)
    permitted = {}
    for key, (code, *_) in _ACTIONS.items():
        ok, reason = allowed(hosting.state, REQUESTS[code], _actor(page), repeat)
        permitted[key] = (ok, page._(reason) if reason else "")  # the state machine always says why not
    view = {
        **_badge(page, hosting), "report_to": hosting.report_recipient, "sent": counters["sent"],
        "sent_today": counters["sentToday"], "max_per_day": counters["maxPerDay"], "bounce": counters["bounce"],
    }  # fmt: skip
    return view, permitted


def _badge(page: Page, hosting: Hosting) -> dict[str, Any]:
    """What _state.html shows of a hosting."""
    return {
        "name": hosting.name, "state": hosting.state.value, "state_label": page.state_label(hosting.state),
        "sending": hosting.state in SENDING_STATES, "purging": hosting.state is HostingState.PURGING,
    }  # fmt: skip


def _base_url(name: str) -> str:
    return f"/hostings/{quote(name, safe='')}"


@router.get("/hostings/{name}")
async def hosting_page(
    request: Request, name: str, limit: int = 20, page_number: Annotated[int, Query(alias="page")] = 0
) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    limit = limit if limit in LIMITS else 20
    # "Emails in error" pages back to MAX_BOUNCE_OFFSET; older errors are in the message log.
    page_number = max(0, min(page_number, MAX_BOUNCE_OFFSET // limit))
    view, permitted = await _hosting_view(page, hosting_id)
    now, zone = page.context.clock(), page.zone
    rows, events, daily, hourly = await page.context.read(
        lambda c: (
            stats.bounces(c, hosting_id, limit=limit + 1, offset=page_number * limit), history(c, name, limit=50),
            stats.daily_volumes(c, hosting_id, now), stats.hourly_volumes(c, hosting_id, now, zone),
        )
    )  # fmt: skip
    return page.render(
        "hosting.html",
        refresh=view["purging"],
        hosting=view,
        base_url=_base_url(name),
        can_block=permitted["block"][0],
        can_purge=permitted["purge"][0],
        can_unblock=permitted["unblock"][0],
        block_hint=permitted["block"][1],
        purge_hint=permitted["purge"][1],
        unblock_hint=permitted["unblock"][1],
        explanations={key: page._(text) for key, (_, _, _, text) in _ACTIONS.items()},
        bounces=[
            {"date": page.when(row["date"]), "to": row["to"], "message": f"{row['code'] or ''} {row['message']}".strip()}
            for row in rows[:limit]
        ],
        limit=limit,
        limits=LIMITS,
        bounce_page=page_number,
        more_bounces=len(rows) > limit,
        last_bounce_page=page_number == MAX_BOUNCE_OFFSET // limit,
        history=page.history(events),
        latest_block=_latest_block(page, view, events),
        charts=charts.hosting_charts(daily, hourly, page._),
    )


def _latest_block(page: Page, view: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The evidence of the automatic block the hosting is in now, for its state section."""
    if view["state"] not in (HostingState.SPAM.value, HostingState.BOUNCE.value):
        return None
    for event in events:
        if event["to_state"] == view["state"] and event["actor"] == Actor.POLICY.value and event.get("evidence"):
            return {**event, **page.evidence(event["evidence"])}
        if event["to_state"] != view["state"]:
            break
    return None


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
    _, permitted = await _hosting_view(page, hosting_id)
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
    await page.owned(name)
    if action not in REQUESTS:
        raise HTTPException(400, page._("Unknown action."))
    if confirm != "yes":
        await page.flash("error", page._("Confirm the action first."))
        return see(_base_url(name))
    reason = f"{action.lower()} requested in the customer area by {page.user.email}"
    await page.flash(*await page.change(name, REQUESTS[action], _actor(page), reason))
    return see(_base_url(name))


@router.get("/hostings/{name}/report-to")
async def hosting_report_to_form(request: Request, name: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    hosting = await page.context.read(lambda c: hosting_store.get_hosting(c, hosting_id))
    return _fragment_or_page(
        page, request, "_report_to.html", value=display(hosting.report_recipient), error=None, base_url=_base_url(name), hosting_name=name
    )


@router.post("/hostings/{name}/report-to")
async def hosting_report_to(
    request: Request,
    name: str,
    email: EmailField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await posted(request, csrf)
    await page.owned(name)
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
    await page.flash("ok", page._("The error report will go to %(email)s.", email=address))
    return see(_base_url(name))
