"""The customer area's "Send a test message": a form (to whom, from which of the hosting's
domains), the message handed to intake like a script's (web/test_sends.py), and its result shown
live (htmx asks every 2 s, as the purge badge does, until the receiving server has answered)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from scriptmail.catalogues import N_
from scriptmail.store import test_sends as store
from scriptmail.web import test_sends
from scriptmail.web.pages import CsrfField, EmailField, Page, logged_in, posted, see

router = APIRouter(include_in_schema=False)

NO_SUCH_TEST = "There is no such test message for this hosting."
PHASES = {
    "pending": N_("Handing it to the gateway…"),
    "refused": N_("Refused by the gateway"),
    "waiting": N_("Accepted by the gateway, waiting to be delivered"),
    "held": N_("Held: sending is blocked for this hosting"),
    "accepted": N_("Accepted by the receiving server"),
    "rejected": N_("Refused by the receiving server"),
    "suppressed": N_("Not sent: the address is suppressed"),
    "purged": N_("Deleted by a purge"),
}
ERRORS = {
    "address": N_("This is not a valid e-mail address."),
    "sender": N_("Choose one of the offered senders."),
    "unavailable": N_("Test messages cannot be sent right now: try again in a moment."),
}


def _base(name: str) -> str:
    return f"/hostings/{quote(name, safe='')}/test-send"


def _shown(page: Page, row: dict[str, Any]) -> dict[str, Any]:
    test = test_sends.view(row)
    if test["dkim_domain"]:
        signature = page._("Signed (DKIM) with %(domain)s", domain=test["dkim_domain"])
    else:
        signature = page._("Not signed: no verified sending domain matches the sender")
    return {
        **test,
        "label": page._(PHASES[test["phase"]]),
        "signature": signature,
        "at": page.when(test["created_at"], seconds=True),
    }


async def _form(page: Page, name: str, hosting_id: int, status: int = 200, error: str | None = None,
                to: str = "", sender: str = "") -> Response:  # fmt: skip
    context = page.context
    now = context.clock()
    allowed, used, latest = await context.read(
        lambda c: (test_sends.senders(c, hosting_id, name), store.used(c, hosting_id, now), store.latest(c, hosting_id))
    )
    limit = context.settings.web.test_sends_per_hour
    return page.render(
        "test_send.html", status=status, hosting_name=name, base_url=_base(name), senders=allowed.addresses,
        sender=sender or allowed.default, to=to, error=error, limit=limit, left=max(0, limit - used),
        tests=[_shown(page, row) for row in latest],
    )  # fmt: skip


@router.get("/hostings/{name}/test-send")
async def test_send_page(request: Request, name: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    return await _form(page, name, hosting_id)


@router.post("/hostings/{name}/test-send")
async def test_send(
    request: Request, name: str, email: EmailField = "", sender: EmailField = "", csrf: CsrfField = ""
) -> Response:
    page = await posted(request, csrf)
    hosting_id = await page.owned(name)
    try:
        test_id = await test_sends.send(page.context, hosting_id, name, email, sender, page.audit_actor, page.user.email)
    except test_sends.TestSendError as error:
        # The form again, with what was typed and why it was refused: nothing is lost.
        return await _form(page, name, hosting_id, status=400 if error.kind != "unavailable" else 503,
                           error=page._(ERRORS[error.kind]), to=email, sender=sender)  # fmt: skip
    except store.TooManyTests as error:
        text = page.ngettext(
            "At most %(count)s test message per hour: the next one can go in %(minutes)s minutes.",
            "At most %(count)s test messages per hour: the next one can go in %(minutes)s minutes.",
            error.limit, count=error.limit, minutes=max(1, round(error.retry_after / 60)),
        )  # fmt: skip
        return await _form(page, name, hosting_id, status=429, error=text, to=email, sender=sender)
    return see(f"{_base(name)}/{test_id}")


async def _test(page: Page, hosting_id: int, test_id: str) -> dict[str, Any]:
    if not test_id.isascii() or not test_id.isdigit() or len(test_id) > 18:
        raise HTTPException(404, page._(NO_SUCH_TEST))
    row = await page.context.read(lambda c: store.result(c, hosting_id, int(test_id)))
    if row is None:
        raise HTTPException(404, page._(NO_SUCH_TEST))
    return _shown(page, row)


@router.get("/hostings/{name}/test-send/{test_id}")
async def test_send_result_page(request: Request, name: str, test_id: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    test = await _test(page, hosting_id, test_id)
    return page.render("test_send_result.html", hosting_name=name, base_url=_base(name), test=test)


@router.get("/hostings/{name}/test-send/{test_id}/live")
async def test_send_live(request: Request, name: str, test_id: str) -> Response:
    """The result alone, polled by the result page until it is final."""
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    test = await _test(page, hosting_id, test_id)
    return page.render("_test_send_result.html", base_url=_base(name), test=test)
