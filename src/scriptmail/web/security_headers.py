"""The headers every answer carries, added as the answer starts.

A plain ASGI middleware rather than Starlette's `@app.middleware("http")`: that one runs each
request in a task of its own and copies the body through a stream, which cost more CPU than the
counters call itself.
"""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]

_PAGE_HEADERS = (
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NOT_PAGES = ("/1.0", "/docs", "/openapi.json")


def extra_headers(path: str, present: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The API and its documents get nosniff only; a page with a policy of its own keeps it (the
    viewer's, which frames the frame listener); every other page is not to be framed and posts
    only to us."""
    if any(name.lower() == b"content-security-policy" for name, _ in present):
        return [_NOSNIFF]
    if path.startswith(_NOT_PAGES):
        return [_NOSNIFF]
    return [*_PAGE_HEADERS, _NOSNIFF]


class SecurityHeaders:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = list(message.get("headers", ()))
                extra = extra_headers(path, present)
                ours = {name for name, _ in extra}
                message["headers"] = [header for header in present if header[0].lower() not in ours] + extra
            await send(message)

        await self.app(scope, receive, with_headers)
