"""A paid session's charging token works at its own charger only, and only while the
session lasts: shown at another charger, or after the session ended, it is refused."""

from __future__ import annotations

from support.driver import PASSWORD, Phone, demo_site
from support.ocpp_client import OcppClient
from support.server import RunningServer
from support.sessions import charger, charging, record_of, run_charger, wait_for_state


async def test_a_session_token_is_refused_at_another_charger_and_after_the_session(
    server: RunningServer,
) -> None:
    await demo_site(server)
    await server.runtime.services.chargers.add_charger("CP-2", PASSWORD, connectors=1)
    sim = charger(server, meter_interval=0.2, power_kw=22.0)
    task = await run_charger(server, sim)
    other = await OcppClient.connect(server.ocpp_url, "CP-2", PASSWORD, "1.6")
    phone = Phone(server)
    try:
        session_id = await charging(server, phone)
        token = (await record_of(server, session_id)).id_tag
        chargers = server.runtime.services.chargers
        assert await chargers.authorize(token, "CP-1") == "Accepted"
        # Someone who read the token off the first charger tries it on another.
        refused = await other.call("Authorize", {"idTag": token})
        assert refused == {"idTagInfo": {"status": "Invalid"}}
        started = await other.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": token,
                "meterStart": 0,
                "timestamp": "2026-12-01T10:00:00Z",
            },
        )
        assert started["idTagInfo"] == {"status": "Invalid"}

        await phone.stop(session_id)
        await wait_for_state(server, session_id, "SETTLED")
        # The session is over: its token is no good anywhere now.
        assert await chargers.authorize(token, "CP-1") == "Expired"
        assert (await other.call("Authorize", {"idTag": token}))["idTagInfo"]["status"] == "Invalid"
    finally:
        await phone.close()
        await other.close()
        await sim.close()
        task.cancel()
