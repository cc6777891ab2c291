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
    "up to": "bis",
    "Available": "Frei",
    "Occupied": "Belegt",
    "Offline": "Offline",
    "Out of order": "Außer Betrieb",
    "Prices incl. VAT": "Preise inkl. MwSt.",
    "Price": "Preis",
    "Pay and start": "Bezahlen und starten",
    "This connector is in use. Please try another one.": "Dieser Anschluss ist belegt. Bitte einen anderen wählen.",
    "This charger is offline right now.": "Diese Ladesäule ist gerade offline.",
    "This connector is out of order.": "Dieser Anschluss ist außer Betrieb.",
    "Payment": "Zahlung",
    "Demo payment": "Demo-Zahlung",
    "This is a demo: no real card is charged.": "Dies ist eine Demo: Es wird keine echte Karte belastet.",
    "Card that approves": "Karte wird angenommen",
    "Card that is declined": "Karte wird abgelehnt",
    "Card that needs authentication": "Bank verlangt Bestätigung",
    "Pay": "Bezahlen",
    "Confirm with your bank": "Bei Ihrer Bank bestätigen",
    "Approve": "Bestätigen",
    "Reject": "Ablehnen",
    "Energy": "Energie",
    "Power": "Leistung",
    "Elapsed": "Dauer",
    "Cost so far": "Bisherige Kosten",
    "Hold remaining": "Noch verfügbar",
    "Stop charging": "Laden beenden",
    "Starting…": "Startet…",
    "Waiting for the charger to start.": "Warten, bis die Ladesäule startet.",
    "Stopping…": "Wird beendet…",
    "Charging complete": "Ladevorgang beendet",
    "View receipt": "Beleg ansehen",
    "Notify me when it is done": "Bei Ende benachrichtigen",
    "Receipt": "Beleg",
    "Charger": "Ladesäule",
    "Start": "Beginn",
    "End": "Ende",
    "Meter start": "Zählerstand Beginn",
    "Meter stop": "Zählerstand Ende",
    "Total": "Gesamt",
    "Paid with": "Bezahlt mit",
    "Print or save as PDF": "Drucken oder PDF speichern",
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
    "Waiting for payment": "Warten auf Zahlung",
    "Did not start": "Nicht gestartet",
    "Canceled": "Abgebrochen",
    "Your charge": "Ihr Ladevorgang",
    "Plug the cable into your car if you have not yet.": "Stecken Sie das Kabel in Ihr Auto, falls noch nicht geschehen.",
    "If the charge does not start, your hold is released and you pay nothing.": "Startet der Ladevorgang nicht, wird Ihre Reservierung freigegeben und Sie zahlen nichts.",
    "Waiting for the charger to end the charge. Then we take the exact amount.": "Warten, bis die Ladesäule den Ladevorgang beendet. Dann buchen wir genau den fälligen Betrag ab.",
    "Duration": "Dauer",
    "We take {total} from the {hold} hold; the rest is released. Your bank may show the hold for a few days.": "Wir buchen {total} von der Reservierung über {hold} ab; der Rest wird freigegeben. Ihre Bank zeigt die Reservierung eventuell noch einige Tage an.",
    "You stopped before charging started.": "Sie haben beendet, bevor der Ladevorgang begann.",
    "Try again": "Erneut versuchen",
    "Skip to main content": "Zum Inhalt springen",
    "plugpay is free software.": "plugpay ist freie Software.",
    "Source code": "Quellcode",
    "Hold on your card": "Kartenreservierung",
    "Why a hold? Nobody knows in advance how much your car will take. Charging stops before the cost reaches the hold, so you never pay more.": "Warum eine Reservierung? Niemand weiß vorher, wie viel Ihr Auto lädt. Der Ladevorgang endet, bevor die Kosten die Reservierung erreichen – Sie zahlen also nie mehr.",
    "Something went wrong": "Etwas ist schiefgelaufen",
    "Error": "Fehler",
    "Please try again in a moment.": "Bitte versuchen Sie es gleich noch einmal.",
    "To charge, scan the QR code on the charger again.": "Zum Laden scannen Sie bitte erneut den QR-Code an der Ladesäule.",
    "To charge, scan the QR code on the charger.": "Zum Laden scannen Sie den QR-Code an der Ladesäule.",
    "Pay for charging without an account.": "Laden bezahlen, ganz ohne Konto.",
    "Go to the start page": "Zur Startseite",
    "You only pay for what you charge; the rest is released when you stop.": "Sie zahlen nur, was Sie laden; der Rest wird beim Beenden freigegeben.",
    "Please try another card.": "Bitte versuchen Sie eine andere Karte.",
    "Your bank asks you to confirm this payment. In a real payment your banking app or a page from your bank opens here.": "Ihre Bank bittet Sie, diese Zahlung zu bestätigen. Bei einer echten Zahlung öffnet sich hier Ihre Banking-App oder eine Seite Ihrer Bank.",
    "Choose a test card": "Testkarte wählen",
    "How do you want to pay?": "Wie möchten Sie bezahlen?",
    "Charging time": "Ladezeit",
    "Session fee": "Startgebühr",
    "Idle fee": "Blockiergebühr",
    "Minimum price": "Mindestpreis",
    "Maximum price": "Höchstpreis",
    "Discount": "Rabatt",
    "Under review: we are checking this charge; you will not pay more than the hold.": "In Prüfung: Wir prüfen diesen Ladevorgang; Sie zahlen nicht mehr als die Reservierung.",
    "Not final yet: the charge is still being settled.": "Noch nicht endgültig: Der Ladevorgang wird noch abgerechnet.",
    "Charge": "Ladevorgang",
    "Item": "Posten",
    "Amount": "Betrag",
    "No charges.": "Keine Kosten.",
    "Total excl. VAT": "Summe exkl. MwSt.",
    "Refunded": "Erstattet",
    "Cancel": "Abbrechen",
    "Cancel frees the connector at once; nothing is charged.": "Abbrechen gibt den Anschluss sofort frei; es wird nichts berechnet.",
    "Paid after refunds": "Bezahlt nach Erstattung",
    "on": "auf",
    "Reference": "Referenz",
    "Receipt by notification": "Beleg als Benachrichtigung",
    "Get the total on this phone when charging ends, even with this page closed.": "Erhalten Sie den Betrag auf diesem Telefon, wenn der Ladevorgang endet – auch bei geschlossener Seite.",
    "Notifications are on.": "Benachrichtigungen sind an.",
    "Notifications are blocked in this browser.": "Benachrichtigungen sind in diesem Browser blockiert.",
    "Could not turn on notifications.": "Benachrichtigungen konnten nicht eingeschaltet werden.",
    "This browser cannot show notifications.": "Dieser Browser kann keine Benachrichtigungen anzeigen.",
    "You confirm the {amount} hold on the next page.": "Die Reservierung über {amount} bestätigen Sie auf der nächsten Seite.",
    "Paid": "Bezahlt",
    "Settling…": "Wird abgerechnet…",
    "{percent} % of the {hold} hold used": "{percent} % der Reservierung über {hold} genutzt",
    "Confirm hold and start": "Bestätigen und laden",
    "You pay nothing.": "Sie zahlen nichts.",
    "The receipt shows what we know so far.": "Der Beleg zeigt den bisherigen Stand.",
}


