"""The viewer's frame: a stored mail's HTML and its cid: images, served by a listener of its own
(web.frame_listen), so the frame is another origin than the areas. It reads no session and sets
no cookie: a signed, short-lived capability link (viewer.token) says which message of which
hosting it shows, until when, and which area page may frame it. Its answers carry their own
strict CSP (nothing loads but the message's own images, remote ones only once the owner asks)
and a sandbox without scripts, forms or any origin.

An expired link answers 410, a forged or damaged one 403, a message whose body is gone 410.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from scriptmail.store import one_message, secrets
from scriptmail.viewer import html as safe_html
from scriptmail.viewer import mime, token
from scriptmail.web.context import WebContext

log = logging.getLogger(__name__)

IMAGE_TYPES = {"image/png", "image/gif", "image/jpeg", "image/webp", "image/bmp"}  # shown inline; never SVG
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
EXPIRED = "This view link has expired: reload the email's page in the area."
NOT_VALID = "This view link is not valid."
GONE = "The body of this email is no longer stored."
COOKIE_WARNING = (
    "the viewer's frame received cookies: its origin shares a host name with the area; "
    "set web.frame_origin to a host name of its own"
)


async def viewer_key(app_state, context: WebContext) -> bytes:
    """The key of the frame links, shared by every node and both listeners (the store's secrets)."""
    key = getattr(app_state, "viewer_key", None)
    if key is None:
        key = await context.write(lambda c: secrets.shared_secret(c, "viewer-links", lambda: os.urandom(32)))
        app_state.viewer_key = key
    return key


def policy(images: bool, ancestor: str) -> str:
    remote = " https: http:" if images else ""
    return (
        f"default-src 'none'; img-src 'self' data:{remote}; style-src 'unsafe-inline'; form-action 'none'; "
        f"base-uri 'none'; frame-ancestors {ancestor or chr(39) + 'none' + chr(39)}; sandbox {SANDBOX}"
    )


def _headers(images: bool, ancestor: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy(images, ancestor),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def _refusal(status: int, text: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>{status}</title><p>{text}</p>", status_code=status, headers=_headers(False, ""))


def create_frame_app(context: WebContext) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context
    app.state.requests = 0
    app.state.cookie_requests = 0  # requests that arrived with a Cookie header (never read)

    @app.middleware("http")
    async def no_cookies(request: Request, call_next):
        app.state.requests += 1
        if "cookie" in request.headers:
            if app.state.cookie_requests == 0:
                log.warning(COOKIE_WARNING)
            app.state.cookie_requests += 1
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, error: StarletteHTTPException) -> Response:
        return _refusal(error.status_code, "Not found." if error.status_code == 404 else str(error.detail))

    async def claimed(link: str) -> tuple[token.Claim, bytes] | Response:
        try:
            claim = token.verify(await viewer_key(app.state, context), link, context.clock())
        except token.Refused as refused:
            return _refusal(410, EXPIRED) if refused.expired else _refusal(403, NOT_VALID)
        found = await context.read(lambda c: one_message.find(c, claim.hosting_id, claim.message_id))
        if found is None or found.data is None or not context.settings.web.show_held_body:
            return _refusal(410, GONE)
        return claim, found.data

    @app.get("/view/{link}")
    async def frame(link: str) -> Response:
        got = await claimed(link)
        if isinstance(got, Response):
            return got
        claim, data = got
        view = mime.read(data)
        rendered = safe_html.render(
            view.html or "",
            lambda cid: f"/view/{link}/cid/{view.images[cid]}" if cid in view.images else None,
            remote_allowed=claim.images,
        )
        document = (
            '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
            "<style>body{font-family:sans-serif;margin:8px;overflow-wrap:break-word}img{max-width:100%;height:auto}</style>"
            f"</head><body>{rendered.html}</body></html>"
        )
        return HTMLResponse(document, headers=_headers(claim.images, claim.ancestor))

    @app.get("/view/{link}/cid/{index}")
    async def inline_image(link: str, index: str) -> Response:
        got = await claimed(link)
        if isinstance(got, Response):
            return got
        claim, data = got
        found = mime.part(data, int(index)) if index.isascii() and index.isdigit() and len(index) <= 6 else None
        if found is None or found[0] not in IMAGE_TYPES:
            return _refusal(404, "No such image in this email.")
        return Response(found[2], media_type=found[0], headers=_headers(False, claim.ancestor))

    return app
