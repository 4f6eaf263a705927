"""The customer area's "History of changes" of one hosting: its audit trail, read-only, a page at
a time, as the API's `.../email/audit` answers it (web/audit_api.shown). 404 for a hosting the
user may not see, like every page."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from scriptmail.catalogues import N_
from scriptmail.store import audit
from scriptmail.web.audit_api import MAX_OFFSET, PLATFORM, shown
from scriptmail.web.pages import Page, logged_in

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
PLATFORM_LABEL = N_("The platform's operator")


def _url(name: str) -> str:
    return f"/hostings/{quote(name, safe='')}/audit"


def _offset(text: str) -> int:
    """The page asked for; anything but a number in range is the first page."""
    if not text.isascii() or not text.isdigit() or len(text) > 7:
        return 0
    return min(int(text), MAX_OFFSET) // PAGE_SIZE * PAGE_SIZE


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _row(page: Page, entry: dict[str, Any]) -> dict[str, Any]:
    seen = shown(entry)
    return {
        "when": page.when(seen["at"], seconds=True), "actor": page._(PLATFORM_LABEL) if seen["actor"] == PLATFORM else seen["actor"],
        "action": seen["action"], "target": seen["target"], "before": _json(seen["before"]), "after": _json(seen["after"]),
    }  # fmt: skip


@router.get("/hostings/{name}/audit")
async def audit_page(request: Request, name: str) -> Response:
    page = await logged_in(request)
    await page.owned(name)
    offset = _offset(request.query_params.get("offset", ""))
    rows, total = await page.context.read(lambda c: audit.entries(c, hosting=name, offset=offset, limit=PAGE_SIZE))
    return page.render(
        "audit.html", hosting_name=name, base_url=_url(name), total=total, rows=[_row(page, row) for row in rows],
        newer=max(0, offset - PAGE_SIZE) if offset else None, older=offset + PAGE_SIZE if offset + PAGE_SIZE < total else None,
    )  # fmt: skip
