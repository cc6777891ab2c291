"""The push notification that tells a driver the charge is over and what it cost."""

from __future__ import annotations

from urllib.parse import urlsplit

_TEXTS = {
    "en": ("Charging complete", "Total {total} — tap for your receipt"),
    "de": ("Ladevorgang beendet", "Gesamt {total} – für den Beleg tippen"),  # noqa: RUF001
}


_IDLE = {
    "en": (
        "Your car has stopped charging",
        "An idle fee of {price} applies while it stays plugged in.",
    ),
    "de": (
        "Ihr Auto lädt nicht mehr",
        "Solange es angesteckt bleibt, fällt eine Blockiergebühr von {price} an.",
    ),
}


_REFUSED = {
    "en": (
        "Charging did not start",
        "Your saved card did not accept the hold for your RFID card. Open plugpay to check"
        " your card, or start with another one.",
    ),
    "de": (
        "Laden nicht gestartet",
        "Ihre gespeicherte Karte hat die Reservierung für Ihre RFID-Karte abgelehnt. Öffnen"
        " Sie plugpay, um Ihre Karte zu prüfen oder mit einer anderen zu starten.",
    ),
}


def _language(lang: str) -> str:
    """The supported language of a tag: de, de-AT, de_CH → de; anything else → en."""
    primary = lang.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in _TEXTS else "en"


def receipt_notification(total_text: str, session_url: str, lang: str) -> dict[str, str]:
    """The Web Push payload for a finished session's receipt.

    *total_text* is the total already formatted for the driver's locale
    ("€12.34", "12,34 €"); *session_url* is where tapping the notification leads
    (the receipt page); *lang* a language tag such as "de-DE". The ``tag`` is the
    same for every message about one session, so a repeated notification replaces
    the earlier one instead of stacking up.
    """
    title, body = _TEXTS[_language(lang)]
    path = urlsplit(session_url).path or session_url
    return {
        "title": title,
        "body": body.format(total=total_text),
        "url": session_url,
        "tag": f"plugpay-receipt:{path}",
    }


def idle_notification(price_text: str, session_url: str, lang: str) -> dict[str, str]:
    """The Web Push payload when the car stops drawing power and an idle fee applies:
    *price_text* as the price page shows it ("€0.119 / min"); tapping leads to the
    live page (*session_url*), where the driver can stop."""
    title, body = _IDLE[_language(lang)]
    path = urlsplit(session_url).path or session_url
    return {
        "title": title,
        "body": body.format(price=price_text),
        "url": session_url,
        "tag": f"plugpay-idle:{path}",
    }


def card_refused_notification(cards_url: str, lang: str) -> dict[str, str]:
    """The Web Push payload when an RFID card's charge was stopped because the saved
    card refused its hold; tapping leads to the account's cards (*cards_url*)."""
    title, body = _REFUSED[_language(lang)]
    return {"title": title, "body": body, "url": cards_url, "tag": "plugpay-card-refused"}
