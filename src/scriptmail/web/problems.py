"""Error answers of the API as RFC 9457 problem details (`application/problem+json`), and their
declaration in the OpenAPI document, so every status a route can answer is listed with its body.

The reference answers errors as `{"message": ...}`; that member stays, beside the standard ones.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the bad value is: `query`, `path`, `header` or `body`, then the name.")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus the reference's `message` (the same text as `detail`)."""

    type: str = Field("about:blank", description="Always `about:blank`: the status says what kind of problem it is.")
    title: str = Field(description="The status's phrase, e.g. `Not Found`.")
    status: int = Field(description="The HTTP status code, repeated.")
    detail: str = Field(description="What is wrong, for a person.")
    message: str = Field(description="The same as `detail` (the reference API's member).")
    errors: list[FieldError] | None = Field(None, description="With 422: each invalid value.")


_WHY = {
    400: "The request is well-formed but a value is refused (e.g. an invalid e-mail address).",
    401: "No bearer token, or one that is unknown or revoked. `WWW-Authenticate: Bearer` is sent.",
    403: "The token is valid but does not reach this: a customer's token on an operator route, or an operator token whose scope is too small.",
    404: "No such object, or one the token may not see (both answer the same).",
    409: "The request conflicts with the object's state (a refused state change, mail still queued, an existing name or uid).",
    422: "A parameter or the body does not match this document (type, format, length, range, pattern, unknown member).",
    429: "Too many requests with this token: wait the seconds in `Retry-After`.",
    503: "A new sending domain's DKIM keys cannot be made now (the master key file is missing or cannot be read).",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each error status it can answer, with the problem body (429 and
    401 with their headers)."""
    declared: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"description": _WHY[code], "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        if code == 429:
            entry["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 1}}}
        if code == 401:
            entry["headers"] = {"WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}}}
        declared[code] = entry
    return declared


def problem(status: int, detail: str, headers: dict[str, str] | None = None, errors: list | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, "message": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)
