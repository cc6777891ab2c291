"""The QR target and the payment step: /c/{charger}/{connector}, /pay/{session}."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Response, Template

from plugpay.domain.errors import InvalidInput
from plugpay.domain.session import SessionState
from plugpay.web.context import language, owner_cookie, owner_of, page, services
from plugpay.web.prices import price_display

Req = Request[Any, Any, Any]


@get("/c/{charger_id:str}/{connector_id:int}")
async def connector_page(request: Req, charger_id: str, connector_id: int) -> Template:
    """The price before anything starts, live availability, and one action."""
    view = await services(request).sessions.connector(charger_id, connector_id)
    prices = price_display(view.tariff, language(request), view.place.time_zone)
    return page(
        request,
        "connector.html",
        view=view,
        place=view.place,
        items=prices.items,
        example=prices.example,
        alt_text=prices.alt_text,
        error=request.query_params.get("error"),
    )


@get("/c/{charger_id:str}/{connector_id:int}/status")
async def connector_status(request: Req, charger_id: str, connector_id: int) -> Response[Any]:
    """htmx partial: availability, polled by the connector page. Unchanged since the page
    last saw it (``?was=``): 204, which htmx leaves alone."""
    view = await services(request).sessions.connector(charger_id, connector_id)
    if request.query_params.get("was") == view.availability:
        return Response(None, status_code=204)
    return page(request, "_availability.html", view=view, place=view.place)


@post("/c/{charger_id:str}/{connector_id:int}/start")
async def start(request: Req, charger_id: str, connector_id: int) -> Response[Any]:
    """Reserve the connector and place the hold; then the payment page."""
    owner, cookie = owner_cookie(request)
    try:
        record = await services(request).sessions.create(
            charger_id, connector_id, owner, language(request)
        )
    except InvalidInput as exc:
        return Redirect(f"/c/{charger_id}/{connector_id}?error={_q(str(exc))}", status_code=303)
    return Redirect(f"/pay/{record.id}", status_code=303, cookies=[cookie] if cookie else None)


@get("/pay/{session_id:str}")
async def pay_page(request: Req, session_id: str) -> Response[Any]:
    sessions = services(request).sessions
    record = await sessions.get_owned(session_id, owner_of(request))
    if record.state != SessionState.CREATED:
        return Redirect(f"/s/{session_id}", status_code=303)
    gateway = sessions.payments
    return page(
        request,
        "pay.html",
        record=record,
        provider=gateway.name,
        publishable_key=gateway.publishable_key,
        client_secret=await sessions.payment_secret(record) if gateway.name == "stripe" else None,
        error=request.query_params.get("error"),
        authenticate=request.query_params.get("auth") == "1",
    )


@post("/pay/{session_id:str}/demo")
async def demo_pay(request: Req, session_id: str) -> Redirect:
    sessions = services(request).sessions
    await sessions.get_owned(session_id, owner_of(request))
    form = await request.form()
    record, problem = await sessions.demo_pay(session_id, str(form.get("card", "")))
    return _after_payment(session_id, record.state, problem)


@post("/pay/{session_id:str}/demo/authenticate")
async def demo_authenticate(request: Req, session_id: str) -> Redirect:
    sessions = services(request).sessions
    await sessions.get_owned(session_id, owner_of(request))
    form = await request.form()
    record, problem = await sessions.demo_authenticate(session_id, form.get("ok") == "1")
    return _after_payment(session_id, record.state, problem)


@get("/pay/{session_id:str}/return")
async def stripe_return(request: Req, session_id: str) -> Redirect:
    """Where Stripe sends the browser after confirming (3-D Secure included)."""
    sessions = services(request).sessions
    await sessions.get_owned(session_id, owner_of(request))
    record, problem = await sessions.confirm_payment(session_id)
    return _after_payment(session_id, record.state, problem)


def _after_payment(session_id: str, state: str, problem: str | None) -> Redirect:
    if state != SessionState.CREATED:
        return Redirect(f"/s/{session_id}", status_code=303)
    if problem and "confirm" in problem:
        return Redirect(f"/pay/{session_id}?auth=1", status_code=303)
    return Redirect(f"/pay/{session_id}?error={_q(problem or '')}", status_code=303)


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:200])


ROUTES = [
    connector_page,
    connector_status,
    start,
    pay_page,
    demo_pay,
    demo_authenticate,
    stripe_return,
]
