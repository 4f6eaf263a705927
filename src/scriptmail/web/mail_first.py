"""The mail first, when the web part shares a process (and its one event loop) with intake.

Every web request runs on the loop that answers SMTP, so twenty customers polling the counters
would take most of the core from accepting mail. While mail is arriving, reads (GET, HEAD) are let
through at most `rate` per second, in the order they came; they wait, none is refused. Actions
(POST, PUT, PATCH, DELETE: a BLOCK) never wait: they are few and must take effect at once. With the
loop to itself (no mail for a moment, or the web part in a process of its own) nothing is held back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

BUSY_FOR = 0.5  # seconds after the last accepted message that the process still counts as busy
_READS = frozenset(("GET", "HEAD"))


class MailActivity:
    """When this process last accepted mail: the intake's side of the governor."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = float("-inf")

    def accepted(self) -> None:
        self._last = self._clock()

    def busy(self) -> bool:
        return self._clock() - self._last < BUSY_FOR


class Pacer:
    """Turns for requests, `rate` per second: each takes the next free moment (pure timing)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = float("-inf")

    def delay(self, now: float) -> float:
        """How long the request arriving now waits for its turn."""
        turn = max(self._next, now)
        self._next = turn + self.interval
        return turn - now


class MailFirst:
    """ASGI middleware: paces HTTP reads while `activity` says mail is arriving."""

    def __init__(self, app, activity: MailActivity, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self._activity = activity
        self._pacer = Pacer(rate) if rate else None
        self._clock = clock
        self.paced = 0

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if self._pacer is not None and scope["type"] == "http" and scope["method"] in _READS and self._activity.busy():
            wait = self._pacer.delay(self._clock())
            if wait > 0:
                self.paced += 1
                await asyncio.sleep(wait)
        await self.app(scope, receive, send)
