"""How far a site that asked us to slow down is slowed, for how long, and how it recovers: one
value per site and three pure rules. Every delivery process applies the same rules to the value
the store shares (store.site_slowdowns), so they all slow down and recover together.

A complaint pauses the site for `pause` seconds and adds a level (limits halved per level); each
`slow_seconds` without a new complaint takes one level off. Complaints that arrive together
(several connections, or several processes, answering the same 421) count once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

MAX_LEVEL = 6  # limits at most 64 times lower


@dataclass(frozen=True, slots=True)
class Slowdown:
    level: int = 0
    slowed_at: float = 0.0  # the complaint that set this level
    paused_until: float = 0.0
    recovers_at: float = 0.0  # the next level comes off at this time
    reason: str = ""

    def ends_at(self, slow_seconds: float) -> float:
        """When nothing is left of it: the last level off and the pause over."""
        last = self.recovers_at + (self.level - 1) * slow_seconds if self.level else 0.0
        return max(last, self.paused_until)


CALM = Slowdown()


def recovered(state: Slowdown, now: float, slow_seconds: float) -> Slowdown:
    """The state with the levels due to come off by `now` taken off."""
    if not state.level or now < state.recovers_at:
        return state
    steps = min(state.level, 1 + int((now - state.recovers_at) // slow_seconds))
    level = state.level - steps
    return replace(state, level=level, recovers_at=state.recovers_at + steps * slow_seconds, reason=state.reason if level else "")


def complain(state: Slowdown, now: float, reason: str, pause: float, slow_seconds: float) -> tuple[Slowdown, bool]:
    """The state after the site asked to slow down at `now`, and whether that was a new level
    (False: the same complaint again, which only makes the pause last)."""
    state = recovered(state, now, slow_seconds)
    if state.level and now - state.slowed_at < slow_seconds / 4:
        return replace(state, paused_until=max(state.paused_until, now + pause)), False
    return (
        Slowdown(min(MAX_LEVEL, state.level + 1), now, max(state.paused_until, now + pause), now + slow_seconds, reason[:200]),
        True,
    )


def slower(mine: Slowdown, other: Slowdown) -> Slowdown:
    """Of two views of one site, the slower: the higher level (the later one at the same level),
    with the longer pause. Used to lay what another process learnt over what this one knows."""
    pick = mine if (mine.level, mine.recovers_at) >= (other.level, other.recovers_at) else other
    return replace(pick, paused_until=max(mine.paused_until, other.paused_until))
