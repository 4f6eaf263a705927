"""The operator's platform suppression list (`/operator/suppressions`): addresses, whole domains
and patterns (known spam traps) that no hosting's mail is attempted to. Search, add, remove,
import pasted CSV (all or nothing), export as CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from scriptmail.store import audit, customer_changes, suppressions
from scriptmail.store.suppressions import PLATFORM
from scriptmail.suppression import csvfile
from scriptmail.suppression.rules import EntryError, lookup_form, shown
from scriptmail.web.operator import CONFIRM, operator_form, operator_page
from scriptmail.web.pages import CsrfField, FlagField, Page, see

router = APIRouter(prefix="/operator", include_in_schema=False)

URL = "/operator/suppressions"
SHOWN = 200
MAX_CSV = 2 * 1024 * 1024
ValueField = Annotated[str, Form(max_length=320)]
ReasonField = Annotated[str, Form(max_length=32)]
CsvField = Annotated[str, Form(max_length=MAX_CSV)]


async def _render(page: Page, search: str, status: int = 200, error: str = "", csv_text: str = "") -> Response:
    now = page.context.clock()
    rows, total = await page.context.read(
        lambda c: (suppressions.entries(c, PLATFORM, now, search=search, limit=SHOWN), suppressions.count(c, PLATFORM, now))
    )
    entries = [{**row, "shown": shown(row["value"]), "since": page.when(row["created_at"])} for row in rows]
    return page.render(
        "operator_suppressions.html", status=status, entries=entries, total=total, search=search, error=error,
        csv_text=csv_text, shown=SHOWN,
    )  # fmt: skip


@router.get("/suppressions")
async def platform_list(request: Request) -> Response:
    page = await operator_page(request)
    search = request.query_params.get("search", "").strip()[:320]
    return await _render(page, search)


@router.get("/suppressions.csv")
async def platform_export(request: Request) -> Response:
    page = await operator_page(request)
    now = page.context.clock()

    def everything(connection) -> list[dict]:
        rows, after = [], None
        while batch := suppressions.entries(connection, PLATFORM, now, after=after, limit=5000):
            rows.extend(batch)
            after = batch[-1]["value"]
        return rows

    rows = await page.context.read(everything)
    return Response(
        csvfile.render(rows), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="platform-suppressions.csv"'},
    )  # fmt: skip



@router.post("/suppressions/add")
async def platform_add(request: Request, value: ValueField = "", reason: ReasonField = "", csrf: CsrfField = "") -> Response:
    page = await operator_form(request, csrf)
    try:
        added = await page.context.write(
            lambda c: customer_changes.suppression_add(c, page.audit_actor, None, PLATFORM, value, page.context.clock(), None,
                                                       reason.strip() or "manual")
        )  # fmt: skip
    except EntryError as error:
        return await _render(page, "", status=400, error=str(error))
    await page.flash("ok", page._("%(value)s is on the platform's list.", value=shown(added.value)))
    return see(URL)


@router.post("/suppressions/remove")
async def platform_remove(request: Request, value: ValueField = "", confirm: FlagField = "", csrf: CsrfField = "") -> Response:
    page = await operator_form(request, csrf)
    if not confirm:
        await page.flash("error", page._(CONFIRM))
        return see(URL)
    removed = await page.context.write(
        lambda c: customer_changes.suppression_remove(c, page.audit_actor, None, PLATFORM, value, page.context.clock(), requeue=True)
    )
    if removed.found:
        await page.flash("ok", page._("%(value)s removed; %(count)s email(s) sent again.", value=shown(lookup_form(value)), count=removed.requeued))
    else:
        await page.flash("error", page._("This entry is not on the list."))
    return see(URL)


@router.post("/suppressions/import")
async def platform_import(request: Request, csv_text: CsvField = "", csrf: CsrfField = "") -> Response:
    page = await operator_form(request, csrf)
    try:
        parsed = csvfile.parse(csv_text, allow_patterns=True)
    except csvfile.CsvError as error:
        # Nothing imported; the text stays in the form to be corrected.
        return await _render(page, "", status=400, error=page._("Nothing imported: %(problem)s", problem=str(error)), csv_text=csv_text)
    added = []
    if parsed.items:
        def put(connection) -> list:
            now = page.context.clock()
            entries = suppressions.add_many(connection, PLATFORM, parsed.items, now, None)
            audit.record(connection, page.audit_actor, "suppression.import", "platform list", now, after={"entries": len(entries)})
            return entries

        added = await page.context.write(put)
    if parsed.refused:
        # The good lines are in; the bad ones stay in the form to be corrected, each with why.
        refused = "\n".join(text for _line, text, _why in parsed.refused)
        message = page._("%(count)s entries imported; these lines were refused and stay in the form: %(problems)s",
                         count=len(added), problems=csvfile.refused_text(parsed))  # fmt: skip
        return await _render(page, "", status=400 if not added else 200, error=message, csv_text=refused)
    await page.flash("ok", page._("%(count)s entries imported.", count=len(added)))
    return see(URL)
