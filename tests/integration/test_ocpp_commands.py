"""Commands to chargers through one service API, for both OCPP versions, and what
the caller hears when the charger is gone, silent, refusing, or the payload is wrong."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import PASSWORD
from plugpay.domain.errors import ChargerOffline, CommandFailed, CommandTimeout, InvalidInput
from plugpay.services.commands import CommandService
from plugpay.sim.charger import VirtualCharger
from support.ocpp_client import OcppClient, eventually
from support.server import RunningServer

RETRIEVE = "2025-03-01T10:00:00Z"
COMPONENT = {"name": "SampledDataCtrl"}
VARIABLE = {"name": "MeterValueSampleInterval"}


@pytest.fixture
async def sim(
    request: pytest.FixtureRequest, server: RunningServer, charger_id: str
) -> AsyncIterator[VirtualCharger]:
    charger = VirtualCharger(
        charger_id, server.ocpp_url, PASSWORD, request.param, meter_interval=0.2
    )
    run = asyncio.create_task(charger.run())
    await asyncio.wait_for(charger.booted.wait(), 10)
    yield charger
    await charger.close()
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)


def commands(server: RunningServer) -> CommandService:
    return server.runtime.services.commands


async def started_transaction(sim: VirtualCharger) -> str:
    async def has_id() -> bool:
        tx = sim.connectors[1].transaction
        return tx is not None and tx.transaction_id is not None and not sim.outbox

    await eventually(has_id)
    tx = sim.connectors[1].transaction
    assert tx is not None
    return str(tx.transaction_id)


@pytest.mark.parametrize("sim", ["1.6"], indirect=True)
async def test_every_1_6_command_reaches_the_charger(
    server: RunningServer, sim: VirtualCharger, charger_id: str
) -> None:
    send = commands(server).send
    answer = await send(charger_id, "RemoteStartTransaction", {"connectorId": 1, "idTag": "T-1"})
    assert answer == {"status": "Accepted"}
    tx_id = await started_transaction(sim)
    assert await send(charger_id, "RemoteStopTransaction", {"transactionId": int(tx_id)}) == {
        "status": "Accepted"
    }
    assert await send(charger_id, "Reset", {"type": "Soft"}) == {"status": "Accepted"}
    assert await send(charger_id, "UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
    assert await send(
        charger_id, "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}
    ) == {"status": "Accepted"}
    assert await send(charger_id, "TriggerMessage", {"requestedMessage": "Heartbeat"}) == {
        "status": "Accepted"
    }
    assert await send(
        charger_id, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}
    ) == {"status": "Accepted"}
    answer = await send(
        charger_id, "GetConfiguration", {"key": ["MeterValueSampleInterval", "Nope"]}
    )
    assert answer["configurationKey"] == [
        {"key": "MeterValueSampleInterval", "readonly": False, "value": "30"}
    ]
    assert answer["unknownKey"] == ["Nope"]
    assert (
        await send(
            charger_id,
            "UpdateFirmware",
            {"location": "https://fw.example/1.1", "retrieveDate": RETRIEVE},
        )
        == {}
    )


@pytest.mark.parametrize("sim", ["2.0.1"], indirect=True)
async def test_every_2_0_1_command_reaches_the_charger(
    server: RunningServer, sim: VirtualCharger, charger_id: str
) -> None:
    send = commands(server).send
    token = {"idToken": "T-1", "type": "Central"}
    answer = await send(
        charger_id, "RequestStartTransaction", {"evseId": 1, "remoteStartId": 7, "idToken": token}
    )
    assert answer["status"] == "Accepted"
    tx_id = await started_transaction(sim)
    answer = await send(charger_id, "GetTransactionStatus", {"transactionId": tx_id})
    assert answer == {"messagesInQueue": False, "ongoingIndicator": True}
    assert (await send(charger_id, "RequestStopTransaction", {"transactionId": tx_id}))[
        "status"
    ] == "Accepted"
    assert (await send(charger_id, "Reset", {"type": "OnIdle"}))["status"] == "Accepted"
    assert (await send(charger_id, "UnlockConnector", {"evseId": 1, "connectorId": 1}))[
        "status"
    ] == "Unlocked"
    assert (await send(charger_id, "ChangeAvailability", {"operationalStatus": "Inoperative"}))[
        "status"
    ] == "Accepted"
    assert (await send(charger_id, "TriggerMessage", {"requestedMessage": "Heartbeat"}))[
        "status"
    ] == "Accepted"
    answer = await send(
        charger_id,
        "SetVariables",
        {
            "setVariableData": [
                {"attributeValue": "15", "component": COMPONENT, "variable": VARIABLE}
            ]
        },
    )
    assert [r["attributeStatus"] for r in answer["setVariableResult"]] == ["Accepted"]
    answer = await send(
        charger_id,
        "GetVariables",
        {"getVariableData": [{"component": COMPONENT, "variable": VARIABLE}]},
    )
    assert [
        (r["attributeStatus"], r.get("attributeValue")) for r in answer["getVariableResult"]
    ] == [("Accepted", "15")]
    firmware = {"location": "https://fw.example/1.1", "retrieveDateTime": RETRIEVE}
    answer = await send(charger_id, "UpdateFirmware", {"requestId": 3, "firmware": firmware})
    assert answer["status"] == "Accepted"


@pytest.mark.parametrize("sim", ["1.6", "2.0.1"], indirect=True)
async def test_the_version_neutral_helpers_and_firmware_status(
    server: RunningServer, sim: VirtualCharger, charger_id: str
) -> None:
    service = commands(server)
    assert await service.reset(charger_id) == "Accepted"
    assert await service.unlock(charger_id, 2) == "Unlocked"
    assert await service.change_availability(charger_id, 1, available=False) == "Accepted"
    assert await service.trigger(charger_id, "StatusNotification", 1) == "Accepted"
    assert await service.update_firmware(charger_id, "https://fw.example/2", RETRIEVE) == "Accepted"

    async def installed() -> bool:
        view = await server.runtime.charger_store.get(charger_id)
        return view is not None and view.firmware_status == "Installed"

    await eventually(installed)


async def test_a_charger_that_is_not_connected_is_offline(
    server: RunningServer, charger_id: str
) -> None:
    with pytest.raises(ChargerOffline):
        await commands(server).send(charger_id, "Reset", {"type": "Soft"})
    with pytest.raises(ChargerOffline):
        await commands(server).reset("NO-SUCH-CHARGER")


@pytest.fixture(params=["1.6", "2.0.1"])
async def raw(
    request: pytest.FixtureRequest, server: RunningServer, charger_id: str
) -> AsyncIterator[OcppClient]:
    client = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, request.param)
    yield client
    await client.close()


def reset_payload(version: str) -> dict[str, Any]:
    return {"type": "Soft" if version == "1.6" else "OnIdle"}


async def test_a_charger_that_never_answers_times_out(
    server: RunningServer, raw: OcppClient, charger_id: str
) -> None:
    with pytest.raises(CommandTimeout):
        await commands(server).send(charger_id, "Reset", reset_payload(raw.version), timeout=0.3)
    ignored = await raw.server_call()
    # Its late answer is ignored, and the next command works.
    await raw.answer(ignored, {"status": "Accepted"})
    command = asyncio.create_task(
        commands(server).send(charger_id, "Reset", reset_payload(raw.version))
    )
    frame = await raw.server_call()
    await raw.answer(frame, {"status": "Rejected"})
    assert await command == {"status": "Rejected"}


async def test_a_callerror_answer_fails_the_command(
    server: RunningServer, raw: OcppClient, charger_id: str
) -> None:
    command = asyncio.create_task(
        commands(server).send(charger_id, "Reset", reset_payload(raw.version))
    )
    frame = await raw.server_call()
    await raw.send_raw(json.dumps([4, frame[1], "NotSupported", "no resets here", {"why": "test"}]))
    with pytest.raises(CommandFailed) as failed:
        await command
    assert (failed.value.code, failed.value.description, failed.value.details) == (
        "NotSupported",
        "no resets here",
        {"why": "test"},
    )


async def test_a_broken_answer_fails_the_command_at_once(
    server: RunningServer, raw: OcppClient, charger_id: str
) -> None:
    service = commands(server)
    for answer in ([3, "{id}"], [3, "{id}", {"status": "Maybe"}]):
        command = asyncio.create_task(service.send(charger_id, "Reset", reset_payload(raw.version)))
        frame = await raw.server_call()
        await raw.send_raw(json.dumps(answer).replace("{id}", frame[1]))
        with pytest.raises(CommandFailed) as failed:
            await asyncio.wait_for(command, 2)
        assert failed.value.code == "FormationViolation"


async def test_an_invalid_payload_is_refused_and_nothing_is_sent(
    server: RunningServer, raw: OcppClient, charger_id: str
) -> None:
    service = commands(server)
    for action, payload in [
        ("Reset", {"type": "Sideways"}),
        ("Reset", {}),
        ("UnlockConnector", {"connectorId": "one"}),
        ("MakeCoffee", {}),
    ]:
        with pytest.raises(InvalidInput):
            await service.send(charger_id, action, payload)
    with pytest.raises(TimeoutError):
        await raw.server_call(timeout=0.3)
    log = await server.runtime.message_log.recent(charger_id, 50)
    assert [m for m in log if m.direction == "out"] == []


async def test_a_charger_that_drops_during_a_command_fails_it(
    server: RunningServer, raw: OcppClient, charger_id: str
) -> None:
    command = asyncio.create_task(
        commands(server).send(charger_id, "Reset", reset_payload(raw.version))
    )
    await raw.server_call()
    raw.ws.transport.abort()
    with pytest.raises((CommandFailed, ChargerOffline)):
        await asyncio.wait_for(command, 5)
    with pytest.raises(ChargerOffline):
        await commands(server).send(charger_id, "Reset", reset_payload(raw.version))


class CommandingListener:
    """Sends the charger a command while its MeterValues is being handled."""

    def __init__(self, service: CommandService, charger_id: str) -> None:
        self.service = service
        self.charger_id = charger_id
        self.answers: list[str] = []

    async def on_readings(self, *_: Any) -> None:
        self.answers.append(await self.service.trigger(self.charger_id, "StatusNotification"))


async def test_a_handler_gets_the_answer_to_a_command_it_awaits(
    server: RunningServer, charger_id: str
) -> None:
    # OCPP-J §4.1.1: CALLs from both sides can cross. The charger's answer must be
    # read while its own StartTransaction is still being handled.
    transactions = server.runtime.services.transactions
    listener = CommandingListener(commands(server), charger_id)
    saved, transactions.listener = transactions.listener, listener
    client = await OcppClient.connect(
        server.ocpp_url,
        charger_id,
        PASSWORD,
        "1.6",
        auto_answer=lambda action, _: {"status": "Accepted"},
    )
    try:
        start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": RETRIEVE}
        started = await client.call("StartTransaction", start)
        reading = {
            "connectorId": 1,
            "transactionId": started["transactionId"],
            "meterValue": [{"timestamp": RETRIEVE, "sampledValue": [{"value": "10"}]}],
        }
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await client.call("MeterValues", reading) == {}
        assert loop.time() - began < 2
        assert listener.answers == ["Accepted"]
    finally:
        transactions.listener = saved
        await client.close()


async def test_an_idle_charger_holds_no_worker_and_is_served_when_it_speaks_again(
    server: RunningServer, charger_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plugpay.ocpp.connection as connection

    monkeypatch.setattr(connection, "WORKER_IDLE_SECONDS", 0.1)
    client = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, "1.6")
    try:
        assert await client.heartbeat_works()
        conn = server.runtime.registry.get(charger_id)
        assert conn is not None

        async def worker_gone() -> bool:
            return conn._worker is None

        await eventually(worker_gone, 3)
        for _ in range(3):
            assert await client.heartbeat_works()
    finally:
        await client.close()
