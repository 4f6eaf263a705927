"""The customer area's "Suppressed addresses" tab: the hosting's suppression list, searched a page
at a time by address, and the removal of an entry, confirmed first, optionally sending again the
mail it stopped in the last 72 hours."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from scriptmail.catalogues import N_
from scriptmail.store import customer_changes, suppressions
from scriptmail.suppression.rules import lookup_form, shown
from scriptmail.web.pages import CsrfField, EmailField, FlagField, Page, logged_in, posted, see

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
REASONS = {
    "no-such-user": N_("The address does not exist"),
    "repeated-failure": N_("Failed twice within a day"),
    "manual": N_("Added by hand"),
}


def _base(name: str) -> str:
    return f"/hostings/{quote(name, safe='')}/suppressions"


def _row(page: Page, row: dict) -> dict:
    reply = f"{row['code'] or ''} {row['reply']}".strip()
    return {
        "address": row["value"],
        "shown": shown(row["value"]),
        "reason": page._(REASONS[row["reason"]]) if row["reason"] in REASONS else row["reason"],
        "reply": reply,
        "since": page.when(row["created_at"]),
        "until": page.when(row["expires_at"]) if row["expires_at"] else "",
    }


@router.get("/hostings/{name}/suppressions")
async def suppressions_page(request: Request, name: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    search = request.query_params.get("search", "").strip()
    after = request.query_params.get("after") or None
    if len(search) > 320 or (after is not None and len(after) > 320):
        raise HTTPException(400, page._("This search is too long."))
    now = page.context.clock()
    rows, total = await page.context.read(
        lambda c: (suppressions.entries(c, hosting_id, now, search=search, after=after, limit=PAGE_SIZE + 1), suppressions.count(c, hosting_id, now))
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return page.render(
        "suppressions.html", hosting_name=name, base_url=_base(name), search=search, total=total,
        entries=[_row(page, row) for row in rows], next_after=rows[-1]["value"] if more else None, confirm=None,
    )  # fmt: skip


@router.get("/hostings/{name}/suppressions/remove")
async def remove_form(request: Request, name: str) -> Response:
    """The confirmation before a removal: what is removed, and whether to send again."""
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    address = lookup_form(request.query_params.get("address", ""))
    now = page.context.clock()
    found = await page.context.read(lambda c: [r for r in suppressions.entries(c, hosting_id, now, search=address[:320]) if r["value"] == address])
    if not found:
        raise HTTPException(404, page._("This address is not on the list."))
    return page.render(
        "suppressions.html", hosting_name=name, base_url=_base(name), search="", total=0, entries=[], next_after=None,
        confirm=_row(page, found[0]),
    )  # fmt: skip


@router.post("/hostings/{name}/suppressions/remove")
async def remove(
    request: Request, name: str, address: EmailField = "", requeue: FlagField = "", confirm: FlagField = "", csrf: CsrfField = ""
) -> Response:
    page = await posted(request, csrf)
    hosting_id = await page.owned(name)
    if confirm != "yes":
        await page.flash("error", page._("Confirm the action first."))
        return see(_base(name))
    removed = await page.context.write(
        lambda c: customer_changes.suppression_remove(c, page.audit_actor, name, hosting_id, address, page.context.clock(), requeue == "yes")
    )
    if not removed.found:
        await page.flash("error", page._("This address is not on the list."))
    elif requeue == "yes":
        await page.flash("ok", page._("%(address)s removed; %(count)s email(s) sent again.", address=address, count=removed.requeued))
    else:
        await page.flash("ok", page._("%(address)s removed: new email to it will be sent.", address=address))
    return see(_base(name))
