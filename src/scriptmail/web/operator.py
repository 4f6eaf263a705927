"""The operator area (issue 5): every hosting with its volume today, one hosting's controls (force
a state, lift a spam block, block, purge, unblock, change the plan), the platform's queue, and the
accounts (add, grant, revoke, operator flag, new password).

Only operators get in: a visitor without a session is sent to the login page, a customer gets 403
on every route and method, before anything is read or written. Forms are the customer area's:
server-rendered, CSRF token and Origin checked, a confirmation box for every change of a hosting,
and a redirect with a flash message afterwards. A generated password is the one exception: it is
rendered in the answer to the POST itself (never stored, not even in the session's flash row) and
that answer is marked no-store, so it is shown exactly once.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from scriptmail.catalogues import N_
from scriptmail.control.states import REQUESTS, SENDING_STATES, Action, Actor
from scriptmail.model import Hosting, HostingState
from scriptmail.store import accounts, audit, evidence, operator_views, site_deferred, stats
from scriptmail.store import hostings as hosting_store
from scriptmail.store.hosting_control import change_plan, history, repeated_spam
from scriptmail.store.hostings import SYSTEM_HOSTING
from scriptmail.web import i18n
from scriptmail.web.pages import (
    NOT_FOUND,
    CsrfField,
    EmailField,
    FlagField,
    HostingField,
    Page,
    allowed,
    logged_in,
    posted,
    see,
)

router = APIRouter(prefix="/operator", include_in_schema=False)

PAGE_SIZE = 100
QUEUE_ROWS = 20
NOT_OPERATOR = "This page is for the platform's operators."
CONFIRM = N_("Tick the box to confirm.")
BAD_EMAIL = "This is not a valid e-mail address."
# An operator forces any state but `purging`: a purge is started with PURGE, and ends by itself.
SETTABLE = tuple(state for state in HostingState if state is not HostingState.PURGING)


async def operator_page(request: Request) -> Page:
    """The page of a logged-in operator; a customer gets 403, a visitor the login page."""
    page = await logged_in(request)
    if not page.user.operator:
        raise HTTPException(403, page._(NOT_OPERATOR))
    return page


async def operator_form(request: Request, csrf: str) -> Page:
    """A form posted by an operator from this site (CSRF token and Origin), else 403."""
    page = await posted(request, csrf)
    if not page.user.operator:
        raise HTTPException(403, page._(NOT_OPERATOR))
    return page


def _age(page: Page, seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return page._("%(days)s d %(hours)s h", days=days, hours=hours)
    if hours:
        return page._("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
    if minutes:
        return page._("%(minutes)s min", minutes=minutes)
    return page._("%(seconds)s s", seconds=seconds)


def _whole(value: str, minimum: int = 0) -> int | None:
    """A whole number typed in a GET form ("" is the minimum); None when it is not one."""
    value = value.strip()
    if not value:
        return minimum
    return max(int(value), minimum) if value.isdigit() and len(value) <= 12 else None


def _hosting_url(name: str) -> str:
    return f"/operator/hostings/{quote(name, safe='')}"


# --- every hosting -----------------------------------------------------------------------


@router.get("")
async def hostings_page(
    request: Request, state: str = "", plan: str = "", min_today: str = "", q: str = "", page: str = "1"
) -> Response:
    current = await operator_page(request)
    context = current.context
    if state and state not in {s.value for s in HostingState}:
        raise HTTPException(400, current._("Unknown state."))
    minimum = _whole(min_today)
    if minimum is None:
        raise HTTPException(400, current._("The minimum volume must be a whole number."))
    number = _whole(page, minimum=1) or 1
    filters = operator_views.HostingFilters(
        state=HostingState(state) if state else None, plan=plan[:64] or None, min_today=minimum, name_contains=q[:253]
    )
    now = context.clock()
    found = await context.read(
        lambda c: operator_views.hosting_list(c, filters, now, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    )
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    kept = {key: value for key, value in (("state", state), ("plan", plan), ("min_today", min_today.strip()), ("q", q)) if value}

    def link(n: int) -> str:
        return "/operator?" + urlencode({**kept, "page": n})

    return current.render(
        "operator_hostings.html",
        hostings=[
            {
                **row,
                "url": _hosting_url(row["name"]),
                "state": row["state"].value,
                "state_label": current.state_label(row["state"]),
                "sending": row["state"] in SENDING_STATES,
            }
            for row in found.rows
        ],
        total=found.total,
        counts=[(current.state_label(s), found.counts.get(s.value, 0)) for s in HostingState],
        states=[(s.value, current.state_label(s)) for s in HostingState],
        plans=sorted(context.settings.plans),
        filters={"state": state, "plan": plan, "min_today": min_today.strip(), "q": q},
        page_number=number,
        pages=pages,
        previous=link(number - 1) if number > 1 else None,
        next=link(number + 1) if number < pages else None,
    )


# --- one hosting -------------------------------------------------------------------------


async def _hosting(page: Page, name: str) -> Hosting:
    """A customer hosting by name; 404 for an unknown name and for the platform's own."""
    hosting = None
    if name != SYSTEM_HOSTING:
        hosting = await page.context.read(lambda c: hosting_store.find_hosting(c, name=name))
    if hosting is None:
        raise HTTPException(404, page._(NOT_FOUND))
    return hosting


