"""How long ago the charger was last heard from, in the driver's language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from plugpay.web.format import ago

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_seconds_and_minutes_ago_in_english_and_german() -> None:
    at = (NOW - timedelta(seconds=12)).isoformat()
    assert ago(at, "en", NOW) == "12 seconds ago"
    assert ago(at, "de", NOW) == "vor 12 Sekunden"
    assert ago(NOW - timedelta(minutes=3), "en", NOW) == "3 minutes ago"
    assert ago(NOW - timedelta(minutes=3), "de", NOW) == "vor 3 Minuten"


def test_just_now_and_nothing_yet() -> None:
    assert ago(NOW, "en", NOW) == "1 second ago"
    assert ago(None, "en", NOW) == "\u2013"  # an en dash
    assert ago("not a time", "de", NOW) == "\u2013"  # an en dash
