"""The signed-in driver's saved cards: /me/cards (list, add, default, remove) and the
card-saving step /me/cards/setup/{setup_ref} (Stripe's Payment Element in setup mode,
or the demo provider's test cards). Behind the driver guard (app.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.response import Redirect, Response

from plugpay.services.cards import SetupOutcome
from plugpay.services.ports.payments import PaymentUnavailable
from plugpay.web.context import Cards, SignedIn, page

Req = Request[Any, Any, Any]
UNAVAILABLE = "Payments are unavailable right now; please try again."


@get("/me/cards", include_in_schema=False)
async def cards_page(request: Req, driver: SignedIn, cards: Cards) -> Response[Any]:
    return page(
        request,
        "cards.html",
        cards=await cards.cards(driver.account_id),
        saved=request.query_params.get("saved") == "1",
        error=request.query_params.get("error"),
    )


@post("/me/cards/new", include_in_schema=False)
async def new_card(driver: SignedIn, cards: Cards) -> Redirect:
    try:
        setup = await cards.begin_setup(driver.account)
    except PaymentUnavailable:
        return Redirect(f"/me/cards?error={quote(UNAVAILABLE)}", status_code=303)
    return Redirect(f"/me/cards/setup/{setup.ref}", status_code=303)


@get("/me/cards/setup/{setup_ref:str}", include_in_schema=False)
async def setup_page(request: Req, setup_ref: str, driver: SignedIn, cards: Cards) -> Response[Any]:
    setup = await cards.setup_of(driver.account, setup_ref)
    if setup.status == "succeeded":
        return _after(await cards.finish_setup(driver.account, setup_ref), setup_ref)
    gateway = cards.payments
    return page(
        request,
        "card_setup.html",
        setup=setup,
        provider=gateway.name,
        publishable_key=gateway.publishable_key,
        authenticate=request.query_params.get("auth") == "1",
        error=request.query_params.get("error"),
    )


@post("/me/cards/setup/{setup_ref:str}/demo", include_in_schema=False)
async def setup_demo(request: Req, setup_ref: str, driver: SignedIn, cards: Cards) -> Redirect:
    form = await request.form()
    outcome = await cards.demo_setup(driver.account, setup_ref, str(form.get("card", "")))
    return _after(outcome, setup_ref)


@post("/me/cards/setup/{setup_ref:str}/demo/authenticate", include_in_schema=False)
async def setup_demo_authenticate(
    request: Req, setup_ref: str, driver: SignedIn, cards: Cards
) -> Redirect:
    form = await request.form()
    outcome = await cards.demo_authenticate(driver.account, setup_ref, form.get("ok") == "1")
    return _after(outcome, setup_ref)


@get("/me/cards/setup/{setup_ref:str}/return", include_in_schema=False)
async def setup_return(setup_ref: str, driver: SignedIn, cards: Cards) -> Redirect:
    """Where Stripe sends the browser after confirming the setup (3-D Secure included)."""
    return _after(await cards.finish_setup(driver.account, setup_ref), setup_ref)


@post("/me/cards/{card_id:int}/default", include_in_schema=False)
async def make_default(card_id: int, driver: SignedIn, cards: Cards) -> Redirect:
    await cards.make_default(driver.account, card_id)
    return Redirect("/me/cards", status_code=303)


@post("/me/cards/{card_id:int}/remove", include_in_schema=False)
async def remove(card_id: int, driver: SignedIn, cards: Cards) -> Redirect:
    try:
        await cards.remove(driver.account, card_id)
    except PaymentUnavailable:
        return Redirect(f"/me/cards?error={quote(UNAVAILABLE)}", status_code=303)
    return Redirect("/me/cards", status_code=303)


def _after(outcome: SetupOutcome, setup_ref: str) -> Redirect:
    if outcome.card is not None:
        return Redirect("/me/cards?saved=1", status_code=303)
    if outcome.needs_action:
        return Redirect(f"/me/cards/setup/{setup_ref}?auth=1", status_code=303)
    problem = quote((outcome.problem or "")[:200])
    return Redirect(f"/me/cards/setup/{setup_ref}?error={problem}", status_code=303)


DRIVER_ROUTES: list[Any] = [
    cards_page,
    new_card,
    setup_page,
    setup_demo,
    setup_demo_authenticate,
    setup_return,
    make_default,
    remove,
]
