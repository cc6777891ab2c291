"""The live session: /s/{id}, its event stream, stop, and push subscription."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.response import Redirect, Response, ServerSentEvent, ServerSentEventMessage, Template

from plugpay.domain.errors import InvalidInput
from plugpay.domain.session import FINAL_STATES as FINAL
from plugpay.domain.tariff.display import DisplayItem
from plugpay.services.live_pricing import LivePricing
from plugpay.services.ports import PushSubscription, SessionRecord
from plugpay.services.snapshots import snapshot
from plugpay.web.context import (
    Charging,
    OwnedSession,
    Pricing,
    Reservations,
    Tariffs,
    Web,
    language,
    page,
)
from plugpay.web.prices import price_display

Req = Request[Any, Any, Any]
KEEPALIVE_SECONDS = 15.0
# Tells the page (sse-close="close") that nothing more will come, so the browser does not
# reconnect to a finished session over and over.
CLOSE = ServerSentEventMessage(data="", event="close")


@get("/s/{session_id:str}")
async def session_page(
    request: Req, session: OwnedSession, tariffs: Tariffs, pricing: Pricing, web: Web
) -> Template:
    """kWh, power, elapsed time, cost so far and hold remaining; live over SSE. The
    idle fee, if the session's tariff has one, is announced before it applies."""
    place = await tariffs.place(session.charger_id, session.connector_id)
    idle = await _idle_fee(request, session, pricing)
    return page(
        request,
        "session.html",
        record=session,
        live=snapshot(session),
        session_id=session.id,
        connector_url=_connector_url(session),
        site_name=place.site_name if place else None,
        vapid_key=web.push_key,
        idle_fee=idle,
    )


async def _idle_fee(request: Req, record: SessionRecord, pricing: LivePricing) -> list[DisplayItem]:
    """The session's idle-fee prices (time plugged in without charging), as the
    connector page showed them."""
    tariff = await pricing.tariff_of(record)
    shown = price_display(tariff, language(request), record.time_zone)
    return [item for item in shown.items if item.kind == "PARKING_TIME"]


def _connector_url(record: Any) -> str:
    return f"/c/{record.charger_id}/{record.connector_id}"


def _render(
    request: Req,
    record: SessionRecord,
    live: dict[str, Any],
    *,
    actions: bool,
    idle_fee: list[DisplayItem],
) -> str:
    """One update; with ``actions`` the action bar too (swapped out of band): only when
    the state changed, so a button keeps its focus and its question between readings."""
    template = request.app.template_engine.get_template("_live.html")  # type: ignore[union-attr]
    context = page(
        request,
        "_live.html",
        live=live,
        session_id=record.id,
        connector_url=_connector_url(record),
        oob=actions,
        idle_fee=idle_fee,
    ).context
    return str(template.render(**context))


@get("/s/{session_id:str}/events")
async def session_events(request: Req, session: OwnedSession, pricing: Pricing) -> ServerSentEvent:
    """Server-Sent Events: a full snapshot per update; resumes with Last-Event-ID."""
    record, session_id = session, session.id
    idle = await _idle_fee(request, record, pricing)
    subscription = await pricing.watch(session_id)
    last_seen = request.headers.get("last-event-id")

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        try:
            current = await pricing.current(session_id)
            live = snapshot(current or record)
            if str(live["id"]) != last_seen:
                # The page may be older than this: its action bar comes along.
                yield ServerSentEventMessage(
                    data=_render(request, record, live, actions=True, idle_fee=idle),
                    event="update",
                    id=live["id"],
                )
            shown = live["state"]
            if live["state"] in FINAL:
                yield CLOSE
                return
            version = live["id"]
            iterator = subscription.__aiter__()
            while True:
                try:
                    event = await asyncio.wait_for(iterator.__anext__(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                if event["id"] <= version:
                    continue  # an older snapshot overtaken by a newer one
                version = event["id"]
                changed, shown = event["state"] != shown, event["state"]
                yield ServerSentEventMessage(
                    data=_render(request, record, event, actions=changed, idle_fee=idle),
                    event="update",
                    id=event["id"],
                )
                if event["state"] in FINAL:
                    yield CLOSE
                    return
        finally:
            await subscription.aclose()

    return ServerSentEvent(
        stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


@post("/s/{session_id:str}/stop")
async def stop(session: OwnedSession, charging: Charging) -> Redirect:
    await charging.stop(session.id)
    return Redirect(f"/s/{session.id}", status_code=303)


class _Keys(msgspec.Struct):
    p256dh: str
    auth: str


class _PushBody(msgspec.Struct):
    endpoint: str
    keys: _Keys


@post("/s/{session_id:str}/push", status_code=204)
async def subscribe_push(
    request: Req, session: OwnedSession, reservations: Reservations, web: Web
) -> Response[None]:
    """Store the browser's Web Push subscription for the receipt notification."""
    try:
        body = msgspec.json.decode(await request.body(), type=_PushBody)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"push subscription: {exc}") from None
    except msgspec.DecodeError:
        raise InvalidInput("push subscription must be JSON") from None
    await reservations.add_push(
        session.id,
        PushSubscription(body.endpoint, body.keys.p256dh, body.keys.auth),
        allow_private=web.push_allow_private,
        device_label=device_label(request.headers.get("user-agent", "")),
    )
    return Response(None, status_code=204)


def device_label(user_agent: str) -> str | None:
    """ "Chrome on Android": enough for a driver to tell their devices apart."""
    browsers = (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
                ("Safari/", "Safari"))  # fmt: skip
    systems = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"),
               ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Linux", "Linux"))  # fmt: skip
    browser = next((name for mark, name in browsers if mark in user_agent), None)
    system = next((name for mark, name in systems if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system


SESSION_ROUTES = [session_page, session_events, stop, subscribe_push]
