"""Who calls the API: the bearer token, its scope, and its rate limit (429 with Retry-After).

Limits are per token and shared by every web process and node: a token bucket of
`web.api_rate_per_minute` refilled continuously, `web.api_burst` deep, kept in the store
(store.rate_limits), which each process asks for a few places at a time (web.rate_budget).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scriptmail.store import accounts, rate_limits
from scriptmail.web.context import WebContext

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from the customer area, or `scriptmail token create` (with `--scope` for an operator token).",
)


async def rate_limit_wait(context: WebContext, token_id: int) -> float:
    """The seconds this token must wait (0: go), counted in the store: on PostgreSQL in a short
    transaction of its own, on SQLite in the rate-limit file beside the database; neither waits
    for the disk, nor for the mail's commits."""
    web = context.settings.web
    if web.api_rate_per_minute <= 0:
        return 0.0

    sqlite = context.engine.dialect.name == "sqlite"

    def ask(now: float, cost: int) -> float:
        if sqlite:
            database = context.engine.url.database
            return rate_limits.take_beside(database, token_id, now, web.api_rate_per_minute, web.api_burst, cost)
        with context.engine.begin() as connection:
            return rate_limits.take(connection, token_id, now, web.api_rate_per_minute, web.api_burst, cost)

    # On SQLite right here: the file beside the store does not wait for the disk, and a thread
    # would wait for the busy event loop's GIL at every statement (measured: p99 over 200 ms).
    return await context.rate_budget.wait(token_id, context.clock, web.api_burst, web.api_rate_per_minute, ask, in_thread=not sqlite)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> accounts.Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required")
    context: WebContext = request.app.state.context
    key = ("token", credentials.credentials)
    caller = context.access.get(key)
    if caller is None:
        caller = await context.read_small(lambda c: accounts.caller_for_token(c, credentials.credentials))
        context.access.put(key, caller)
    if caller is None:
        raise _unauthorized("this token is not valid (revoked, or never issued)")
    wait = await rate_limit_wait(context, caller.token_id)
    if wait > 0:
        raise HTTPException(429, f"too many requests with this token: try again in {math.ceil(wait)} s",
                            headers={"Retry-After": str(math.ceil(wait))})  # fmt: skip
    return caller


Caller = Annotated[accounts.Caller, Depends(current_caller)]


def needs(scope: str):
    """A dependency: the caller must be an operator whose token reaches `scope`."""

    async def check(caller: Caller) -> accounts.Caller:
        if not caller.user.operator:
            raise HTTPException(403, "this route is for operators: a customer's token does not reach it")
        if not caller.may(scope):
            raise HTTPException(403, f"this token's scope ({caller.scope}) does not reach {scope!r}")
        return caller

    return check


Reader = Annotated[accounts.Caller, Depends(needs("read"))]
Manager = Annotated[accounts.Caller, Depends(needs("manage"))]
Provisioner = Annotated[accounts.Caller, Depends(needs("provision"))]
