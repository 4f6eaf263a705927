"""The hosting state machine (DESIGN.md §1-2): which action may move a hosting to which state.

One function decides; the CLI, the policy engine, the web area and the API all call it, and a
refusal carries the reason shown to whoever asked (HTTP 409 in the API, a non-zero exit in the CLI).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from scriptmail.model import HostingState

ACTIVE, BLOCKED, PURGING, SPAM, BOUNCE, FORCED = (
    HostingState.ACTIVE,
    HostingState.BLOCKED,
    HostingState.PURGING,
    HostingState.SPAM,
    HostingState.BOUNCE,
    HostingState.FORCED,
)

SENDING_STATES = frozenset({ACTIVE, FORCED})
"""States in which mail is delivered; in every other state it is held."""


class Action(enum.StrEnum):
    BLOCK = "block"
    UNBLOCK = "unblock"
    PURGE = "purge"
    PURGE_DONE = "purge-done"  # the purge job finished: back to active by itself
    DETECT_SPAM = "detect-spam"  # the policy engine saw spam
    DETECT_BOUNCE = "detect-bounce"  # the policy engine saw too many hard bounces
    SET = "set"  # an operator forces a state


# The reference API's request names (POST .../email/request), also the customer area's forms.
REQUESTS = {"BLOCK": Action.BLOCK, "PURGE": Action.PURGE, "UNBLOCK": Action.UNBLOCK}


class Actor(enum.StrEnum):
    CUSTOMER = "customer"
    OPERATOR = "operator"
    POLICY = "policy"
    SYSTEM = "system"


class TransitionNotAllowed(Exception):
    """The action is impossible from the current state; `reason` says why, for the person who asked."""

    def __init__(self, state: HostingState, action: Action, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.action = action
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Context:
    """Facts outside the state that some decisions need."""

    repeat_spam: bool = False  # a second automatic spam block within 7 days


_ALREADY_BLOCKED = "sending is already blocked"
_PURGE_RUNNING = "a purge is running; wait until it has finished"


def holds_mail(state: HostingState) -> bool:
    """Mail submitted or waiting in this state is held, not delivered."""
    return state not in SENDING_STATES


def decide(
    state: HostingState,
    action: Action,
    actor: Actor,
    target: HostingState | None = None,
    context: Context = Context(),
) -> HostingState:
    """The state after `action` by `actor`, or TransitionNotAllowed with the reason."""

    def refuse(reason: str) -> TransitionNotAllowed:
        return TransitionNotAllowed(state, action, reason)

    if action is Action.SET:
        if actor is not Actor.OPERATOR:
            raise refuse("only an operator can set a state directly")
        if target is None or target is PURGING:
            raise refuse("choose active, blocked, spam, bounce or forced; a purge is started with PURGE")
        if state is PURGING:
            raise refuse(_PURGE_RUNNING)
        return target
    if action is Action.PURGE_DONE:
        if actor is not Actor.SYSTEM or state is not PURGING:
            raise refuse("only the purge job ends a purge")
        return ACTIVE
    if state is PURGING:
        raise refuse(_PURGE_RUNNING)
    if action is Action.BLOCK:
        if state in SENDING_STATES:
            return BLOCKED
        raise refuse(_ALREADY_BLOCKED)
    if action is Action.PURGE:
        if state in SENDING_STATES:
            raise refuse("block sending first: only held mail can be purged")
        if state is SPAM and context.repeat_spam and actor is not Actor.OPERATOR:
            raise refuse("spam was detected twice within 7 days: only support can lift this block")
        return PURGING
    if action is Action.UNBLOCK:
        if state in SENDING_STATES:
            raise refuse("sending is not blocked")
        if state is BOUNCE:
            return FORCED  # the reference's "force": allowed bounce ratio doubled
        if state is SPAM and actor is not Actor.OPERATOR:
            raise refuse("spam was detected: purge the held mail first (it unblocks by itself)")
        return ACTIVE
    if action in (Action.DETECT_SPAM, Action.DETECT_BOUNCE):
        if actor is not Actor.POLICY:
            raise refuse("only the policy engine reports detections")
        if state not in SENDING_STATES:
            raise refuse(f"sending is already blocked ({state.value})")
        return SPAM if action is Action.DETECT_SPAM else BOUNCE
    raise refuse(f"unknown action {action}")
