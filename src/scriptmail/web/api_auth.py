"""Who calls the API: the bearer token, its scope, and its rate limit (429 with Retry-After).

Limits are per token and per process (a token bucket of `web.api_rate_per_minute` refilled
continuously, `web.api_burst` deep): with several web processes a token gets that much from each.
"""

from __future__ import annotations

import math
import threading
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scriptmail.store import accounts
from scriptmail.web.context import WebContext
from scriptmail.web.throttle import bucket_take

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from the customer area, or `scriptmail token create` (with `--scope` for an operator token).",
)


class RateLimits:
    """The buckets of every token seen by this process."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, token_id: int, now: float, per_minute: int, burst: int) -> float:
        """0 when the token may make this request; else the seconds to wait."""
        if per_minute <= 0:
            return 0.0
        with self._lock:
            level, last = self._buckets.get(token_id, (float(burst), now))
            level, wait = bucket_take(level, last, now, per_minute, burst)
            self._buckets[token_id] = (level, now)
        return wait


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> accounts.Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required")
    context: WebContext = request.app.state.context
    caller = await context.read(lambda c: accounts.caller_for_token(c, credentials.credentials))
    if caller is None:
        raise _unauthorized("this token is not valid (revoked, or never issued)")
    web = context.settings.web
    wait = request.app.state.rate_limits.take(caller.token_id, context.clock(), web.api_rate_per_minute, web.api_burst)
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
