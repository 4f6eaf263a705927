"""The policy engine (DESIGN.md §3): from a hosting's recent counters, decide whether it must be
blocked by itself as `spam` or `bounce`. Pure: the counters come from store.activity.

Spam signals come first: a site sending spam usually bounces too, and `spam` is the stricter block.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from scriptmail.config import PlanSettings
from scriptmail.control.evidence import BOUNCE_RATIO, COMPLAINTS, SPAM_CONTENT, UNKNOWN_USERS, VOLUME, evidence
from scriptmail.control.states import SENDING_STATES, Action
from scriptmail.model import HostingState

# RFC 3463 5.1.1 ("bad destination mailbox address"), or the words servers use without it.
_UNKNOWN_USER = re.compile(
    r"\b5\.1\.1\b|user unknown|unknown user|no such user|mailbox unavailable|does not exist|recipient rejected|"
    r"no mailbox|invalid recipient|address rejected",
    re.IGNORECASE,
)


def is_unknown_user(code: int | None, text: str) -> bool:
    """A permanent failure that says the mailbox does not exist: what address harvesting causes."""
    return code is not None and 500 <= code < 600 and bool(_UNKNOWN_USER.search(text))


@dataclass(frozen=True, slots=True)
class Signals:
    """What the engine looks at, counted by the store for one hosting."""

    accepted_hour: int = 0  # messages accepted in the last hour
    flagged_hour: int = 0  # ...of which scored as spam
    hourly_baseline: list[int] | None = None  # messages per hour over the 7 days before (168 values)
    outcomes: list[tuple[int, int]] | None = None  # (sent, bounced) per minute, newest first
    unknown_recent: int = 0  # "no such user" bounces within the plan's window
    complaints_recent: int = 0  # spam complaints (ARF) within the plan's window


@dataclass(frozen=True, slots=True)
class Detection:
    action: Action  # DETECT_SPAM or DETECT_BOUNCE
    reason: str  # for the history, the owner's notification and the customer area
    evidence: dict | None = None  # control.evidence: the signal, its figures and window (samples added by the store)


def needs_baseline(plan: PlanSettings, signals: Signals) -> bool:
    """The 7-day baseline costs a query; it only matters once the last hour is above the floor."""
    return signals.accepted_hour > plan.volume_floor


def evaluate(plan: PlanSettings, state: HostingState, signals: Signals) -> Detection | None:
    """The block the hosting deserves now, if any."""
    if not plan.policies or state not in SENDING_STATES:
        return None
    accepted, flagged = signals.accepted_hour, signals.flagged_hour
    if accepted >= plan.spam_min_messages and flagged / accepted > plan.spam_share:
        return Detection(
            Action.DETECT_SPAM,
            f"{flagged} of the {accepted} messages sent in the last hour look like spam "
            f"(shouting or empty subject, empty body, executable attachment, many recipients)",
            evidence(SPAM_CONTENT, {"flagged": flagged, "accepted": accepted, "ratio": round(flagged / accepted, 4),
                                    "threshold": plan.spam_share}, {"seconds": 3600}),
        )  # fmt: skip
    if accepted > plan.volume_floor and signals.hourly_baseline is not None:
        usual = statistics.median(signals.hourly_baseline) if signals.hourly_baseline else 0
        if accepted > plan.volume_factor * usual:
            return Detection(
                Action.DETECT_SPAM,
                f"sudden volume: {accepted} messages in the last hour, where this hosting usually sends "
                f"{usual:g} per hour",
                evidence(VOLUME, {"accepted": accepted, "usual": usual, "factor": plan.volume_factor, "floor": plan.volume_floor},
                         {"seconds": 3600}),
            )  # fmt: skip
    if signals.unknown_recent >= plan.unknown_user_limit:
        return Detection(
            Action.DETECT_SPAM,
            f"{signals.unknown_recent} messages to addresses that do not exist in the last "
            f"{plan.unknown_user_window // 60} minutes (a harvested address list?)",
            evidence(UNKNOWN_USERS, {"count": signals.unknown_recent, "limit": plan.unknown_user_limit},
                     {"seconds": plan.unknown_user_window}),
        )  # fmt: skip
    if signals.complaints_recent >= plan.complaint_limit:
        return Detection(
            Action.DETECT_SPAM,
            f"{signals.complaints_recent} recipients reported these messages as spam in the last "
            f"{plan.complaint_window // 3600 or 1} hour(s)",
            evidence(COMPLAINTS, {"count": signals.complaints_recent, "limit": plan.complaint_limit},
                     {"seconds": plan.complaint_window}),
        )  # fmt: skip
    sent = bounced = 0
    for minute_sent, minute_bounced in signals.outcomes or []:
        sent += minute_sent
        bounced += minute_bounced
        if sent + bounced >= plan.bounce_window:
            break
    attempted = sent + bounced
    threshold = plan.bounce_ratio * (2 if state is HostingState.FORCED else 1)
    if attempted >= plan.bounce_window and bounced / attempted > threshold:
        return Detection(
            Action.DETECT_BOUNCE,
            f"{bounced} of the last {attempted} recipients bounced ({bounced / attempted:.0%}; "
            f"the limit is {threshold:.0%})",
            evidence(BOUNCE_RATIO, {"bounced": bounced, "attempted": attempted, "ratio": round(bounced / attempted, 4),
                                    "threshold": threshold}, {"recipients": attempted}),
        )  # fmt: skip
    return None
