"""What operations and integrators call: health, readiness, metrics, OpenAPI, the OCPP URL over HTTP."""

from __future__ import annotations

import httpx

from plugpay.store.database import create_engine
from support.driver import PASSWORD, running_sim, stop_sim
from support.server import RunningServer


async def test_health_readiness_metrics_and_schema(server: RunningServer) -> None:
    await server.runtime.services.chargers.add_charger("CP-1", PASSWORD, connectors=2)
    sim, task = await running_sim(server, "1.6", meter_interval=1.0)
    try:
        async with httpx.AsyncClient(base_url=server.http_url) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/readyz")).status_code == 200
            metrics = (await client.get("/metrics")).text
            assert "plugpay_chargers_connected 1.0" in metrics
            assert (
                'plugpay_ocpp_messages_total{action="BootNotification",outcome="ok",version="1.6"}'
                in metrics
            )
            assert "plugpay_ocpp_handler_seconds_bucket" in metrics
            schema = (await client.get("/schema/openapi.json")).json()
            assert schema["info"]["title"] == "plugpay"
            plain = await client.get("/ocpp/CP-1")
            assert plain.status_code == 426 and plain.headers["upgrade"] == "websocket"
    finally:
        await stop_sim(sim, task)


async def test_readiness_fails_when_the_database_is_gone(server: RunningServer) -> None:
    # Swap in a real engine whose server does not exist (nothing listens on port 1).
    await server.runtime.db.dispose()
    server.runtime.db.engine = create_engine("postgresql+asyncpg://plugpay@127.0.0.1:1/gone")
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert (await client.get("/healthz")).status_code == 200
