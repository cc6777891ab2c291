"""The charging session: its states and the one table of allowed transitions.

CREATED → AUTHORIZED → STARTING → CHARGING → STOPPING → STOPPED → SETTLED,
with the exits START_FAILED (hold released), CANCELED and NEEDS_REVIEW.
Anything not in the table raises, so a session can never, say, be settled
twice or start charging after its hold was released.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
    # The transaction may start before the start command's answer is handled.
    S.AUTHORIZED: frozenset({S.STARTING, S.CHARGING, S.START_FAILED, S.CANCELED}),
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
# A person has to look; nothing more happens by itself (but alerts).
FINAL_STATES = frozenset({*TERMINAL_STATES, S.NEEDS_REVIEW})


class Reason(StrEnum):
    """Why a session moved the way it did; the live page and receipts read these."""

    DRIVER = "driver"  # the driver pressed stop
    DRIVER_CANCELED = "driver_canceled"  # the driver left the payment page with Cancel
    HOLD_LIMIT = "hold_limit"  # stopped before the cost reached the hold
    NOT_PAID_IN_TIME = "not_paid_in_time"
    PAYMENT_UNAVAILABLE = "payment_unavailable"  # the hold could not be placed
    PAYMENT_DECLINED = "payment_declined"
    STOPPED_BEFORE_START = "stopped_before_start"
    CHARGER_REJECTED = "charger_rejected"
    CHARGER_OFFLINE = "charger_offline"
    CHARGER_NOT_RESPONDING = "charger_not_responding"
    CHARGER_DID_NOT_START = "charger_did_not_start"
    CHARGER_SILENT = "charger_silent"  # settled from the last reading
    STOP_IGNORED = "stop_ignored"  # still metering long after every stop asked
    HOLD_CANCELED_BY_PROVIDER = "hold_canceled_by_provider"
    HOLD_EXPIRED = "hold_expired"
    PRICE_EXCEEDED_HOLD = "price_exceeded_hold"  # captured the hold, not the price
    PROVIDER_REFUSED = "provider_refused"
    PROVIDER_UNREACHABLE = "provider_unreachable"  # until the hold was about to expire


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


@dataclass
class Timeouts:
    """How long each state may last before the sweeper moves the session on (one
    object, shared by the services of an instance)."""

    reservation: timedelta = timedelta(minutes=5)  # CREATED: waiting for payment
    start: timedelta = timedelta(seconds=90)  # AUTHORIZED / STARTING
    silent: timedelta = timedelta(minutes=15)  # CHARGING without a reading
    stop_retry: timedelta = timedelta(seconds=30)  # STOPPING: ask the charger again
    # Card holds last 7 days at Stripe: a capture still pending this long after
    # authorisation needs a person before the hold is gone.
    hold_lifetime: timedelta = timedelta(days=6, hours=12)
    review_warning: timedelta = timedelta(hours=12)  # NEEDS_REVIEW: warn before expiry


def hold_expires_at(authorized_at: datetime, timeouts: Timeouts) -> datetime:
    return authorized_at + timeouts.hold_lifetime


def deadline_for(
    state: SessionState,
    now: datetime,
    timeouts: Timeouts,
    *,
    created_at: datetime | None = None,
    authorized_at: datetime | None = None,
    last_sign_at: datetime | None = None,
) -> datetime | None:
    """When the sweeper looks at a session that entered ``state`` at ``now``.

    Every state that waits for something outside plugpay has one; only the
    terminal states have none.
    """
    if state == S.CREATED:
        return (created_at or now) + timeouts.reservation
    if state in (S.AUTHORIZED, S.STARTING):
        return (authorized_at or now) + timeouts.start
    if state == S.CHARGING:
        return (last_sign_at or now) + timeouts.silent
    if state == S.STOPPING:
        return now + timeouts.stop_retry
    if state == S.STOPPED:
        return hold_expires_at(authorized_at or now, timeouts)
    if state == S.NEEDS_REVIEW:
        expiry = hold_expires_at(authorized_at or now, timeouts)
        return max(now, expiry - timeouts.review_warning)
    return None


def must_stop_for_hold(
    cost_minor: int, hold_minor: int, cost_per_minute_minor: float, safety_minutes: float = 2.0
) -> bool:
    """Stop when the cost, plus what a couple more minutes would add, nears the hold.

    A stop takes a while to reach the charger and end the transaction; the
    margin covers that so the final price stays within the hold.
    """
    margin = max(cost_per_minute_minor * safety_minutes, hold_minor * 0.02)
    return cost_minor + margin >= hold_minor
