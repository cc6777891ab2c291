"""Crash points: kill this process at a named step, as a power cut would.

``PLUGPAY_CRASH_AT`` names one or more points (comma-separated); the first time
the process passes one of them it sends itself SIGKILL, mid-step, with nothing
flushed or closed. The crash tests use it to aim at the windows between two
steps (a payment answered but not yet recorded, a capture made but not yet
booked) that a kill at a random moment would rarely hit. Unset, a point costs
one membership test of an empty set. Refused in production.

``PLUGPAY_CRASH_ONCE`` names a file: then a point kills only the first process
to pass it (the one that creates the file), so several instances armed alike
crash once between them, and the others carry on.
"""

from __future__ import annotations

import os
import signal

ARMED: frozenset[str] = frozenset(
    name.strip() for name in os.environ.get("PLUGPAY_CRASH_AT", "").split(",") if name.strip()
)

# Every point, so a misspelt one is refused rather than never reached.
POINTS = frozenset(
    {
        "hold.answered",  # the provider made the hold; the session does not know it yet
        "payment.checked",  # the hold is good; the session is not authorised yet
        "authorized.committed",  # authorised with the start queued; nothing sent yet
        "start.accepted",  # the charger took the start; the job is not done yet
        "stop.committed",  # stopping with the stop queued; nothing sent yet
        "stop.accepted",  # the charger took the stop
        "transaction.ended",  # the end and its job are committed; the charger not answered
        "stopped.committed",  # priced and stopped with the capture queued
        "capture.answered",  # the provider captured; nothing is booked yet
        "settled.committed",  # booked and settled; the job is not done yet
        "release.answered",  # the provider released the hold; nothing is booked yet
    }
)


def check_points() -> None:
    unknown = ARMED - POINTS
    if unknown:
        raise ValueError(f"PLUGPAY_CRASH_AT: no such crash point {', '.join(sorted(unknown))}")


ONCE = os.environ.get("PLUGPAY_CRASH_ONCE", "")


def crash_point(name: str) -> None:
    if name in ARMED:
        if ONCE:
            try:
                os.close(os.open(ONCE, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return  # another process crashed here already
        os.kill(os.getpid(), signal.SIGKILL)