@router.get("/hostings/{name}")
async def hosting_page(request: Request, name: str) -> Response:
    page = await operator_page(request)
    hosting = await _hosting(page, name)
    context = page.context
    now = context.clock()

    def read(connection) -> dict[str, Any]:
        return {
            "counters": stats.counters(connection, hosting.id, context.settings.plan(hosting.plan), now),
            "queue": operator_views.queue_by_status(connection, hosting.id),
            "owners": operator_views.owners_of(connection, [hosting.id]).get(hosting.id, []),
            "repeat": repeated_spam(connection, hosting.id, now),
            "history": history(connection, name, limit=50),
        }

    data = await context.read(read)
    actions = {}
    for code in REQUESTS:
        ok, hint = allowed(hosting.state, REQUESTS[code], Actor.OPERATOR, data["repeat"])
        actions[code] = {"allowed": ok, "hint": page._(hint) if hint else ""}
    return page.render(
        "operator_hosting.html",
        refresh=hosting.state is HostingState.PURGING,
        hosting={
            "name": hosting.name,
            "url": _hosting_url(hosting.name),
            "state": hosting.state.value,
            "state_label": page.state_label(hosting.state),
            "sending": hosting.state in SENDING_STATES,
            "purging": hosting.state is HostingState.PURGING,
            "spam": hosting.state is HostingState.SPAM,
            "plan": hosting.plan,
            "plan_known": hosting.plan in context.settings.plans,
            "owner_email": hosting.owner_email,
            "report_to": hosting.report_to,
            "owners": data["owners"],
        },
        counters=data["counters"],
        queue=[(status, page._(status), count) for status, count in data["queue"].items()],
        actions=actions,
        states=[(s.value, page.state_label(s)) for s in SETTABLE],
        plans=sorted(context.settings.plans),
        history=page.history(data["history"]),
        false_positive_url=f"{_hosting_url(hosting.name)}/false-positive",
    )


