"""The operator area's pages for one message of a hosting: the hosting's held, waiting and failed
mail; one message with its recipients; and the actions on it alone (release it while the hosting
holds mail, whatever block holds it; delete it; send it again to failed recipients), each behind
a confirmation box and written in the hosting's history as the operator's. Also the hosting's
exports (log, emails in error, suppressed addresses), with the customer area's filters and window.

Operators only: a customer gets 403 on every route and method before anything is read.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from scriptmail.control.states import Actor, holds_mail
from scriptmail.model import HostingState, RecipientStatus
from scriptmail.store import customer_changes, one_message
from scriptmail.web import exports
from scriptmail.web.area_log import STATUS_LABELS
from scriptmail.web.area_viewer import NO_MESSAGE, AddressesField, perform
from scriptmail.web.operator import CONFIRM, _hosting, _hosting_url, operator_form, operator_page
from scriptmail.web.pages import CsrfField, FlagField, Page, see

router = APIRouter(prefix="/operator", include_in_schema=False)

SHOWN = 100
NoteField = Annotated[str, Form(max_length=500)]
ACTIONS = ("release", "delete", "resend")


def _mail_url(name: str, message_id: int | None = None) -> str:
    base = f"{_hosting_url(name)}/mail"
    return base if message_id is None else f"{base}/{message_id}"


def _number(page: Page, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise HTTPException(404, page._(NO_MESSAGE))
    return int(value)


@router.get("/hostings/{name}/mail")
async def mail_page(request: Request, name: str, status: str = "held") -> Response:
    page = await operator_page(request)
    hosting = await _hosting(page, name)
    try:
        chosen = RecipientStatus(status)
        if chosen not in one_message.LISTED:
            raise ValueError(status)
    except ValueError:
        raise HTTPException(400, page._("Unknown status: choose one from the list.")) from None
    rows = await page.context.read(lambda c: one_message.listing(c, hosting.id, chosen, limit=SHOWN))
    return page.render(
        "operator_mail.html",
        hosting={"name": hosting.name, "url": _hosting_url(hosting.name), "mail_url": _mail_url(hosting.name)},
        chosen=chosen.value,
        statuses=[(s.value, page._(STATUS_LABELS[s])) for s in one_message.LISTED],
        rows=[{**row, "received": page.when(row["received_at"])} for row in rows],
        export_url=f"{_hosting_url(hosting.name)}/export",
    )


@router.get("/hostings/{name}/mail/{message_id}")
async def message_page(request: Request, name: str, message_id: str) -> Response:
    page = await operator_page(request)
    hosting = await _hosting(page, name)
    number = _number(page, message_id)

    def read(connection) -> tuple[one_message.Stored | None, HostingState]:
        return one_message.find(connection, hosting.id, number), one_message.state_of(connection, hosting.id)

    stored, state = await page.context.read(read)
    if stored is None:
        raise HTTPException(404, page._(NO_MESSAGE))
    return page.render(
        "operator_message.html",
        hosting={"name": hosting.name, "url": _hosting_url(hosting.name), "mail_url": _mail_url(hosting.name)},
        message={"id": stored.id, "received": page.when(stored.received_at, seconds=True), "sender": stored.sender,
                 "stored": stored.data is not None},  # fmt: skip
        base_url=_mail_url(hosting.name, stored.id),
        viewer_url=f"/hostings/{quote(hosting.name, safe='')}/mail/{stored.id}",
        recipients=[
            {"address": r.address, "status": r.status, "label": page._(STATUS_LABELS.get(_status(r.status), r.status)),
             "reply": f"{r.code or ''} {r.text}".strip()}
            for r in stored.recipients
        ],  # fmt: skip
        failed=stored.failed,
        releasable=stored.held > 0 and holds_mail(state) and state is not HostingState.PURGING,
        deletable=any(r.status in ("held", "queued", "deferred") for r in stored.recipients),
        resendable=bool(stored.failed) and stored.data is not None,
    )


def _status(value: str) -> Any:
    try:
        return RecipientStatus(value)
    except ValueError:
        return value


@router.post("/hostings/{name}/mail/{message_id}/{action}")
async def act(
    request: Request, name: str, message_id: str, action: str,
    confirm: FlagField = "", csrf: CsrfField = "", note: NoteField = "", to: AddressesField = None,
) -> Response:  # fmt: skip
    page = await operator_form(request, csrf)
    hosting = await _hosting(page, name)
    number = _number(page, message_id)
    if action not in ACTIONS:
        raise HTTPException(404, page._(NO_MESSAGE))
    back = _mail_url(name, number)
    if confirm != "yes":
        await page.flash("error", page._(CONFIRM))
        return see(back)
    reason = f"by operator {page.user.email} in the operator area" + (f": {note.strip()}" if note.strip() else "")
    chosen = [a for a in (to or []) if len(a) <= 320] or None
    now = page.context.clock()

    def run(connection) -> int:
        return customer_changes.message_action(
            connection, page.audit_actor, hosting.name, hosting.id, number, action, Actor.OPERATOR, now, chosen, reason=reason
        )

    return await perform(page, action, run, back)


# --- exports -------------------------------------------------------------------------------


@router.get("/hostings/{name}/export/{kind}")
async def export(request: Request, name: str, kind: str) -> Response:
    page = await operator_page(request)
    hosting = await _hosting(page, name)
    return exports.export(page, request, hosting.name, hosting.id, kind)
