"""The QR target and the payment step: /c/{charger}/{connector}, /pay/{session}."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.response import Redirect, Response

from plugpay.domain.errors import InvalidInput
from plugpay.domain.session import Reason, SessionState
from plugpay.services.cards import SavedCardService
from plugpay.services.ports import SessionRecord
from plugpay.services.ports.cards import SavedCard
from plugpay.services.principals import Driver, Principal
from plugpay.services.reservations import TooManyStarts
from plugpay.web.context import (
    Asking,
    Cards,
    OwnedSession,
    Reservations,
    Web,
    language,
    owner_cookie,
    page,
)
from plugpay.web.prices import price_display

Req = Request[Any, Any, Any]


@get("/c/{charger_id:str}/{connector_id:int}")
async def connector_page(
    request: Req,
    charger_id: str,
    connector_id: int,
    reservations: Reservations,
    principal: Asking,
    cards: Cards,
    web: Web,
) -> Response[Any]:
    """The price before anything starts, live availability, and one action (one tap
    on the saved card for a signed-in driver); the browser whose session holds the
    connector goes back to that session."""
    own = await reservations.owned_active(charger_id, connector_id, principal)
    if own is not None:
        target = "pay" if own.state == SessionState.CREATED else "s"
        return Redirect(f"/{target}/{own.id}", status_code=303)
    view = await reservations.connector(charger_id, connector_id, principal.audiences)
    prices = price_display(view.tariff, language(request), view.place.time_zone)
    guest = (
        price_display(view.guest_tariff, language(request), view.place.time_zone)
        if view.guest_tariff is not None
        else None
    )
    # The capability cookie comes with the page, before any start: should the
    # start's answer be lost, this browser still owns what it started.
    _, cookie = owner_cookie(request, web)
    response = page(
        request,
        "connector.html",
        view=view,
        place=view.place,
        items=prices.items,
        example=prices.example,
        alt_text=prices.alt_text,
        error=request.query_params.get("error"),
        saved_card=await _one_tap_card(principal, cards),
        guest_items=guest.items if guest else None,
        changes_at=prices.changes_at,
        groups=principal.account.groups if isinstance(principal, Driver) else (),
    )
    if cookie is not None:
        response.cookies.append(cookie)
    return response


@get("/c/{charger_id:str}/{connector_id:int}/status")
async def connector_status(
    request: Req,
    charger_id: str,
    connector_id: int,
    reservations: Reservations,
    principal: Asking,
    cards: Cards,
) -> Response[Any]:
    """htmx partial: availability, polled by the connector page. Unchanged since the page
    last saw it (``?was=``): 204, which htmx leaves alone."""
    view = await reservations.connector(charger_id, connector_id)
    if request.query_params.get("was") == view.availability:
        return Response(None, status_code=204)
    return page(
        request,
        "_availability.html",
        view=view,
        place=view.place,
        saved_card=await _one_tap_card(principal, cards),
    )


@post("/c/{charger_id:str}/{connector_id:int}/start")
async def start(
    request: Req,
    charger_id: str,
    connector_id: int,
    reservations: Reservations,
    principal: Asking,
    cards: Cards,
    web: Web,
) -> Response[Any]:
    """Reserve the connector and place the hold; then the payment page. ``pay=saved``
    (a signed-in driver's one tap): the hold goes on the default saved card, and the
    charge starts at once unless the bank wants the driver to confirm."""
    owner, cookie = owner_cookie(request, web)
    address = request.client.host if request.client else ""
    form = await request.form()
    card = await _one_tap_card(principal, cards) if form.get("pay") == "saved" else None
    if form.get("pay") == "saved" and card is None:
        return Redirect(f"/c/{charger_id}/{connector_id}", status_code=303)
    try:
        record = await reservations.create(
            charger_id,
            connector_id,
            owner,
            language(request),
            address,
            account_id=principal.account_id,
            card=card,
            audiences=principal.audiences,
        )
    except TooManyStarts as exc:
        # 429 with the connector page and its message, so a person sees why.
        view = await reservations.connector(charger_id, connector_id, principal.audiences)
        prices = price_display(view.tariff, language(request), view.place.time_zone)
        response = page(
            request,
            "connector.html",
            status_code=429,
            view=view,
            place=view.place,
            items=prices.items,
            example=prices.example,
            alt_text=prices.alt_text,
            error=str(exc),
        )
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return response
    except InvalidInput as exc:
        return Redirect(f"/c/{charger_id}/{connector_id}?error={_q(str(exc))}", status_code=303)
    cookies = [cookie] if cookie else None
    if record.state != SessionState.CREATED:  # one tap, authorised: the live page
        return Redirect(f"/s/{record.id}", status_code=303, cookies=cookies)
    if card is not None:
        # The bank wants the driver (or the hold could not be read back yet): the
        # return step reads the hold and shows what is left to do.
        return Redirect(f"/pay/{record.id}/return?saved=1", status_code=303, cookies=cookies)
    return Redirect(f"/pay/{record.id}", status_code=303, cookies=cookies)


@get("/pay/{session_id:str}")
async def pay_page(
    request: Req, session: OwnedSession, reservations: Reservations
) -> Response[Any]:
    if session.state != SessionState.CREATED:
        return Redirect(f"/s/{session.id}", status_code=303)
    session = await reservations.resume_hold(session)
    gateway = reservations.payments
    return page(
        request,
        "pay.html",
        record=session,
        provider=gateway.name,
        publishable_key=gateway.publishable_key,
        client_secret=await reservations.payment_secret(session)
        if gateway.name == "stripe"
        else None,
        error=request.query_params.get("error"),
        authenticate=request.query_params.get("auth") == "1",
        saved_card=request.query_params.get("saved") == "1",
    )


@post("/pay/{session_id:str}/demo")
async def demo_pay(request: Req, session: OwnedSession, reservations: Reservations) -> Redirect:
    form = await request.form()
    record, problem = await reservations.demo_pay(session.id, str(form.get("card", "")))
    return _after_payment(record, problem)


@post("/pay/{session_id:str}/demo/authenticate")
async def demo_authenticate(
    request: Req, session: OwnedSession, reservations: Reservations
) -> Redirect:
    form = await request.form()
    record, problem = await reservations.demo_authenticate(session.id, form.get("ok") == "1")
    return _after_payment(record, problem)


@post("/pay/{session_id:str}/cancel")
async def cancel(session: OwnedSession, reservations: Reservations) -> Redirect:
    """The driver gives up before paying: the connector is free at once."""
    await reservations.cancel(session.id, Reason.DRIVER_CANCELED)
    return Redirect(f"/c/{session.charger_id}/{session.connector_id}", status_code=303)


@get("/pay/{session_id:str}/return")
async def stripe_return(
    request: Req, session: OwnedSession, reservations: Reservations
) -> Redirect:
    """Where Stripe sends the browser after confirming (3-D Secure included), and
    where a one-tap start whose hold needs more goes (``?saved=1``)."""
    record, problem = await reservations.confirm_payment(session.id)
    return _after_payment(record, problem, saved=request.query_params.get("saved") == "1")


def _after_payment(record: SessionRecord, problem: str | None, saved: bool = False) -> Redirect:
    if record.state != SessionState.CREATED:
        return Redirect(f"/s/{record.id}", status_code=303)
    if problem and "confirm" in problem:
        suffix = "&saved=1" if saved else ""
        return Redirect(f"/pay/{record.id}?auth=1{suffix}", status_code=303)
    return Redirect(f"/pay/{record.id}?error={_q(problem or '')}", status_code=303)


async def _one_tap_card(principal: Principal, cards: SavedCardService) -> SavedCard | None:
    """The card a signed-in driver starts with in one tap (their default), if any."""
    return await cards.default(principal.account_id) if isinstance(principal, Driver) else None


def _q(text: str) -> str:
    return quote(text[:200])


ROUTES = [connector_page, connector_status, start]
# The pages of one session: behind the owner guard (see web.context.owner_guard).
SESSION_ROUTES = [pay_page, demo_pay, demo_authenticate, cancel, stripe_return]
