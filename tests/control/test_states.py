"""The state machine as a table: every (state, action) pair, allowed or refused with its reason."""

from __future__ import annotations

import pytest

from scriptmail.control.states import (
    Action,
    Actor,
    Context,
    TransitionNotAllowed,
    decide,
    holds_mail,
)
from scriptmail.model import HostingState as S

C, O, P, Y = Actor.CUSTOMER, Actor.OPERATOR, Actor.POLICY, Actor.SYSTEM

# (state, action, actor) -> new state, or the words the refusal must contain.
TABLE = {
    (S.ACTIVE, Action.BLOCK, C): S.BLOCKED,
    (S.FORCED, Action.BLOCK, C): S.BLOCKED,
    (S.BLOCKED, Action.BLOCK, C): "already blocked",
    (S.SPAM, Action.BLOCK, C): "already blocked",
    (S.BOUNCE, Action.BLOCK, C): "already blocked",
    (S.PURGING, Action.BLOCK, C): "purge is running",
    (S.ACTIVE, Action.PURGE, C): "block sending first",
    (S.FORCED, Action.PURGE, C): "block sending first",
    (S.BLOCKED, Action.PURGE, C): S.PURGING,
    (S.SPAM, Action.PURGE, C): S.PURGING,
    (S.BOUNCE, Action.PURGE, C): S.PURGING,
    (S.PURGING, Action.PURGE, C): "purge is running",
    (S.ACTIVE, Action.UNBLOCK, C): "not blocked",
    (S.FORCED, Action.UNBLOCK, C): "not blocked",
    (S.BLOCKED, Action.UNBLOCK, C): S.ACTIVE,
    (S.BOUNCE, Action.UNBLOCK, C): S.FORCED,
    (S.SPAM, Action.UNBLOCK, C): "purge the held mail first",
    (S.SPAM, Action.UNBLOCK, O): S.ACTIVE,
    (S.PURGING, Action.UNBLOCK, C): "purge is running",
    (S.PURGING, Action.PURGE_DONE, Y): S.ACTIVE,
    (S.BLOCKED, Action.PURGE_DONE, Y): "only the purge job",
    (S.PURGING, Action.PURGE_DONE, C): "only the purge job",
    (S.ACTIVE, Action.DETECT_SPAM, P): S.SPAM,
    (S.FORCED, Action.DETECT_SPAM, P): S.SPAM,
    (S.ACTIVE, Action.DETECT_BOUNCE, P): S.BOUNCE,
    (S.FORCED, Action.DETECT_BOUNCE, P): S.BOUNCE,
    (S.BLOCKED, Action.DETECT_SPAM, P): "already blocked",
    (S.ACTIVE, Action.DETECT_SPAM, C): "only the policy engine",
}


@pytest.mark.parametrize(("state", "action", "actor"), list(TABLE), ids=[f"{s.value}-{a.value}-{r.value}" for s, a, r in TABLE])
def test_transition_table(state: S, action: Action, actor: Actor) -> None:
    expected = TABLE[(state, action, actor)]
    if isinstance(expected, S):
        assert decide(state, action, actor) is expected
    else:
        with pytest.raises(TransitionNotAllowed) as refused:
            decide(state, action, actor)
        assert expected in refused.value.reason
        assert (refused.value.state, refused.value.action) == (state, action)


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("action", [Action.BLOCK, Action.UNBLOCK, Action.PURGE])
def test_every_customer_action_from_every_state_is_decided(state: S, action: Action) -> None:
    """No pair falls through: each is either a state or a refusal with a reason."""
    try:
        assert isinstance(decide(state, action, C), S)
    except TransitionNotAllowed as refused:
        assert refused.reason


def test_a_second_spam_within_a_week_is_for_support_only() -> None:
    repeat = Context(repeat_spam=True)
    with pytest.raises(TransitionNotAllowed, match="only support"):
        decide(S.SPAM, Action.PURGE, C, context=repeat)
    assert decide(S.SPAM, Action.PURGE, O, context=repeat) is S.PURGING


@pytest.mark.parametrize("target", [S.ACTIVE, S.BLOCKED, S.SPAM, S.BOUNCE, S.FORCED])
@pytest.mark.parametrize("state", [S.ACTIVE, S.BLOCKED, S.SPAM, S.BOUNCE, S.FORCED])
def test_an_operator_may_set_any_state_but_purging(state: S, target: S) -> None:
    assert decide(state, Action.SET, O, target=target) is target


@pytest.mark.parametrize(("state", "target", "actor", "words"), [
    (S.ACTIVE, S.PURGING, O, "PURGE"),
    (S.PURGING, S.ACTIVE, O, "purge is running"),
    (S.ACTIVE, S.BLOCKED, C, "only an operator"),
    (S.ACTIVE, None, O, "choose"),
])
def test_refused_direct_settings(state: S, target: S | None, actor: Actor, words: str) -> None:
    with pytest.raises(TransitionNotAllowed, match=words):
        decide(state, Action.SET, actor, target=target)


def test_only_active_and_forced_send() -> None:
    assert [s for s in S if not holds_mail(s)] == [S.ACTIVE, S.FORCED]