# What the services report when a start or a payment does not go through, as it arrives
# in ?error= on the connector and payment pages: (English, German) for the driver.
# Anything not listed here is shown as GENERIC_PROBLEM, never as given: the query string
# is part of a link anyone can send.
PROBLEMS: dict[str, tuple[str, str]] = {
    # plugpay.payments: refunds and saved cards
    "This payment was not taken, so there is nothing to refund.": (
        "This payment was not taken, so there is nothing to refund.",
        "Diese Zahlung wurde nicht eingezogen, es gibt also nichts zu erstatten.",
    ),
    "The refund is more than what is left of the payment.": (
        "The refund is more than what is left of the payment.",
        "Die Erstattung ist höher als der verbleibende Betrag der Zahlung.",
    ),
    "This payment was already refunded in full.": (
        "This payment was already refunded in full.",
        "Diese Zahlung wurde bereits vollständig erstattet.",
    ),
    "This payment is disputed by the cardholder and cannot be refunded.": (
        "This payment is disputed by the cardholder and cannot be refunded.",
        "Diese Zahlung wird vom Karteninhaber angefochten und kann nicht erstattet werden.",
    ),
    "This refund does not exist.": (
        "This refund does not exist.",
        "Diese Erstattung gibt es nicht.",
    ),
    "This customer does not exist.": (
        "This customer does not exist.",
        "Diesen Kunden gibt es nicht.",
    ),
    "This saved card does not exist.": (
        "This saved card does not exist.",
        "Diese gespeicherte Karte gibt es nicht.",
    ),
    "This card registration does not exist.": (
        "This card registration does not exist.",
        "Diese Kartenhinterlegung gibt es nicht.",
    ),
    "This card is not saved for this customer.": (
        "This card is not saved for this customer.",
        "Diese Karte ist für diesen Kunden nicht gespeichert.",
    ),
    "This card registration cannot be changed any more.": (
        "This card registration cannot be changed any more.",
        "Diese Kartenhinterlegung kann nicht mehr geändert werden.",
    ),
    # plugpay.services.sessions: reserving the connector
    "too many starts from here; please wait a few minutes": (
        "Too many starts from this device or network. Please wait a few minutes.",
        "Zu viele Starts von diesem Gerät oder Netz. Bitte warten Sie ein paar Minuten.",
    ),
    "connector is occupied": (
        "Someone else is using this connector right now.",
        "Dieser Anschluss wird gerade von jemand anderem genutzt.",
    ),
    "connector is offline": (
        "This charger is offline right now.",
        "Diese Ladesäule ist gerade offline.",
    ),
    "connector is out of order": (
        "This connector is out of order.",
        "Dieser Anschluss ist außer Betrieb.",
    ),
    "someone else just started on this connector": (
        "Someone else has just started charging here. Please try another connector.",
        "Jemand anderes hat hier gerade einen Ladevorgang gestartet. Bitte wählen Sie einen anderen Anschluss.",
    ),
    "payments are unavailable right now; please try again": (
        "Payments are not available right now. Please try again in a moment.",
        "Zahlungen sind gerade nicht möglich. Bitte versuchen Sie es gleich noch einmal.",
    ),
    # plugpay.services.sessions: confirming the hold
    "Your bank needs you to confirm this payment.": (
        "Your bank needs you to confirm this payment.",
        "Ihre Bank möchte, dass Sie diese Zahlung bestätigen.",
    ),
    "The payment was not completed.": (
        "The payment was not completed.",
        "Die Zahlung wurde nicht abgeschlossen.",
    ),
    "The payment amount does not match the hold.": (
        "The payment amount does not match the hold.",
        "Der Zahlungsbetrag passt nicht zur Reservierung.",
    ),
    # plugpay.payments.wording
    "Your card was declined.": ("Your card was declined.", "Ihre Karte wurde abgelehnt."),
    "Your card could not be verified by your bank.": (
        "Your card could not be verified by your bank.",
        "Ihre Karte konnte von Ihrer Bank nicht bestätigt werden.",
    ),
    "This payment was not authorised.": (
        "This payment was not authorised.",
        "Diese Zahlung wurde nicht freigegeben.",
    ),
    "This payment was already taken.": (
        "This payment was already taken.",
        "Diese Zahlung wurde bereits eingezogen.",
    ),
    "This payment hold was already released.": (
        "This payment hold was already released.",
        "Diese Reservierung wurde bereits freigegeben.",
    ),
    "The payment could not be taken.": (
        "The payment could not be taken.",
        "Die Zahlung konnte nicht eingezogen werden.",
    ),
    "This payment does not exist.": (
        "This payment does not exist.",
        "Diese Zahlung gibt es nicht.",
    ),
    "The payment provider refused the request.": (
        "The payment provider refused the request.",
        "Der Zahlungsdienst hat die Anfrage abgelehnt.",
    ),
    "This payment is not waiting for verification.": (
        "This payment is not waiting for verification.",
        "Diese Zahlung wartet nicht auf eine Bestätigung.",
    ),
    "Your card has insufficient funds.": (
        "Your card has insufficient funds.",
        "Ihre Karte ist nicht ausreichend gedeckt.",
    ),
    "Your card has expired.": ("Your card has expired.", "Ihre Karte ist abgelaufen."),
    "Your card's security code is incorrect.": (
        "Your card's security code is incorrect.",
        "Die Prüfnummer Ihrer Karte ist falsch.",
    ),
    "Your card number is incorrect.": (
        "Your card number is incorrect.",
        "Ihre Kartennummer ist falsch.",
    ),
    "Your card's expiry date is incorrect.": (
        "Your card's expiry date is incorrect.",
        "Das Ablaufdatum Ihrer Karte ist falsch.",
    ),
    "Your card could not be processed. Please try again.": (
        "Your card could not be processed. Please try again.",
        "Ihre Karte konnte nicht verarbeitet werden. Bitte versuchen Sie es erneut.",
    ),
    "Your card has reached its spending limit.": (
        "Your card has reached its spending limit.",
        "Ihre Karte hat ihr Ausgabelimit erreicht.",
    ),
    "Your bank asks you to confirm this payment.": (
        "Your bank asks you to confirm this payment.",
        "Ihre Bank bittet Sie, diese Zahlung zu bestätigen.",
    ),
}
GENERIC_PROBLEM = (
    "Something went wrong. Please try again.",
    "Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.",
)


def problem_text(text: str | None, lang: str) -> str:
    """A reported problem in the driver's words and language; unknown text stays unshown."""
    english, german = PROBLEMS.get((text or "").strip(), GENERIC_PROBLEM)
    return german if lang == "de" else english


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
