"""The idle fee is announced before it applies: the live page of a session whose
tariff has one says what it costs and when; while the car draws no power, a
warning says it applies now. A tariff without one says nothing of it."""

from __future__ import annotations

from pathlib import Path

from support.driver import Phone, demo_site, eventually, running_sim, stop_sim
from support.server import RunningServer
from support.sessions import record_of, session_id_of

EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "examples"


async def _charging(server: RunningServer, phone: Phone, connector: int) -> str:
    session_id = session_id_of(await phone.start("CP-1", connector))
    assert (await phone.pay(session_id)).headers["location"] == f"/s/{session_id}"

    async def metered() -> bool:
        record = await record_of(server, session_id)
        return record.state == "CHARGING" and record.power_w is not None

    await eventually(metered)
    return session_id


async def test_the_live_page_announces_the_idle_fee(server: RunningServer) -> None:
    await demo_site(server)  # time of use, with an idle fee 07:00-21:00
    tariffs = server.runtime.services.tariffs
    await tariffs.import_tariff((EXAMPLES / "simple-per-kwh.json").read_bytes())
    await tariffs.assign("SIMPLE-KWH", charger_id="CP-1", connector_id=2)
    sim, task = await running_sim(server, power_kw=0.0, meter_interval=0.2)
    phone = Phone(server)
    try:
        with_fee = await _charging(server, phone, 1)
        page = (await phone.client.get(f"/s/{with_fee}")).text
        assert 'id="idle-fee"' in page and "€0.119 / min" in page and "07:00\u201321:00" in page
        assert 'id="idle-now"' in page  # the car draws no power: it applies now

        without = await _charging(server, phone, 2)
        plain = (await phone.client.get(f"/s/{without}")).text
        assert 'id="idle-fee"' not in plain and 'id="idle-now"' not in plain
    finally:
        await phone.close()
        await stop_sim(sim, task)
