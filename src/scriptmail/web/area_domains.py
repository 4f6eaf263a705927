"""The customer area's "Sending domains" page of a hosting: each domain's state, the exact DNS
records to publish (with copy buttons), the From domains seen but not set up, and adding one.

Same rules as the other pages: a hosting the user may not see is 404; forms carry the session's
CSRF token; bad input comes back with the form, what was typed, and why.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from babel.numbers import format_decimal
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from scriptmail.catalogues import N_
from scriptmail.domains import dns_check
from scriptmail.domains.keys import Algorithm
from scriptmail.domains.names import DomainNameError, display, normalise
from scriptmail.domains.provision import new_keys
from scriptmail.domains.vault import VaultError
from scriptmail.domains.view import describe
from scriptmail.store import customer_changes
from scriptmail.store import domains as store
from scriptmail.web.pages import CsrfField, Page, logged_in, posted, see

router = APIRouter(include_in_schema=False)
DomainField = Annotated[str, Form(max_length=300)]

STATE_LABELS = {
    "pending": N_("Waiting for DNS"), "verified": N_("Verified"), "failing": N_("Failing"), "not-set-up": N_("Seen, not set up"),
}  # fmt: skip
ROLE_LABELS = {"signing": N_("Signs your mail"), "next": N_("Next key (rotation)"), "retiring": N_("Old key, keep it until")}


def _url(name: str) -> str:
    return f"/hostings/{name}/domains"


async def _page(page: Page, name: str, hosting_id: int, status: int = 200, typed: str = "", error: str = "") -> Response:
    def read(connection) -> tuple[list[dict], list[dict]]:
        rows = store.list_domains(connection, hosting_id)
        details = [describe(store.find_domain(connection, row["domain"])) for row in rows if row["state"] != "not-set-up"]
        return rows, details

    rows, details = await page.context.read(read)
    by_domain = {view["a_label"]: view for view in details}
    shown: list[dict[str, Any]] = []
    for row in rows:
        view = by_domain.get(row["domain"])
        shown.append(
            {
                "domain": display(row["domain"]), "a_label": row["domain"], "state": row["state"],
                "state_label": page._(STATE_LABELS[row["state"]]), "reason": row["reason"] if row["state"] != "not-set-up" else "",
                "messages": format_decimal(row["messages"], locale=page.lang),
                "records": [
                    {**record, "role_label": page._(ROLE_LABELS[record["role"]]), "state_label": page._(STATE_LABELS[record["state"]]),
                     "keep_until": page.when(record["keep_until"])}
                    for record in (view["records"] if view else [])
                ],
                "checked": page.when(view["checked_at"]) if view else "",
            }
        )  # fmt: skip
    platform = page.context.settings.domains.platform_domain
    return page.render(
        "domains.html", status=status, hosting_name=name, domains=shown, typed=typed, error=error,
        platform=display(platform) if platform else "",
    )  # fmt: skip


@router.get("/hostings/{name}/domains")
async def domains_page(request: Request, name: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    return await _page(page, name, hosting_id)


@router.post("/hostings/{name}/domains")
async def domains_add(
    request: Request, name: str, domain: DomainField = "", move: Annotated[str, Form(max_length=10)] = "", csrf: CsrfField = ""
) -> Response:
    """Add a domain with its first keys; an operator may move it here from another hosting."""
    page = await posted(request, csrf)
    moving = move == "yes" and page.user.operator  # a customer's "move" is ignored: only an operator moves
    hosting_id = await page.owned(name)
    typed = domain.strip()
    try:
        a_label = normalise(typed)
    except DomainNameError:
        return await _page(page, name, hosting_id, 400, typed, page._("This is not a domain name (for example: shop.example)."))
    settings = page.context.settings.domains
    try:
        first = not await page.context.read(store.has_keys)
        keys = await asyncio.to_thread(new_keys, settings, page.context.clock(), (), None, first)
        await page.context.write(
            lambda c: customer_changes.domain_add(c, page.audit_actor, name, hosting_id, a_label, keys, page.context.clock(), move=moving)
        )
    except store.DomainExists:
        return await _page(page, name, hosting_id, 409, typed, page._("This domain is already in the list."))
    except store.DomainTaken:
        error = page._("Another hosting sends with this domain. Ask support to move it to this hosting.")
        if page.user.operator:
            error = page._("Another hosting sends with this domain: tick the box below to move it here.")
        return await _page(page, name, hosting_id, 409, typed, error)
    except VaultError:
        return await _page(page, name, hosting_id, 503, typed, page._("Keys cannot be made right now; try again later."))
    await page.flash("ok", page._("%(domain)s added: publish its record, then check it.", domain=display(a_label)))
    return see(_url(name))


@router.post("/hostings/{name}/domains/check")
async def domains_check(request: Request, name: str, domain: DomainField = "", csrf: CsrfField = "") -> Response:
    page = await posted(request, csrf)
    hosting_id = await page.owned(name)
    try:
        a_label = normalise(domain)
    except DomainNameError:
        a_label = ""
    found = await page.context.read(lambda c: store.find_domain(c, a_label)) if a_label else None
    if found is None or found["hosting_id"] != hosting_id:
        return await _page(page, name, hosting_id, 404, error=page._("This domain is not in the list."))
    await dns_check.check(page.context.engine, page.context.write, page.context.settings, page.context.clock(), a_label)
    await page.context.write(lambda c: customer_changes.domain_checked(c, page.audit_actor, name, a_label, found["state"], page.context.clock()))
    return see(_url(name) + f"#d-{a_label}")


# --- key rotation, confirmed first -------------------------------------------------------------

ROTATE_TITLE = N_("Rotate the key of %(domain)s?")
ROTATE_EXPLAIN = N_("A new key is made and its record is shown on this page: publish it beside the current one. Your mail stays signed with the current key until the new record is found in DNS, then the new key signs. Keep the old record %(days)s more days after that: mail already on its way is still checked with it.")  # noqa: E501
NOT_VERIFIED = N_("Publish and verify the current record before rotating the key.")
ROTATION_WAITING = N_("A rotation is already waiting for its new record in DNS: publish it and check the domain.")


async def _owned_domain(page: Page, hosting_id: int, domain: str) -> dict[str, Any] | None:
    try:
        a_label = normalise(domain)
    except DomainNameError:
        return None
    found = await page.context.read(lambda c: store.find_domain(c, a_label))
    return found if found is not None and found["hosting_id"] == hosting_id else None


@router.get("/hostings/{name}/domains/rotate")
async def domains_rotate_confirm(request: Request, name: str) -> Response:
    """What a rotation does, said before it is confirmed: in the page's dialog when htmx asks, else
    as a page of its own (without JavaScript, or reached by its address)."""
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    found = await _owned_domain(page, hosting_id, request.query_params.get("domain", "")[:300])
    if found is None:
        return await _page(page, name, hosting_id, 404, error=page._("This domain is not in the list."))
    days = f"{page.context.settings.domains.rotation_overlap / 86400:g}"
    dialog = request.headers.get("hx-request") == "true"
    return page.render(
        "_rotate_confirm.html" if dialog else "dialog_page.html", fragment="_rotate_confirm.html", hosting_name=name, base_url=_url(name),
        title=page._(ROTATE_TITLE, domain=display(found["domain"])), explain=page._(ROTATE_EXPLAIN, days=days),
        a_label=found["domain"], allowed=found["state"] == "verified", hint=page._(NOT_VERIFIED),
    )  # fmt: skip


@router.post("/hostings/{name}/domains/rotate")
async def domains_rotate(
    request: Request, name: str, domain: DomainField = "", confirm: Annotated[str, Form(max_length=10)] = "", csrf: CsrfField = ""
) -> Response:
    """Make the next keys (they sign once DNS holds them, as `domain rotate` does) and show their records."""
    page = await posted(request, csrf)
    hosting_id = await page.owned(name)
    found = await _owned_domain(page, hosting_id, domain)
    if found is None:
        return await _page(page, name, hosting_id, 404, error=page._("This domain is not in the list."))
    if confirm != "yes":
        await page.flash("error", page._("Confirm the action first."))
        return see(_url(name) + f"#d-{found['domain']}")
    if found["state"] != "verified":
        return await _page(page, name, hosting_id, 409, error=page._(NOT_VERIFIED))
    signing = [Algorithm(key["algorithm"]) for key in found["keys"] if key["active"]]
    taken = [key["selector"] for key in found["keys"]]
    settings = page.context.settings.domains
    try:
        keys = await asyncio.to_thread(new_keys, settings, page.context.clock(), taken, signing, False)
        await page.context.write(lambda c: customer_changes.domain_rotate(c, page.audit_actor, name, found["domain"], keys, page.context.clock()))
    except VaultError:
        return await _page(page, name, hosting_id, 503, error=page._("Keys cannot be made right now; try again later."))
    except store.RotationRefused:
        return await _page(page, name, hosting_id, 409, error=page._(ROTATION_WAITING))
    await page.flash("ok", page._("New key made for %(domain)s: publish its record, then check it.", domain=display(found["domain"])))
    return see(_url(name) + f"#d-{found['domain']}")


# --- the operator's view of every domain -----------------------------------------------------------


@router.get("/operator/domains")
async def operator_domains(request: Request) -> Response:
    """Every sending domain of the platform by state (a filter), with its hosting and the reason."""
    from scriptmail.web.operator import operator_page

    page = await operator_page(request)
    wanted = request.query_params.get("state", "")
    if wanted and wanted not in STATE_LABELS:
        wanted = ""
    rows = await page.context.read(store.list_domains)
    counts = {state: sum(1 for row in rows if row["state"] == state) for state in STATE_LABELS}
    shown = [
        {"domain": display(row["domain"]), "hosting": row["hosting"], "state": row["state"], "state_label": page._(STATE_LABELS[row["state"]]),
         "reason": row["reason"] if row["state"] != "not-set-up" else "", "messages": format_decimal(row["messages"], locale=page.lang),
         "checked": page.when(row["checked_at"])}
        for row in rows
        if not wanted or row["state"] == wanted
    ]  # fmt: skip
    states = [(state, page._(label), counts[state]) for state, label in STATE_LABELS.items()]
    return page.render("operator_domains.html", domains=shown, states=states, wanted=wanted)
