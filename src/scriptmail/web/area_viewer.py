"""The customer area's viewer of one stored message (held or not): every header, the text, the
HTML in a sandboxed frame, the attachments and the raw source; and the actions on that message
alone: release it while the hosting is blocked, delete it, send it again to failed recipients.

The HTML is framed from another origin (web/frame.py, a listener of its own) under a signed,
short-lived link that says which message of which hosting it shows and that this page may frame it.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from babel.numbers import format_decimal
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from scriptmail.catalogues import N_
from scriptmail.control.states import Actor
from scriptmail.model import RecipientStatus
from scriptmail.store import customer_changes, one_message
from scriptmail.viewer import html as safe_html
from scriptmail.viewer import mime, token
from scriptmail.web import frame as frame_links
from scriptmail.web.area_log import STATUS_LABELS
from scriptmail.web.pages import CsrfField, FlagField, Page, logged_in, posted, see

router = APIRouter(include_in_schema=False)

NO_MESSAGE = N_("There is no such email in this hosting.")
FRAME_SANDBOX = frame_links.SANDBOX
AddressesField = Annotated[list[str] | None, Form(max_length=one_message.MAX_CHOSEN)]


AREA_POLICY = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"


def frame_origin(request: Request) -> str:
    """Where the browser reaches the frame listener: web.frame_origin, else this request's scheme
    and host with the frame listener's port."""
    configured = request.app.state.context.settings.web.frame_origin
    if configured:
        return configured
    host = request.url.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    port = getattr(request.app.state, "frame_port", None) or request.app.state.context.settings.web.frame_address()[1]
    return f"{request.url.scheme}://{host}:{port}"


def _own_origin(request: Request) -> str:
    origin = f"{request.url.scheme}://{request.url.netloc}"
    return origin if token.valid_origin(origin) else ""


def _status_label(page: Page, status: str) -> str:
    try:
        return page._(STATUS_LABELS[RecipientStatus(status)])
    except ValueError:
        return status


def _base(name: str, message_id: int) -> str:
    return f"/hostings/{quote(name, safe='')}/mail/{message_id}"


def _message_id(page: Page, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise HTTPException(404, page._(NO_MESSAGE))
    return int(value)


async def _stored(page: Page, name: str, message_id: str) -> one_message.Stored:
    hosting_id = await page.owned(name)
    number = _message_id(page, message_id)
    found = await page.context.read(lambda c: one_message.find(c, hosting_id, number))
    if found is None:
        raise HTTPException(404, page._(NO_MESSAGE))
    return found


@router.get("/hostings/{name}/mail/{message_id}")
async def viewer_page(request: Request, name: str, message_id: str) -> Response:
    page = await logged_in(request)
    stored = await _stored(page, name, message_id)
    confirm = request.query_params.get("confirm", "")
    if confirm not in ("", "release", "delete", "resend"):
        raise HTTPException(400, page._("This link is not valid: go back to the first page."))
    images = request.query_params.get("images") == "1"
    show_body = page.context.settings.web.show_held_body
    view = mime.read(stored.data) if stored.data is not None else None
    frame = remote = None
    frames = frame_origin(request)
    if view is not None and view.html is not None and show_body and token.valid_origin(frames):
        key = await frame_links.viewer_key(request.app.state, page.context)
        expires = int(page.context.clock()) + token.LIFETIME
        claim = token.Claim(stored.hosting_id, stored.id, expires, images, _own_origin(request))
        frame = f"{frames}/view/{token.sign(key, claim)}"
        remote = safe_html.render(view.html, lambda cid: "", remote_allowed=False).remote
    base = _base(name, stored.id)
    state = await page.context.read(lambda c: one_message.state_of(c, stored.hosting_id))
    answer = page.render(
        "viewer.html",
        hosting_name=name,
        base_url=base,
        message={
            "id": stored.id,
            "received": page.when(stored.received_at, seconds=True),
            "sender": stored.sender,
            "size": format_decimal(stored.size, locale=page.locale),
            "score": format_decimal(round(stored.score, 2), locale=page.locale),
            "score_reasons": stored.score_reasons,
            "stored": stored.data is not None,
            "subject": view.subject if view else "",
        },
        view=view,
        show_body=show_body,
        frame=frame,
        sandbox=FRAME_SANDBOX,
        remote=remote,
        images=images,
        attachments=[
            {
                "index": a.index,
                "name": a.filename,
                "type": a.content_type,
                "inline": a.inline,
                "executable": a.executable,
                "size": format_decimal(a.size, locale=page.locale),
            }
            for a in (view.attachments if view else [])
        ],  # fmt: skip
        recipients=[
            {
                "address": r.address,
                "status": r.status,
                "label": _status_label(page, r.status),
                "reply": f"{r.code or ''} {r.text}".strip(),
            }
            for r in stored.recipients
        ],
        held=stored.held,
        failed=stored.failed,
        deletable=any(r.status in ("held", "queued", "deferred") for r in stored.recipients),
        releasable=stored.held > 0 and state.value == "blocked",
        resendable=bool(stored.failed) and stored.data is not None,
        confirm=confirm,
        body_gone=stored.data is None,
    )
    if frame is not None:
        answer.headers["Content-Security-Policy"] = f"{AREA_POLICY}; frame-src {frames}"
    return answer


@router.get("/hostings/{name}/mail/{message_id}/raw")
async def raw_source(request: Request, name: str, message_id: str) -> Response:
    page = await logged_in(request)
    stored = await _stored(page, name, message_id)
    if stored.data is None or not page.context.settings.web.show_held_body:
        raise HTTPException(404, page._("The body of this email is no longer stored."))
    return Response(stored.data, media_type="message/rfc822", headers=_download(f"message-{stored.id}.eml"))


@router.get("/hostings/{name}/mail/{message_id}/part/{index}")
async def attachment(request: Request, name: str, message_id: str, index: str) -> Response:
    page = await logged_in(request)
    stored = await _stored(page, name, message_id)
    if (
        stored.data is None
        or not page.context.settings.web.show_held_body
        or not index.isascii()
        or not index.isdigit()
        or len(index) > 6
    ):
        raise HTTPException(404, page._(NO_MESSAGE))
    found = mime.part(stored.data, int(index))
    if found is None:
        raise HTTPException(404, page._(NO_MESSAGE))
    _, filename, data = found
    # Always a download, never rendered by the browser on the area's origin (an HTML attachment).
    return Response(data, media_type="application/octet-stream", headers=_download(filename or f"part-{index}"))


def _download(filename: str) -> dict[str, str]:
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)[:200]
    return {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename[:200], safe='')}",
        "Cache-Control": "no-store",
    }


