"""English and German for the driver's pages, chosen from the browser's language.

Source strings are English; ``GERMAN`` maps them. A string without a German
entry shows in English rather than break the page.
"""

from __future__ import annotations

from collections.abc import Callable

SUPPORTED = ("en", "de")

GERMAN: dict[str, str] = {
    "Charging": "Laden",
    "Connector": "Anschluss",
    "Available": "Frei",
    "Occupied": "Belegt",
    "Offline": "Offline",
    "Out of order": "Außer Betrieb",
    "Prices incl. VAT": "Preise inkl. MwSt.",
    "Price": "Preis",
    "Start charging": "Laden starten",
    "Pay and start": "Bezahlen und starten",
    "We reserve {amount} on your card. You only pay for what you charge; the rest is released when you stop.": "Wir reservieren {amount} auf Ihrer Karte. Sie zahlen nur, was Sie laden; der Rest wird beim Beenden freigegeben.",
    "This connector is in use. Please try another one.": "Dieser Anschluss ist belegt. Bitte einen anderen wählen.",
    "This charger is offline right now.": "Diese Ladesäule ist gerade offline.",
    "This connector is out of order.": "Dieser Anschluss ist außer Betrieb.",
    "Payment": "Zahlung",
    "Demo payment": "Demo-Zahlung",
    "This is a demo: no real card is charged.": "Dies ist eine Demo: Es wird keine echte Karte belastet.",
    "Card that approves": "Karte, die zustimmt",
    "Card that is declined": "Karte, die abgelehnt wird",
    "Card that needs authentication": "Karte mit Bestätigung durch die Bank",
    "Pay": "Bezahlen",
    "Confirm with your bank": "Bei Ihrer Bank bestätigen",
    "Approve": "Bestätigen",
    "Reject": "Ablehnen",
    "Try another card": "Andere Karte versuchen",
    "Hold": "Reservierung",
    "Energy": "Energie",
    "Power": "Leistung",
    "Elapsed": "Dauer",
    "Cost so far": "Bisherige Kosten",
    "Hold remaining": "Verbleibende Reservierung",
    "Stop charging": "Laden beenden",
    "Starting…": "Startet…",
    "Waiting for the charger to start.": "Warten, bis die Ladesäule startet.",
    "Stopping…": "Wird beendet…",
    "Charging complete": "Ladevorgang beendet",
    "View receipt": "Beleg ansehen",
    "Notify me when it is done": "Benachrichtigen, wenn fertig",
    "Receipt": "Beleg",
    "Site": "Standort",
    "Charger": "Ladesäule",
    "Start": "Beginn",
    "End": "Ende",
    "Meter start": "Zählerstand Beginn",
    "Meter stop": "Zählerstand Ende",
    "Total": "Gesamt",
    "Paid with": "Bezahlt mit",
    "Print or save as PDF": "Drucken oder als PDF speichern",
    "excl. VAT": "exkl. MwSt.",
    "VAT": "MwSt.",
    "incl. VAT": "inkl. MwSt.",
    "Page not found": "Seite nicht gefunden",
    "We could not find that charger or connector.": "Diese Ladesäule oder dieser Anschluss wurde nicht gefunden.",
    "We could not find that page.": "Diese Seite wurde nicht gefunden.",
    "The charge did not start": "Der Ladevorgang ist nicht gestartet",
    "Your hold has been released.": "Ihre Reservierung wurde freigegeben.",
    "Payment not completed": "Zahlung nicht abgeschlossen",
    "Nothing was charged.": "Es wurde nichts berechnet.",
    "Under review": "In Prüfung",
    "We are checking this charge; you will not pay more than the hold.": "Wir prüfen diesen Ladevorgang; Sie zahlen nicht mehr als die Reservierung.",
    "The charger refused to start.": "Die Ladesäule hat den Start abgelehnt.",
    "The charger is offline.": "Die Ladesäule ist offline.",
    "The charger did not answer.": "Die Ladesäule hat nicht geantwortet.",
    "The charger did not start in time.": "Die Ladesäule hat nicht rechtzeitig gestartet.",
    "Stopped before the cost reached the hold.": "Vor Erreichen der Reservierung beendet.",
    "Example": "Beispiel",
    "Back": "Zurück",
    "Session": "Ladevorgang",
    "Your card was declined.": "Ihre Karte wurde abgelehnt.",
    "Your bank needs you to confirm this payment.": "Ihre Bank möchte diese Zahlung bestätigen.",
    "The payment was not completed.": "Die Zahlung wurde nicht abgeschlossen.",
}


def pick_language(accept_language: str | None) -> str:
    """The first supported language the browser asks for; English otherwise."""
    if not accept_language:
        return "en"
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip().lower()[:2]))
    for _, _, code in sorted(ranked):
        if code in SUPPORTED:
            return code
    return "en"


def translator(lang: str) -> Callable[..., str]:
    table = GERMAN if lang == "de" else {}

    def translate(text: str, **values: object) -> str:
        result = table.get(text, text)
        return result.format(**values) if values else result

    return translate
