"""When a cached MTA-STS policy may be used and when it must be fetched again (RFC 8461 §5.1).
Pure: the cache entry, the id in DNS now and the time decide."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from scriptmail.mta_sts.policy import Policy


@dataclass(frozen=True, slots=True)
class Cached:
    policy: Policy
    policy_id: str
    fetched_at: float

    def fresh(self, now: float) -> bool:
        """Within its max_age: usable even when DNS or the policy host fails."""
        return now < self.fetched_at + self.policy.max_age


REFRESH_AHEAD = 86400.0  # a policy is fetched again this long before its max_age runs out (at most half of it)


class Step(enum.Enum):
    USE_CACHED = "use the cached policy"
    FETCH = "fetch the policy"
    NO_POLICY = "no policy"


def next_step(cached: Cached | None, published_id: str | None, now: float) -> Step:
    """What to do for a domain, given its cache entry and the id its TXT record gives now.

    A changed id means a new policy: fetch it. No record (or a DNS failure) leaves a fresh cached
    policy in force, so that an attacker who removes the record cannot turn MTA-STS off (§5.1).
    """
    usable = cached is not None and cached.fresh(now)
    if published_id is None:
        return Step.USE_CACHED if usable else Step.NO_POLICY
    if usable and cached is not None and cached.policy_id == published_id:
        return Step.USE_CACHED
    return Step.FETCH


def refresh_due(cached: Cached, published_id: str | None, now: float) -> bool:
    """Whether the background refresh fetches the policy again (RFC 8461 §5.1, §10.2): the TXT id
    changed, or the policy runs out within REFRESH_AHEAD (half its max_age for short ones). No
    record (or a DNS failure) fetches nothing: the cached policy stays in force until it expires."""
    if published_id is None:
        return False
    if published_id != cached.policy_id:
        return True
    ahead = min(REFRESH_AHEAD, cached.policy.max_age / 2)
    return now >= cached.fetched_at + cached.policy.max_age - ahead
