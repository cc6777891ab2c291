"""The driver pages' texts come from gettext catalogs: the template is what the
sources say, German translates every text with the same placeholders, and every
problem the services report has words in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from plugpay.payments import wording
from plugpay.web.format import plug
from plugpay.web.i18n import (
    LOCALE,
    PROBLEMS,
    catalog,
    context_translator,
    pick_language,
    problem_text,
    translator,
)

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{(\w+)\}")
METHODS = [
    ("backend/plugpay/web/**.py", "python"),
    ("backend/plugpay/web/templates/**.html", "jinja2"),
]


def catalog_file(name: str) -> list[tuple[str | None, str, str]]:
    """(context, English, translation) per entry; a plural entry gives one per form."""
    with (LOCALE / name).open("rb") as po:
        messages = read_po(po)
    entries = []
    for m in messages:
        if not m.id or m.fuzzy:
            continue
        if isinstance(m.id, tuple):  # singular and plural, and a translation of each
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            entries.append((m.context, str(m.id[0]), str(strings[0] if strings else "")))
            entries.append((m.context, str(m.id[1]), str(strings[-1] if strings else "")))
        else:
            entries.append((m.context, str(m.id), str(m.string)))
    return entries


def extracted() -> set[tuple[str | None, str]]:
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        ROOT, METHODS, keywords=keywords
    ):
        for text in (message,) if isinstance(message, str) else message[:2]:
            found.add((context, text))
    return found


def test_the_template_holds_every_text_of_the_sources() -> None:
    """`make messages` was run: no text of a page is missing from the catalogs."""
    found = extracted()
    assert len(found) > 120
    assert ("state", "Charging") in found and (None, "Pay and start") in found
    template = {(context, text) for context, text, _ in catalog_file("messages.pot")}
    assert found - template == set(), "run make messages"
    assert template - found == set(), "run make messages"


@pytest.mark.parametrize("lang", ["de", "en"])
def test_each_language_has_every_text_of_the_template(lang: str) -> None:
    template = {(c, t) for c, t, _ in catalog_file("messages.pot")}
    entries = catalog_file(f"{lang}/LC_MESSAGES/messages.po")
    assert {(c, t) for c, t, _ in entries} == template


def test_german_translates_every_text_and_keeps_its_placeholders() -> None:
    for _context, english, german in catalog_file("de/LC_MESSAGES/messages.po"):
        assert german, f"no German for {english!r}"
        assert german.strip() == german, english
        assert set(PLACEHOLDER.findall(english)) == set(PLACEHOLDER.findall(german)), english


def test_translator_fills_placeholders_in_both_languages() -> None:
    text = "You confirm the {amount} hold on the next page."
    assert (
        translator("en")(text, amount="€50.00") == "You confirm the €50.00 hold on the next page."
    )
    assert translator("de")(text, amount="50,00 €").startswith("Die Reservierung über 50,00 € ")
    assert translator("fr")("Pay and start") == "Pay and start"  # no catalog: English


def test_a_word_takes_its_sense_from_its_context() -> None:
    assert context_translator("de")("state", "Charging") == "Lädt"
    assert translator("de")("Charging") == "Laden"
    assert context_translator("en")("state", "Charging") == "Charging"


def test_plug_names_are_translated() -> None:
    assert translator("de")(plug("IEC_62196_T2") or "") == "Typ 2"
    assert translator("de")(plug("IEC_62196_T2_COMBO") or "") == "CCS2"
    assert translator("en")(plug("IEC_62196_T2") or "") == "Type 2"


def test_every_payment_wording_and_service_problem_has_words_in_both_languages() -> None:
    said = [v for k, v in vars(wording).items() if k.isupper() and isinstance(v, str)]
    said += list(wording._BY_CODE.values())
    for text in said:
        assert text in PROBLEMS, text
    german = catalog("de")
    for english in PROBLEMS.values():
        assert english and german.gettext(english) != english, english


def test_unknown_problems_are_not_shown_as_given() -> None:
    """?error= is part of a URL anyone can send; only known texts reach the page."""
    crafted = "Your card was declined. Call +1 555 0100 to unlock it."
    assert problem_text(crafted, "en") == "Something went wrong. Please try again."
    assert problem_text(crafted, "de") == "Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut."
    assert problem_text("Your card was declined.", "de") == "Ihre Karte wurde abgelehnt."
    assert problem_text("connector is occupied", "en") == (
        "Someone else is using this connector right now."
    )


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en-US,en;q=0.9,de;q=0.8", "en"),
        ("fr-FR,de;q=0.5", "de"),
        ("de;q=0.1,en;q=0.9", "en"),
        ("xx", "en"),
    ],
)
def test_language_from_the_browser(header: str | None, lang: str) -> None:
    assert pick_language(header) == lang
