"""The shaping decisions: may a site take another connection, another message, and how long to
wait if not. State is a few numbers per site; every call is O(1) and takes the time as a value.

A site that asks us to slow down (see replies.py) is paused and its limits halved per level, then
recovers by itself: the rules are slowdown.py's, so that a slow-down another process learnt
(`adopt`) is applied and recovers here exactly as one learnt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scriptmail.shaping import slowdown
from scriptmail.shaping.replies import asks_to_slow_down
from scriptmail.shaping.sites import Limits, SiteTable
from scriptmail.shaping.slowdown import MAX_LEVEL, Slowdown

__all__ = ["MAX_LEVEL", "Shaper", "SiteState", "SiteView"]
SLOWED_RATE = 60  # messages per minute of a slowed site that had no rate limit, before halving


class Bucket:
    """A token bucket: `rate` per second, at most `burst` in a row."""

    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, per_period: int, period: float, now: float) -> None:
        self.rate = per_period / period
        self.burst = max(1.0, per_period / 60)  # a minute's bucket holds one second's worth
        self.tokens = self.burst
        self.at = now

    def wait(self, now: float) -> float:
        """Seconds until one token is there (0: now)."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, count: int = 1) -> None:
        """Count `count` recipients; a message of more than the burst leaves the bucket in debt,
        so the next one waits longer and the rate holds on average."""
        self.tokens -= count

    def empty(self, now: float) -> None:
        self.wait(now)
        self.tokens = min(self.tokens, 0.0)


@dataclass
class SiteState:
    name: str
    configured: Limits
    level: int = 0
    paused_until: float = 0.0
    recovers_at: float = 0.0  # the next level comes off at this time
    slowed_at: float = 0.0
    reason: str = ""
    connections: int = 0
    in_flight: int = 0  # messages (transactions) being sent
    sent: int = 0
    deferred: int = 0
    postponed: int = 0  # recipients shaping sent back to the queue
    slowdowns: int = 0
    active_at: float = 0.0  # the last reply or connection
    limits: Limits = field(init=False)
    minute: Bucket | None = field(default=None, init=False)
    hour: Bucket | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.limits = self.configured

    @property
    def slowdown(self) -> Slowdown:
        return Slowdown(self.level, self.slowed_at, self.paused_until, self.recovers_at, self.reason)

    def set_slowdown(self, value: Slowdown) -> None:
        self.level, self.slowed_at, self.paused_until = value.level, value.slowed_at, value.paused_until
        self.recovers_at, self.reason = value.recovers_at, value.reason


@dataclass(frozen=True, slots=True)
class SiteView:
    """What the operator sees of a site."""

    name: str
    configured: Limits
    limits: Limits
    level: int
    paused_for: float
    recovers_in: float
    reason: str
    connections: int
    in_flight: int
    sent: int
    deferred: int
    postponed: int
    slowdowns: int


