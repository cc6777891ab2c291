"""The charging session: its states and the one table of allowed transitions.

CREATED → AUTHORIZED → STARTING → CHARGING → STOPPING → STOPPED → SETTLED,
with the exits START_FAILED (hold released), CANCELED and NEEDS_REVIEW.
Anything not in the table raises, so a session can never, say, be settled
twice or start charging after its hold was released.
"""

from __future__ import annotations

from enum import StrEnum

from plugpay.domain.errors import PlugpayError


class SessionState(StrEnum):
    CREATED = "CREATED"  # connector reserved, hold being placed
    AUTHORIZED = "AUTHORIZED"  # hold confirmed (requires_capture, right amount)
    STARTING = "STARTING"  # start command sent, waiting for the transaction
    CHARGING = "CHARGING"
    STOPPING = "STOPPING"  # stop command sent, waiting for the transaction to end
    STOPPED = "STOPPED"  # transaction ended, final price known, capture pending
    SETTLED = "SETTLED"  # captured (or canceled at zero); receipt final
    START_FAILED = "START_FAILED"  # charger refused / offline / never started: hold released
    CANCELED = "CANCELED"  # abandoned before the charge started: hold released
    NEEDS_REVIEW = "NEEDS_REVIEW"  # money could not be settled automatically


S = SessionState

TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.CREATED: frozenset({S.AUTHORIZED, S.CANCELED}),
    S.AUTHORIZED: frozenset({S.STARTING, S.START_FAILED, S.CANCELED}),
    # A transaction can end before we saw it start (queued messages arrive together).
    S.STARTING: frozenset({S.CHARGING, S.STOPPED, S.START_FAILED}),
    S.CHARGING: frozenset({S.STOPPING, S.STOPPED}),
    S.STOPPING: frozenset({S.CHARGING, S.STOPPED}),  # a refused stop goes back to charging
    S.STOPPED: frozenset({S.SETTLED, S.NEEDS_REVIEW}),
    S.NEEDS_REVIEW: frozenset({S.SETTLED}),
    S.SETTLED: frozenset(),
    S.START_FAILED: frozenset(),
    S.CANCELED: frozenset(),
}

# States that hold the connector: at most one such session per connector
# (a partial unique index in the database enforces it).
ACTIVE_STATES = frozenset({S.CREATED, S.AUTHORIZED, S.STARTING, S.CHARGING, S.STOPPING})
TERMINAL_STATES = frozenset({S.SETTLED, S.START_FAILED, S.CANCELED})


class InvalidTransition(PlugpayError):
    def __init__(self, current: SessionState, target: SessionState) -> None:
        super().__init__(f"a session cannot go from {current} to {target}")
        self.current = current
        self.target = target


def check_transition(current: SessionState | str, target: SessionState) -> SessionState:
    """Return ``target`` if the table allows it from ``current``; raise otherwise."""
    state = SessionState(current)
    if target not in TRANSITIONS[state]:
        raise InvalidTransition(state, target)
    return target


def sources_of(target: SessionState) -> frozenset[SessionState]:
    """Every state that may move to ``target`` (for compare-and-set updates)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def must_stop_for_hold(
    cost_minor: int, hold_minor: int, cost_per_minute_minor: float, safety_minutes: float = 2.0
) -> bool:
    """Stop when the cost, plus what a couple more minutes would add, nears the hold.

    A stop takes a while to reach the charger and end the transaction; the
    margin covers that so the final price stays within the hold.
    """
    margin = max(cost_per_minute_minor * safety_minutes, hold_minor * 0.02)
    return cost_minor + margin >= hold_minor