# --- one message's actions ---------------------------------------------------------------------


DONE = {
    "release": N_("The email is released: it is being sent. The other held emails stay held."),
    "delete": N_("The email is deleted: it will not be sent."),
    "resend": N_("The email is being sent again to %(count)s recipient(s)."),
}


async def _act(request: Request, name: str, message_id: str, csrf: str, confirm: str, action: str, chosen: list[str] | None = None) -> Response:
    page = await posted(request, csrf)
    hosting_id = await page.owned(name)
    number = _message_id(page, message_id)
    base = _base(name, number)
    if confirm != "yes":
        await page.flash("error", page._("Confirm the action first."))
        return see(base)
    actor = Actor.OPERATOR if page.user.operator else Actor.CUSTOMER
    return await perform(
        page, action,
        lambda c: customer_changes.message_action(c, page.audit_actor, name, hosting_id, number, action, actor, page.context.clock(), chosen),
        base,
    )  # fmt: skip


async def perform(page: Page, action: str, run, back: str) -> Response:
    """Run a one-message action (both areas) and say on the page `back` how it went."""
    try:
        count = await page.context.write(run)
    except LookupError:
        raise HTTPException(404, page._(NO_MESSAGE)) from None
    except one_message.NotAllowed as refused:
        await page.flash("error", page._(refused.reason))
        return see(back)
    await page.flash("ok", page._(DONE[action], count=count))
    return see(back)


@router.post("/hostings/{name}/mail/{message_id}/release")
async def release(request: Request, name: str, message_id: str, confirm: FlagField = "", csrf: CsrfField = "") -> Response:
    return await _act(request, name, message_id, csrf, confirm, "release")


@router.post("/hostings/{name}/mail/{message_id}/delete")
async def delete(request: Request, name: str, message_id: str, confirm: FlagField = "", csrf: CsrfField = "") -> Response:
    return await _act(request, name, message_id, csrf, confirm, "delete")


@router.post("/hostings/{name}/mail/{message_id}/resend")
async def resend(
    request: Request, name: str, message_id: str, confirm: FlagField = "", csrf: CsrfField = "", to: AddressesField = None
) -> Response:
    chosen = [a for a in (to or []) if len(a) <= 320] or None
    return await _act(request, name, message_id, csrf, confirm, "resend", chosen)
