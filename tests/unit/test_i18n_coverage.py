"""Every text the driver's pages pass through _() has a German entry, with the same
placeholders; and every problem the services report has words in both languages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from plugpay.payments import wording
from plugpay.web.i18n import GERMAN, PROBLEMS, pick_language, problem_text, translator

WEB = Path(__file__).resolve().parents[2] / "backend" / "plugpay" / "web"
TEMPLATES = WEB / "templates"
# _("…") or _('…') in a template, with the first argument a plain string literal.
CALL = re.compile(r"""(?<![\w.])_\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def template_texts() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(TEMPLATES.glob("*.html")):
        for match in CALL.finditer(path.read_text(encoding="utf-8")):
            text = ast.literal_eval(match.group(1))
            found.setdefault(text, []).append(path.name)
    return found


def python_texts() -> dict[str, list[str]]:
    """_("…") calls in the web package's Python (error pages and the like)."""
    found: dict[str, list[str]] = {}
    for path in sorted(WEB.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.setdefault(node.args[0].value, []).append(path.name)
    return found


def test_the_templates_are_found_and_use_many_texts() -> None:
    texts = template_texts()
    assert len(texts) > 80
    assert "Pay and start" in texts and "Charging complete" in texts


@pytest.mark.parametrize("source", ["templates", "python"])
def test_every_text_has_a_german_entry(source: str) -> None:
    texts = template_texts() if source == "templates" else python_texts()
    missing = {text: where for text, where in texts.items() if text not in GERMAN}
    assert missing == {}


def test_german_keeps_the_placeholders() -> None:
    for english, german in GERMAN.items():
        assert set(PLACEHOLDER.findall(english)) == set(PLACEHOLDER.findall(german)), english
        assert german.strip() == german and german, english


def test_translator_fills_placeholders_in_both_languages() -> None:
    text = "You confirm the {amount} hold on the next page."
    assert (
        translator("en")(text, amount="€50.00") == "You confirm the €50.00 hold on the next page."
    )
    assert translator("de")(text, amount="50,00 €").startswith("Die Reservierung über 50,00 € ")


def test_every_payment_wording_and_service_problem_has_words_in_both_languages() -> None:
    said = [v for k, v in vars(wording).items() if k.isupper() and isinstance(v, str)]
    said += list(wording._BY_CODE.values())
    for text in said:
        assert text in PROBLEMS, text
    for english, german in PROBLEMS.values():
        assert english and german and english != german


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
