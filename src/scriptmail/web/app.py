"""The FastAPI application of the web part, and serving it on the gateway's event loop."""

from __future__ import annotations

import contextlib
import html
import socket
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from scriptmail.web import (
    account,
    admin_api,
    admin_sites_api,
    area,
    area_audit,
    area_domains,
    area_log,
    area_suppression,
    area_test_send,
    area_viewer,
    area_webhooks,
    audit_api,
    domains_api,
    exports,
    exports_api,
    metrics,
    openapi,
    operator,
    operator_mail,
    operator_sites,
    operator_suppression,
    operator_webhooks,
    pages,
    test_send_api,
    viewer_api,
    webhooks_api,
)
from scriptmail.web.api import router
from scriptmail.web.context import WebContext
from scriptmail.web.mail_first import MailActivity, MailFirst
from scriptmail.web.problems import problem
from scriptmail.web.security_headers import SecurityHeaders
from scriptmail.web.suppression_api import router as suppression_router


def create_app(context: WebContext, mail: MailActivity | None = None) -> FastAPI:
    """The areas and the API; `mail` is the intake of the same process, if it runs one (mail_first)."""
    app = FastAPI(
        title="scriptmail",
        summary="Control and track the mail a hosting's scripts send.",
        version="1.0",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.context = context
    # A request is matched against the routes in this order: the two most polled (the counters
    # call, then the Scripts e-mail page) come first. Area and API paths never overlap (/1.0).
    app.include_router(router)
    app.include_router(area.router)
    app.include_router(suppression_router)
    app.include_router(audit_api.router)
    app.include_router(admin_api.router)
    app.include_router(admin_sites_api.router)
    app.include_router(webhooks_api.router)
    app.include_router(area_log.router)
    app.include_router(area_webhooks.router)
    app.include_router(domains_api.router)
    app.include_router(area_domains.router)
    app.include_router(area_suppression.router)
    app.include_router(area_audit.router)
    app.include_router(area_viewer.router)
    app.include_router(viewer_api.router)
    app.include_router(operator.router)
    app.include_router(operator_mail.router)
    app.include_router(operator_suppression.router)
    app.include_router(operator_webhooks.router)
    app.include_router(operator_sites.router)
    app.include_router(account.router)
    app.include_router(exports.router)
    app.include_router(exports_api.router)
    app.include_router(area_test_send.router)
    app.include_router(test_send_api.router)
    app.mount("/static", StaticFiles(directory=Path(area.__file__).parent / "static"), name="static")

    app.add_middleware(SecurityHeaders)
    if mail is not None and context.settings.web.mail_first_rate:
        app.add_middleware(MailFirst, activity=mail, rate=context.settings.web.mail_first_rate)

    @app.exception_handler(pages.Redirect)
    async def to_login(request: Request, redirect: pages.Redirect) -> Response:
        if request.headers.get("hx-request") == "true":
            # A fragment asked for by htmx (the live state, a dialog): the whole page goes there.
            return Response(status_code=204, headers={"HX-Redirect": redirect.location})
        return RedirectResponse(redirect.location, status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/1.0"):
            return _error_page(error.status_code, str(error.detail))
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:  # every method of the path, not only those of the first route that matched it
            headers["Allow"] = ", ".join(_allowed(app, request))
        if error.status_code == 400 and error.detail == "There was an error parsing the body":
            # A body that is not JSON (or not UTF-8) does not match the document: 422 like any other.
            return problem(422, "invalid request: body: not a JSON document")
        # RFC 9457 problem details, with the reference's {"message": ...} member kept.
        return problem(error.status_code, str(error.detail), headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors())
        if not request.url.path.startswith("/1.0"):
            # A page of the areas reached with a malformed address or form: a page, not JSON.
            return _error_page(422, f"invalid request: {problems}")
        return problem(422, f"invalid request: {problems}", errors=_plain(error.errors()))

    app.openapi = lambda: openapi.document(app, context)  # type: ignore[method-assign]

    scrapes = metrics.Scrapes()

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        body = await scrapes.body(lambda: context.read(lambda c: metrics.render(metrics.snapshot(c))))
        return Response(body, media_type="text/plain; version=0.0.4")

    return app


def _allowed(app: FastAPI, request: Request) -> list[str]:
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def _error_page(status: int, detail: str) -> HTMLResponse:
    text = html.escape(detail)
    page = f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{text}</p><p><a href=\"/\">&larr;</a></p>"
    return HTMLResponse(page, status_code=status)


def _plain(errors) -> list[dict]:
    return [{"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]} for item in errors]


class _Server(uvicorn.Server):
    """uvicorn on our event loop: the gateway owns the signals and the shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def make_server(app: FastAPI) -> _Server:
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, server_header=False, proxy_headers=False)
    return _Server(config)
