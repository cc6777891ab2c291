"""English and German for the driver's pages, from gettext catalogs.

Source texts are English, in ``_()`` calls of the templates and the web
package (and marked with ``N_()`` where they are chosen before they are
shown, as the problems below). ``make messages`` extracts them into
``locale/messages.pot`` and updates each language's catalog,
``locale/<lang>/LC_MESSAGES/messages.po``; the catalogs are compiled when the
server first needs them. A text without a translation shows in English
rather than break the page. A text may take ``{name}`` placeholders, filled
after translation: ``_("{percent} % used", percent=40)``.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

SUPPORTED = ("en", "de")
LOCALE = Path(__file__).parent / "locale"
DOMAIN = "messages"


def N_(text: str) -> str:
    """Mark ``text`` for the catalogs (the name gettext's tools look for); it is
    translated where it is shown."""
    return text


# What the services report when a start or a payment does not go through, as it arrives
# in ?error= on the connector and payment pages, and the driver's words for it.
# Anything not listed here is shown as GENERIC_PROBLEM, never as given: the query string
# is part of a link anyone can send.
PROBLEMS: dict[str, str] = {
    # plugpay.payments: refunds and saved cards
    "This payment was not taken, so there is nothing to refund.": N_(
        "This payment was not taken, so there is nothing to refund."
    ),
    "The refund is more than what is left of the payment.": N_(
        "The refund is more than what is left of the payment."
    ),
    "This payment was already refunded in full.": N_("This payment was already refunded in full."),
    "This payment is disputed by the cardholder and cannot be refunded.": N_(
        "This payment is disputed by the cardholder and cannot be refunded."
    ),
    "This refund does not exist.": N_("This refund does not exist."),
    "This customer does not exist.": N_("This customer does not exist."),
    "This saved card does not exist.": N_("This saved card does not exist."),
    "This card registration does not exist.": N_("This card registration does not exist."),
    "This card is not saved for this customer.": N_("This card is not saved for this customer."),
    "This card registration cannot be changed any more.": N_(
        "This card registration cannot be changed any more."
    ),
    # plugpay.services.sessions: reserving the connector
    "too many starts from here; please wait a few minutes": N_(
        "Too many starts from this device or network. Please wait a few minutes."
    ),
    "connector is occupied": N_("Someone else is using this connector right now."),
    "connector is offline": N_("This charger is offline right now."),
    "connector is out of order": N_("This connector is out of order."),
    "someone else just started on this connector": N_(
        "Someone else has just started charging here. Please try another connector."
    ),
    "payments are unavailable right now; please try again": N_(
        "Payments are not available right now. Please try again in a moment."
    ),
    # plugpay.services.sessions: confirming the hold
    "Your bank needs you to confirm this payment.": N_(
        "Your bank needs you to confirm this payment."
    ),
    "The payment was not completed.": N_("The payment was not completed."),
    "The payment amount does not match the hold.": N_(
        "The payment amount does not match the hold."
    ),
    # plugpay.services.rfid: linking a card
    "an RFID card number is 1-20 characters without spaces": N_(
        "A card number is 1 to 20 characters, without spaces."
    ),
    "this number is not an RFID card": N_("This number is not an RFID card."),
    "this card is linked to another account": N_("This card is linked to another account."),
    # plugpay.services.cards: saving a card
    "Your bank needs you to confirm this card.": N_("Your bank needs you to confirm this card."),
    "The card was not saved.": N_("The card was not saved."),
    "Choose one of the test cards.": N_("Choose one of the test cards."),
    "Payments are unavailable right now; please try again.": N_(
        "Payments are not available right now. Please try again in a moment."
    ),
    # plugpay.payments.wording
    "Your card was declined.": N_("Your card was declined."),
    "Your card could not be verified by your bank.": N_(
        "Your card could not be verified by your bank."
    ),
    "This payment was not authorised.": N_("This payment was not authorised."),
    "This payment was already taken.": N_("This payment was already taken."),
    "This payment hold was already released.": N_("This payment hold was already released."),
    "The payment could not be taken.": N_("The payment could not be taken."),
    "This payment does not exist.": N_("This payment does not exist."),
    "The payment provider refused the request.": N_("The payment provider refused the request."),
    "This payment is not waiting for verification.": N_(
        "This payment is not waiting for verification."
    ),
    "Your card has insufficient funds.": N_("Your card has insufficient funds."),
    "Your card has expired.": N_("Your card has expired."),
    "Your card's security code is incorrect.": N_("Your card's security code is incorrect."),
    "Your card number is incorrect.": N_("Your card number is incorrect."),
    "Your card's expiry date is incorrect.": N_("Your card's expiry date is incorrect."),
    "Your card could not be processed. Please try again.": N_(
        "Your card could not be processed. Please try again."
    ),
    "Your card has reached its spending limit.": N_("Your card has reached its spending limit."),
    "Your bank asks you to confirm this payment.": N_(
        "Your bank asks you to confirm this payment."
    ),
}
GENERIC_PROBLEM = N_("Something went wrong. Please try again.")


@functools.cache
def catalog(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of ``lang`` (none for a language without one)."""
    path = LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang not in SUPPORTED or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        messages = read_po(po, locale=lang, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, messages, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def problem_text(text: str | None, lang: str) -> str:
    """A reported problem in the driver's words and language; unknown text stays unshown."""
    return catalog(lang).gettext(PROBLEMS.get((text or "").strip(), GENERIC_PROBLEM))


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
    """``_`` for the pages: the text in ``lang``, its placeholders filled."""
    messages = catalog(lang)

    def translate(text: str, **values: object) -> str:
        result = messages.gettext(text)
        return result.format(**values) if values else result

    return translate


def context_translator(lang: str) -> Callable[..., str]:
    """``pgettext`` for the pages: a word whose sense its context fixes ("state":
    "Charging" is "Lädt" there, and the page's title "Laden")."""
    messages = catalog(lang)

    def translate(context: str, text: str, **values: object) -> str:
        result = messages.pgettext(context, text)
        return result.format(**values) if values else result

    return translate


def plural_translator(lang: str) -> Callable[..., str]:
    """``ngettext`` for the pages: the form for ``n``, ``{n}`` filled in."""
    messages = catalog(lang)

    def translate(singular: str, plural: str, n: int, **values: object) -> str:
        return messages.ngettext(singular, plural, n).format(n=n, **values)

    return translate
