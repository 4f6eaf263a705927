"""Is this SMTP reply a site asking us to slow down? (421, or 4.7.x "try later" / "rate limited")."""

from __future__ import annotations

import re

# Texts big providers use when they throttle: "try again later", "rate limited", "too many
# connections", "temporarily deferred", "throttled", Microsoft's "server busy".
_SLOW_DOWN = re.compile(
    r"try (again )?later|rate.?limit|too many|throttl|temporarily (deferred|rate|rejected)|server busy|slow down|exceeded",
    re.IGNORECASE,
)
_ENHANCED = re.compile(r"^\s*4\.7\.\d{1,3}\b")


def asks_to_slow_down(code: int | None, text: str) -> bool:
    """421 always; any other 4xx when its enhanced status is 4.7.x and its text says so. A plain
    451 "try again later" (4.3.0, a full disk, a greylist without 4.7.x) is the recipient's server
    having a moment, not the site asking for less: the retry schedule covers it."""
    if code is None or not 400 <= code < 500:
        return False
    if code == 421:
        return True
    return bool(_ENHANCED.match(text)) and bool(_SLOW_DOWN.search(text))
