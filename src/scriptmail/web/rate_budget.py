"""A token's API rate limit taken from the shared store a few requests at a time.

Every process and node shares one bucket per token in the store (store.rate_limits). Asking it
once per request cost a file lock or a transaction per call; a process instead takes a small
batch of places at once and spends them locally for at most a second. A batch it does not use is
lost, so the limit is never exceeded, only reached a little sooner by a token spread over many
processes. Near the limit the process asks for one place at a time, so the last places of a
burst are shared fairly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

HOLD_SECONDS = 1.0


def batch_size(burst: int, per_minute: int = 0) -> int:
    """Small enough that a process never holds a large share of a token's burst (an eighth), nor
    more than a quarter of a second of its rate once past 16: a dashboard token allowed thousands
    of calls a second then costs one store write per few hundred calls, not per 16."""
    quarter_second = per_minute // 240
    return max(1, min(burst // 8, max(16, quarter_second), 1024))


class RateBudget:
    def __init__(self) -> None:
        self._held: dict[int, tuple[int, float]] = {}  # token id -> (places left, usable until)
        self._asking: dict[int, asyncio.Lock] = {}

    def _lock(self, token_id: int) -> asyncio.Lock:
        lock = self._asking.get(token_id)
        if lock is None:
            if len(self._asking) >= 10_000:
                self._asking = {t: held for t, held in self._asking.items() if held.locked()}
            lock = self._asking[token_id] = asyncio.Lock()
        return lock

    async def wait(
        self, token_id: int, clock: Callable[[], float], burst: int, per_minute: int,
        ask: Callable[[float, int], float], in_thread: bool,
    ) -> float:
        """take() for a request on the event loop. The requests that find the budget empty while
        one asks the store wait for that answer instead of each asking (and each writing).
        `ask(now, cost)` runs in a worker thread if `in_thread`, else right here."""
        if self.spend(token_id, clock()):
            return 0.0
        async with self._lock(token_id):
            now = clock()
            if self.spend(token_id, now):
                return 0.0  # fetched by the request that held the lock before this one

            def asking(cost: int) -> float:
                return ask(now, cost)

            if in_thread:
                return await asyncio.to_thread(self.take, token_id, now, burst, asking, per_minute)
            return self.take(token_id, now, burst, asking, per_minute)

    def spend(self, token_id: int, now: float) -> bool:
        """Use one place this process already holds; False when it must ask the store."""
        left, until = self._held.get(token_id, (0, 0.0))
        if left <= 0 or until <= now:
            self._held.pop(token_id, None)
            return False
        self._held[token_id] = (left - 1, until)
        return True

    def keep(self, token_id: int, places: int, now: float) -> None:
        """The store granted `places`; one is spent by the request that asked."""
        if places > 1:
            self._held[token_id] = (places - 1, now + HOLD_SECONDS)

    def take(self, token_id: int, now: float, burst: int, ask: Callable[[int], float], per_minute: int = 0) -> float:
        """0 when the request may go, else the seconds to wait; `ask(cost)` asks the store."""
        if self.spend(token_id, now):
            return 0.0
        size = batch_size(burst, per_minute)
        if size > 1 and ask(size) == 0:
            self.keep(token_id, size, now)
            return 0.0
        return ask(1)