class Shaper:
    def __init__(self, table: SiteTable, slow_seconds: float = 600.0, pause: float = 60.0) -> None:
        self.table = table
        self.slow_seconds = slow_seconds
        self.pause = pause
        self._sites: dict[str, SiteState] = {}

    def state(self, site: str, now: float) -> SiteState:
        """The site's state with due recoveries applied."""
        state = self._sites.get(site)
        if state is None:
            state = self._sites[site] = SiteState(site, self.table.limits(site))
            self._rebuild(state, now)
        elif state.level and now >= state.recovers_at:
            state.set_slowdown(slowdown.recovered(state.slowdown, now, self.slow_seconds))
            self._rebuild(state, now)
        return state

    def may_connect(self, site: str, now: float) -> bool:
        state = self.state(site, now)
        return now >= state.paused_until and state.connections < state.limits.connections

    def opened(self, site: str, now: float = 0.0) -> None:
        state = self._sites[site]
        state.connections += 1
        state.active_at = max(state.active_at, now)

    def closed(self, site: str) -> None:
        state = self._sites[site]
        state.connections -= 1
        self._forget(state)

    def wait(self, site: str, now: float) -> float:
        """Seconds before the site may take another message (0: now)."""
        state = self.state(site, now)
        if now < state.paused_until:
            return state.paused_until - now
        waits = [bucket.wait(now) for bucket in (state.minute, state.hour) if bucket is not None]
        return max(waits, default=0.0)

    def take(self, site: str, now: float, recipients: int = 1) -> float:
        """Start one message to `recipients` recipients at the site if it may take it now (returns 0),
        else how long to wait. Rates count recipients, as providers do, not transactions."""
        wait = self.wait(site, now)
        if wait == 0.0:
            state = self._sites[site]
            for bucket in (state.minute, state.hour):
                if bucket is not None:
                    bucket.take(recipients)
        return wait

    def observe(self, site: str, code: int | None, text: str, now: float) -> bool:
        """Learn from one reply of the site; True when it made the site slow down."""
        state = self.state(site, now)
        state.active_at = now
        if code is not None and 200 <= code < 300:
            state.sent += 1
            return False
        if code is None or code >= 500:
            return False
        state.deferred += 1
        if not asks_to_slow_down(code, text):
            return False
        after, new_level = slowdown.complain(state.slowdown, now, f"{code} {text}".strip(), self.pause, self.slow_seconds)
        state.set_slowdown(after)
        if not new_level:
            return False  # the same complaint from another connection, or one already in flight
        state.slowdowns += 1
        self._slowed(state, now)
        return True

    def adopt(self, site: str, shared: Slowdown, now: float, exactly: bool = False) -> bool:
        """Apply what the store says of the site's slow-down (another process may have learnt it):
        the slower of the two views; with `exactly` (the store's answer to this process's own
        complaint) the store's, unless it knows less. True when the site's level changed."""
        state = self.state(site, now)
        before = state.level
        shared = slowdown.recovered(shared, now, self.slow_seconds)
        exact = exactly and shared.level >= state.level
        state.set_slowdown(shared if exact else slowdown.slower(state.slowdown, shared))
        if state.level > before:
            self._slowed(state, now)
        elif state.level != before:
            self._rebuild(state, now)
        return state.level != before

    def slowdown_of(self, site: str, now: float) -> Slowdown:
        return self.state(site, now).slowdown

    def _slowed(self, state: SiteState, now: float) -> None:
        """New, lower limits; what the buckets held at the old rate is gone."""
        self._rebuild(state, now)
        for bucket in (state.minute, state.hour):
            if bucket is not None:
                bucket.empty(now)

    def views(self, now: float, active_within: float | None = None) -> list[SiteView]:
        """The sites seen since start (or slowed, busy, or active within that many seconds), busiest first."""
        out = []
        for name in list(self._sites):
            state = self.state(name, now)
            idle = not (state.level or state.connections or state.in_flight)
            if active_within is not None and idle and now - state.active_at > active_within:
                continue
            out.append(
                SiteView(
                    name, state.configured, state.limits, state.level, max(0.0, state.paused_until - now),
                    max(0.0, state.recovers_at - now) if state.level else 0.0, state.reason, state.connections,
                    state.in_flight, state.sent, state.deferred, state.postponed, state.slowdowns,
                )
            )  # fmt: skip
        return sorted(out, key=lambda view: (-view.level, -view.connections, -view.sent, view.name))

    def _rebuild(self, state: SiteState, now: float) -> None:
        configured = state.configured
        shift = state.level
        if shift:
            per_minute = configured.per_minute or SLOWED_RATE * 2
            state.limits = Limits(
                connections=max(1, configured.connections >> shift),
                messages_per_connection=max(1, configured.messages_per_connection >> shift),
                per_minute=max(1, per_minute >> shift),
                per_hour=max(1, configured.per_hour >> shift) if configured.per_hour else 0,
            )
        else:
            state.limits = configured
        state.minute = Bucket(state.limits.per_minute, 60.0, now) if state.limits.per_minute else None
        state.hour = Bucket(state.limits.per_hour, 3600.0, now) if state.limits.per_hour else None

    def _forget(self, state: SiteState) -> None:
        """Keep memory bounded: an idle site at full speed with nothing to remember goes."""
        if len(self._sites) > 10_000 and not state.connections and not state.level and not state.in_flight:
            del self._sites[state.name]
