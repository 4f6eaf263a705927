"""Who a bearer token is and which hostings it reaches, remembered for a moment per process.

The counters call is polled by panels and dashboards; reading the token and the grant from the
store on every call cost more than the answer. Anything that narrows access (a token revoked, a
grant or a user removed, a hosting deleted) announces `bus.ACCESS`, and every web process
forgets what it knew; a notice lost on the way is covered by the short lifetime.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TTL_SECONDS = 2.0
_MAX_ENTRIES = 10_000


class AccessCache:
    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[tuple, tuple[float, Any]] = {}

    def get(self, key: tuple) -> Any | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._entries[key]
            return None
        return found[1]

    def put(self, key: tuple, value: Any) -> None:
        """Remember `value` (never None: a refusal is always read again)."""
        if value is None:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()  # a flood of distinct tokens must not grow the process
        self._entries[key] = (self._clock() + self._ttl, value)

    def clear(self, *_: object) -> None:
        self._entries.clear()
