"""/metrics is not public: with PLUGPAY_METRICS_TOKEN it answers its bearer only (401
otherwise); without, it answers loopback clients and looks like any unknown path (404)
to everyone else."""

from __future__ import annotations

import httpx

from conftest import make_settings
from support.server import RunningServer, start_server

TOKEN = "metrics-token-0123456789abcdef"
# uvicorn trusts X-Forwarded-For from loopback peers only (a proxy on this
# machine): a request the local proxy forwards for a remote client.
FROM_ELSEWHERE = {"X-Forwarded-For": "203.0.113.7"}


async def test_without_a_token_metrics_answer_loopback_clients_only(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        local = await client.get("/metrics")
        assert local.status_code == 200
        assert "plugpay_ocpp_messages_total" in local.text or "# HELP" in local.text

        remote = await client.get("/metrics", headers=FROM_ELSEWHERE)
        unknown = await client.get("/nothing-here", headers=FROM_ELSEWHERE)
        assert remote.status_code == unknown.status_code == 404
        assert remote.headers["content-type"] == unknown.headers["content-type"]
        assert "# HELP" not in remote.text and "metrics" not in remote.text.lower()
        # A bearer token opens nothing when none is configured.
        guessed = await client.get(
            "/metrics", headers={**FROM_ELSEWHERE, "Authorization": f"Bearer {TOKEN}"}
        )
        assert guessed.status_code == 404


async def test_with_a_token_metrics_need_the_bearer_token_from_everywhere(
    database_url: str,
) -> None:
    server = await start_server(make_settings(database_url, metrics_token=TOKEN))
    try:
        async with httpx.AsyncClient(base_url=server.http_url) as client:
            for headers in (
                {},  # loopback is no exception once a token is set
                {"Authorization": "Bearer wrong-token-0123456789abcdef"},
                {"Authorization": f"Bearer {TOKEN[:-1]}"},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": TOKEN},
            ):
                refused = await client.get("/metrics", headers=headers)
                assert refused.status_code == 401, headers
                assert refused.headers["www-authenticate"].startswith("Bearer"), headers
                assert "# HELP" not in refused.text

            for headers in ({}, FROM_ELSEWHERE):
                allowed = await client.get(
                    "/metrics", headers={**headers, "Authorization": f"Bearer {TOKEN}"}
                )
                assert allowed.status_code == 200
                assert "# HELP" in allowed.text
                assert allowed.headers["content-type"].startswith("text/plain")
    finally:
        await server.stop()
