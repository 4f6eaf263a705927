"""A token's API rate limit taken from the shared store a few requests at a time.

Every process and node shares one bucket per token in the store (store.rate_limits). Asking it
once per request cost a file lock or a transaction per call; a process instead takes a small
batch of places at once and spends them locally for at most a second. A batch it does not use is
lost, so the limit is never exceeded, only reached a little sooner by a token spread over many
processes. Near the limit the process asks for one place at a time, so the last places of a
burst are shared fairly.
"""

from __future__ import annotations

from collections.abc import Callable

HOLD_SECONDS = 1.0


def batch_size(burst: int) -> int:
    """Small enough that a process never holds a large share of a token's burst."""
    return max(1, min(16, burst // 8))


class RateBudget:
    def __init__(self) -> None:
        self._held: dict[int, tuple[int, float]] = {}  # token id -> (places left, usable until)

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

    def take(self, token_id: int, now: float, burst: int, ask: Callable[[int], float]) -> float:
        """0 when the request may go, else the seconds to wait; `ask(cost)` asks the store."""
        if self.spend(token_id, now):
            return 0.0
        size = batch_size(burst)
        if size > 1 and ask(size) == 0:
            self.keep(token_id, size, now)
            return 0.0
        return ask(1)