@router.post("/hostings/{name}/state")
async def force_state(
    request: Request,
    name: str,
    state: Annotated[str, Form(max_length=16)] = "",
    confirm: FlagField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await operator_form(request, csrf)
    await _hosting(page, name)
    if state not in {s.value for s in HostingState}:
        raise HTTPException(400, page._("Unknown state."))
    if not confirm:
        flash = "error", page._(CONFIRM)
    else:
        reason = f"set to {state} by operator {page.user.email} in the operator area"
        flash = await page.change(name, Action.SET, Actor.OPERATOR, reason, target=HostingState(state))
    await page.flash(*flash)
    return see(_hosting_url(name))


@router.post("/hostings/{name}/false-positive/{event_id}")
async def false_positive(
    request: Request, name: str, event_id: str, note: Annotated[str, Form(max_length=2000)] = "", csrf: CsrfField = ""
) -> Response:
    """Mark an automatic block as wrong, with a note: counted in the metrics to tune the thresholds.
    The id is checked after the operator's session, so nobody else learns anything from its form."""
    page = await operator_form(request, csrf)
    await _hosting(page, name)
    try:
        if not (event_id.isascii() and event_id.isdigit() and len(event_id) < 19):
            raise evidence.EvidenceError(event_id)
        def mark(connection) -> None:
            now = page.context.clock()
            evidence.mark_false_positive(connection, name, int(event_id), page.user.email, note, now)
            audit.record(connection, page.audit_actor, "block.false_positive", f"block {event_id}", now, after={"note": note}, hosting=name)

        await page.context.write(mark)
    except evidence.EvidenceError:
        raise HTTPException(404, page._("No such automatic block, or it is already marked.")) from None
    await page.flash("ok", page._("The block is marked as a false positive."))
    return see(_hosting_url(name))


@router.post("/hostings/{name}/action")
async def hosting_action(
    request: Request,
    name: str,
    action: FlagField = "",
    confirm: FlagField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await operator_form(request, csrf)
    hosting = await _hosting(page, name)
    if action not in REQUESTS:
        raise HTTPException(400, page._("Unknown action."))
    if not confirm:
        flash = "error", page._(CONFIRM)
    else:
        what = (
            "spam block lifted" if REQUESTS[action] is Action.UNBLOCK and hosting.state is HostingState.SPAM else action.lower()
        )
        reason = f"{what} by operator {page.user.email} in the operator area"
        flash = await page.change(name, REQUESTS[action], Actor.OPERATOR, reason)
    await page.flash(*flash)
    return see(_hosting_url(name))


@router.post("/hostings/{name}/plan")
async def set_plan(
    request: Request,
    name: str,
    plan: Annotated[str, Form(max_length=64)] = "",
    confirm: FlagField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await operator_form(request, csrf)
    await _hosting(page, name)
    if plan not in page.context.settings.plans:
        raise HTTPException(400, page._("There is no plan named %(plan)s.", plan=plan))
    if not confirm:
        await page.flash("error", page._(CONFIRM))
    else:
        reason = f"changed by operator {page.user.email} in the operator area"
        def move(connection) -> None:
            now = page.context.clock()
            before = change_plan(connection, name, plan, Actor.OPERATOR, now, reason=reason)
            audit.record(connection, page.audit_actor, "hosting.plan", name, now, before={"plan": before}, after={"plan": plan}, hosting=name)

        await page.context.write(move)
        await page.flash("ok", page._("The plan of %(name)s is now %(plan)s.", name=name, plan=plan))
    return see(_hosting_url(name))


# --- the queue ---------------------------------------------------------------------------


@router.get("/queue")
async def queue_page(request: Request) -> Response:
    page = await operator_page(request)
    context = page.context

    def read(connection) -> dict[str, Any]:
        return {
            "statuses": operator_views.queue_by_status(connection),
            "domains": operator_views.queue_by_domain(connection, limit=QUEUE_ROWS),
            "oldest": operator_views.oldest_waiting(connection, limit=QUEUE_ROWS),
            "sites": site_deferred.current_sites(connection, context.settings.delivery.site_table(), context.clock()),
        }

    data = await context.read(read)
    now = context.clock()
    total = sum(data["statuses"].values())
    return page.render(
        "operator_queue.html",
        statuses=[(status, page._(status), count) for status, count in data["statuses"].items()],
        total=total,
        sampled=total > operator_views.DOMAIN_SCAN,
        scan=operator_views.DOMAIN_SCAN,
        domains=data["domains"],
        sites=site_rows(page, data["sites"]),
        oldest=[
            {
                **row,
                "url": _hosting_url(row["hosting"]) if row["hosting"] != SYSTEM_HOSTING else None,
                "status_label": page._(row["status"]),
                "queued": page.when(row["queued_at"]),
                "age": _age(page, now - row["queued_at"]),
                "error": f"{row['last_code'] or ''} {row['last_text']}".strip(),
            }
            for row in data["oldest"]
        ],
    )


# --- traffic shaping (the rest of it is web/operator_sites.py) ----------------------------


def limits_text(page: Page, limits: dict) -> str:
    none = "—"
    return page._(
        "%(connections)s connections, %(per_connection)s per connection, %(per_minute)s a minute, %(per_hour)s an hour",
        connections=limits["connections"],
        per_connection=limits["messages_per_connection"],
        per_minute=limits["per_minute"] or none,
        per_hour=limits["per_hour"] or none,
    )


def site_rows(page: Page, rows: list[dict]) -> list[dict[str, Any]]:
    """What the templates show of each site (the queue page shares it)."""
    return [
        {
            **row,
            "limits_text": limits_text(page, row["limits"]),
            "configured_text": limits_text(page, row["configured"]),
            "slowed": row.get("level", 0) > 0,
            "recovers": round(row.get("recovers_in") or 0),
        }
        for row in rows
    ]


# --- accounts ----------------------------------------------------------------------------


async def _accounts(
    page: Page,
    q: str = "",
    number: int = 1,
    status: int = 200,
    error: str = "",
    secret: dict | None = None,
    form: dict | None = None,
) -> HTMLResponse:
    """The accounts page; after a POST it may carry an error (and what was typed) or a new password."""
    users, total = await page.context.read(lambda c: accounts.list_users(c, q, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE))
    pages = max(1, math.ceil(total / PAGE_SIZE))

    def link(n: int) -> str:
        return "/operator/accounts?" + urlencode({**({"q": q} if q else {}), "page": n})

    response = page.render(
        "operator_accounts.html",
        status=status,
        users=users,
        total=total,
        q=q,
        page_number=number,
        pages=pages,
        previous=link(number - 1) if number > 1 else None,
        next=link(number + 1) if number < pages else None,
        error=error,
        secret=secret,
        form=form or {},
        me=page.user.email,
        language_choices=i18n.LANGUAGES,
    )
    if secret:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/accounts")
async def accounts_page(request: Request, q: str = "", page: str = "1") -> Response:
    current = await operator_page(request)
    return await _accounts(current, q[:320], _whole(page, minimum=1) or 1)


def _email(value: str) -> str | None:
    address = value.strip().lower()
    try:
        return hosting_store.check_email(address)
    except hosting_store.HostingError:
        return None


async def _user(page: Page, email: str, form: dict | None = None) -> accounts.User | HTMLResponse:
    """The user with this e-mail address; else the accounts page that says there is none (404)."""
    address = email.strip().lower()
    user = await page.context.read(lambda c: accounts.find_user(c, email=address)) if address else None
    if user is None:
        return await _accounts(page, status=404, error=page._("There is no user %(email)s.", email=email.strip()), form=form)
    return user


@router.post("/accounts/add")
async def add_user(
    request: Request,
    email: EmailField = "",
    operator: FlagField = "",
    language: Annotated[str, Form(max_length=5)] = "en",
    csrf: CsrfField = "",
) -> Response:
    page = await operator_form(request, csrf)
    typed = {"email": email, "operator": bool(operator), "language": language}
    address = _email(email)
    if address is None:
        return await _accounts(page, status=400, error=page._(BAD_EMAIL), form=typed)
    if language not in i18n.CODES:
        return await _accounts(page, status=400, error=page._("Choose one of the offered languages."), form=typed)
    password = accounts.new_password()
    hashed = await asyncio.to_thread(accounts.password_hash, password)  # slow on purpose: not in the writer

    def add(connection) -> accounts.User | None:
        if accounts.find_user(connection, email=address) is not None:
            return None  # checked first: a failed INSERT would spoil the group commit's transaction
        user = accounts.add_user(connection, address, operator=bool(operator), language=language, hashed=hashed)
        audit.record(connection, page.audit_actor, "user.create", address, page.context.clock(),
                     after={"email": address, "operator": bool(operator), "language": language})  # fmt: skip
        return user

    if await page.context.write(add) is None:
        return await _accounts(page, status=400, error=page._("A user %(email)s already exists.", email=address), form=typed)
    return await _accounts(page, secret={"email": address, "password": password, "new": True})


@router.post("/accounts/grant")
async def grant(
    request: Request,
    email: EmailField = "",
    hosting: HostingField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await operator_form(request, csrf)
    name = hosting.strip().lower()
    typed = {"grant_email": email, "grant_hosting": hosting}
    user = await _user(page, email, form=typed)
    if not isinstance(user, accounts.User):
        return user
    if name == SYSTEM_HOSTING or await page.context.read(lambda c: hosting_store.find_hosting(c, name=name)) is None:
        return await _accounts(page, status=404, error=page._("There is no hosting named %(name)s.", name=name), form=typed)
    def give(connection) -> None:
        accounts.grant(connection, user, name)
        audit.record(connection, page.audit_actor, "user.grant", user.email, page.context.clock(), after={"hosting": name}, hosting=name)

    await page.context.write(give)
    await page.flash("ok", page._("%(email)s now owns %(name)s.", email=user.email, name=name))
    return see("/operator/accounts")


@router.post("/accounts/revoke")
async def revoke(
    request: Request,
    email: EmailField = "",
    hosting: HostingField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await operator_form(request, csrf)
    user = await _user(page, email)
    if not isinstance(user, accounts.User):
        return user
    try:
        def take(connection) -> None:
            accounts.revoke(connection, user, hosting)
            audit.record(connection, page.audit_actor, "user.revoke", user.email, page.context.clock(), before={"hosting": hosting}, hosting=hosting)

        await page.context.write(take)
    except accounts.AccountError:
        return await _accounts(page, status=404, error=page._("%(email)s does not own %(name)s.", email=user.email, name=hosting))
    await page.flash("ok", page._("%(email)s no longer owns %(name)s.", email=user.email, name=hosting))
    return see("/operator/accounts")


@router.post("/accounts/operator")
async def set_operator(
    request: Request,
    email: EmailField = "",
    operator: FlagField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await operator_form(request, csrf)
    user = await _user(page, email)
    if not isinstance(user, accounts.User):
        return user
    make = operator == "yes"
    if user.id == page.user.id and not make:
        return await _accounts(page, status=400, error=page._("You cannot remove your own operator rights."))
    def rights(connection) -> None:
        accounts.set_operator(connection, user, make)
        audit.record(connection, page.audit_actor, "user.operator", user.email, page.context.clock(),
                     before={"operator": user.operator}, after={"operator": make})  # fmt: skip

    await page.context.write(rights)
    text = "%(email)s is now an operator." if make else "%(email)s is no longer an operator."
    await page.flash("ok", page._(text, email=user.email))
    return see("/operator/accounts")


@router.post("/accounts/password")
async def reset_password(
    request: Request,
    email: EmailField = "",
    confirm: FlagField = "",
    csrf: CsrfField = "",
) -> Response:
    page = await operator_form(request, csrf)
    user = await _user(page, email)
    if not isinstance(user, accounts.User):
        return user
    if not confirm:
        return await _accounts(page, status=400, error=page._(CONFIRM))
    password = accounts.new_password()
    hashed = await asyncio.to_thread(accounts.password_hash, password)
    def reset(connection) -> None:
        accounts.set_password(connection, user.email, hashed=hashed)
        audit.record(connection, page.audit_actor, "user.password", user.email, page.context.clock())  # that it changed, never the password

    await page.context.write(reset)
    return await _accounts(page, secret={"email": user.email, "password": password, "new": False})


# --- audit log ---------------------------------------------------------------------------

AUDIT_ROWS = 200


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    """The last changes (the admin API, the operator area, the CLI, the customers' API and area),
    with who made each; `?hosting=` keeps one hosting's."""
    page = await operator_page(request)
    hosting = audit.clean(request.query_params.get("hosting", "").strip(), 253)
    rows, total = await page.context.read(lambda c: audit.entries(c, hosting=hosting, limit=AUDIT_ROWS))
    return page.render(
        "operator_audit.html",
        total=total,
        hosting=hosting,
        rows=[
            {
                **row,
                "when": page.when(row["at"], seconds=True),
                "before": "" if row["before"] is None else json.dumps(row["before"], sort_keys=True, ensure_ascii=False),
                "after": "" if row["after"] is None else json.dumps(row["after"], sort_keys=True, ensure_ascii=False),
            }
            for row in rows
        ],
    )
