"""The live session: /s/{id}, its event stream, stop, and push subscription."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.response import Redirect, Response, ServerSentEvent, ServerSentEventMessage, Template

from plugpay.domain.errors import InvalidInput
from plugpay.domain.session import TERMINAL_STATES, SessionState
from plugpay.services.ports import PushSubscription
from plugpay.services.sessions import snapshot
from plugpay.web.context import owner_of, page, services, settings

Req = Request[Any, Any, Any]
KEEPALIVE_SECONDS = 15.0
FINAL = frozenset({*TERMINAL_STATES, SessionState.NEEDS_REVIEW})
# Tells the page (sse-close="close") that nothing more will come, so the browser does not
# reconnect to a finished session over and over.
CLOSE = ServerSentEventMessage(data="", event="close")


@get("/s/{session_id:str}")
async def session_page(request: Req, session_id: str) -> Template:
    """kWh, power, elapsed time, cost so far and hold remaining; live over SSE."""
    svc = services(request)
    record = await svc.sessions.get_owned(session_id, owner_of(request))
    place = await svc.tariffs.store.place(record.charger_id, record.connector_id)
    return page(
        request,
        "session.html",
        record=record,
        live=snapshot(record),
        session_id=session_id,
        connector_url=_connector_url(record),
        site_name=place.site_name if place else None,
        vapid_key=svc.push_key,
    )


def _connector_url(record: Any) -> str:
    return f"/c/{record.charger_id}/{record.connector_id}"


def _render(request: Req, record: Any, live: dict[str, Any]) -> str:
    template = request.app.template_engine.get_template("_live.html")  # type: ignore[union-attr]
    context = page(
        request,
        "_live.html",
        live=live,
        session_id=record.id,
        connector_url=_connector_url(record),
        oob=True,
    ).context
    return str(template.render(**context))


@get("/s/{session_id:str}/events")
async def session_events(request: Req, session_id: str) -> ServerSentEvent:
    """Server-Sent Events: a full snapshot per update; resumes with Last-Event-ID."""
    sessions = services(request).sessions
    record = await sessions.get_owned(session_id, owner_of(request))
    subscription = await sessions.live.subscribe(session_id)
    last_seen = request.headers.get("last-event-id")

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        try:
            current = await sessions.store.get(session_id)
            live = snapshot(current or record)
            if str(live["id"]) != last_seen:
                yield ServerSentEventMessage(
                    data=_render(request, record, live), event="update", id=live["id"]
                )
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
                yield ServerSentEventMessage(
                    data=_render(request, record, event), event="update", id=event["id"]
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
async def stop(request: Req, session_id: str) -> Redirect:
    sessions = services(request).sessions
    await sessions.get_owned(session_id, owner_of(request))
    await sessions.stop(session_id)
    return Redirect(f"/s/{session_id}", status_code=303)


class _Keys(msgspec.Struct):
    p256dh: str
    auth: str


class _PushBody(msgspec.Struct):
    endpoint: str
    keys: _Keys


@post("/s/{session_id:str}/push", status_code=204)
async def subscribe_push(request: Req, session_id: str) -> Response[None]:
    """Store the browser's Web Push subscription for the receipt notification."""
    sessions = services(request).sessions
    await sessions.get_owned(session_id, owner_of(request))
    try:
        body = msgspec.json.decode(await request.body(), type=_PushBody)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"push subscription: {exc}") from None
    except msgspec.DecodeError:
        raise InvalidInput("push subscription must be JSON") from None
    await sessions.add_push(
        session_id,
        PushSubscription(body.endpoint, body.keys.p256dh, body.keys.auth),
        require_https=settings(request).production,
    )
    return Response(None, status_code=204)


ROUTES = [session_page, session_events, stop, subscribe_push]
