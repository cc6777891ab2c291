"""An independent charger (npm ocpp-rpc in strictMode, which checks every message
both ways against the official schemas) runs a whole session against the server."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest

from conftest import PASSWORD
from plugpay.store import tables as t
from support.ocpp_client import rows, tag_status
from support.server import RunningServer

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="the ocpp-rpc peer needs Node.js and npm on PATH",
)

from peers.ocpp_rpc import run_ocpp_rpc_charger  # noqa: E402


def energy(value: Any, unit: str, context: str, version: str) -> list[dict[str, Any]]:
    sampled: dict[str, Any] = {"value": value, "context": context}
    if version == "1.6":
        sampled.update(unit=unit, measurand="Energy.Active.Import.Register")
    else:
        sampled.update(unitOfMeasure={"unit": unit}, measurand="Energy.Active.Import.Register")
    return [{"timestamp": "$now", "sampledValue": [sampled]}]


def scenario_16() -> list[dict[str, Any]]:
    tx = "$4.transactionId"
    return [
        {
            "call": "BootNotification",
            "payload": {"chargePointVendor": "Peer", "chargePointModel": "RPC"},
        },
        {"call": "Heartbeat", "payload": {}},
        {
            "call": "StatusNotification",
            "payload": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        },
        {"call": "Authorize", "payload": {"idTag": "TAG-1"}},
        {
            "call": "StartTransaction",
            "payload": {"connectorId": 1, "idTag": "TAG-1", "meterStart": 100, "timestamp": "$now"},
        },
        {
            "call": "MeterValues",
            "payload": {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": energy("1.5", "kWh", "Sample.Periodic", "1.6"),
            },
        },
        {"sleep_s": 0.01},
        {
            "call": "StopTransaction",
            "payload": {
                "transactionId": tx,
                "meterStop": 2500,
                "timestamp": "$now",
                "idTag": "TAG-1",
                "transactionData": energy("2500", "Wh", "Transaction.End", "1.6"),
            },
        },
        {
            "call": "DataTransfer",
            "payload": {"vendorId": "com.example", "messageId": "hello", "data": "x"},
        },
        {"call": "FirmwareStatusNotification", "payload": {"status": "Installed"}},
        {"call": "DiagnosticsStatusNotification", "payload": {"status": "Idle"}},
        {
            "call": "SecurityEventNotification",
            "payload": {"type": "StartupOfTheDevice", "timestamp": "$now"},
        },
        {
            "expect_call": "RemoteStartTransaction",
            "respond": {"status": "Accepted"},
            "timeout_s": 10,
        },
    ]


def scenario_201() -> list[dict[str, Any]]:
    tx = {"transactionId": "rpc-tx-1"}
    token = {"idToken": "TAG-1", "type": "ISO14443"}
    return [
        {
            "call": "BootNotification",
            "payload": {
                "chargingStation": {"model": "RPC", "vendorName": "Peer"},
                "reason": "PowerUp",
            },
        },
        {"call": "Heartbeat", "payload": {}},
        {
            "call": "StatusNotification",
            "payload": {
                "timestamp": "$now",
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            },
        },
        {"call": "Authorize", "payload": {"idToken": token}},
        {
            "call": "TransactionEvent",
            "payload": {
                "eventType": "Started",
                "timestamp": "$now",
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {**tx, "chargingState": "Charging"},
                "evse": {"id": 1, "connectorId": 1},
                "idToken": token,
                "meterValue": energy(0.1, "kWh", "Transaction.Begin", "2.0.1"),
            },
        },
        {"sleep_s": 0.01},
        {
            "call": "TransactionEvent",
            "payload": {
                "eventType": "Updated",
                "timestamp": "$now",
                "triggerReason": "MeterValuePeriodic",
                "seqNo": 1,
                "transactionInfo": tx,
                "meterValue": energy(1500, "Wh", "Sample.Periodic", "2.0.1"),
            },
        },
        {"sleep_s": 0.01},
        {
            "call": "TransactionEvent",
            "payload": {
                "eventType": "Ended",
                "timestamp": "$now",
                "triggerReason": "StopAuthorized",
                "seqNo": 2,
                "transactionInfo": {**tx, "stoppedReason": "Local"},
                "idToken": token,
                "meterValue": energy(2.5, "kWh", "Transaction.End", "2.0.1"),
            },
        },
        {
            "call": "MeterValues",
            "payload": {"evseId": 0, "meterValue": energy(123, "kWh", "Sample.Clock", "2.0.1")},
        },
        {"call": "DataTransfer", "payload": {"vendorId": "com.example", "messageId": "hello"}},
        {"call": "FirmwareStatusNotification", "payload": {"status": "Installed", "requestId": 1}},
        {
            "call": "SecurityEventNotification",
            "payload": {"type": "StartupOfTheDevice", "timestamp": "$now"},
        },
        {
            "call": "NotifyEvent",
            "payload": {
                "generatedAt": "$now",
                "seqNo": 0,
                "eventData": [
                    {
                        "eventId": 1,
                        "timestamp": "$now",
                        "trigger": "Delta",
                        "actualValue": "Available",
                        "eventNotificationType": "HardWiredNotification",
                        "component": {"name": "Connector"},
                        "variable": {"name": "AvailabilityState"},
                    }
                ],
            },
        },
        {
            "expect_call": "RequestStartTransaction",
            "respond": {"status": "Accepted"},
            "timeout_s": 10,
        },
    ]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_an_independent_strict_charger_runs_a_whole_session(
    server: RunningServer, charger_id: str, version: str
) -> None:
    await server.runtime.services.chargers.add_id_tag("TAG-1")
    steps = scenario_16() if version == "1.6" else scenario_201()
    peer = asyncio.create_task(
        run_ocpp_rpc_charger(server.ocpp_url, charger_id, PASSWORD, version, steps, timeout=60)
    )
    # Start a charge remotely as soon as the charger is here; the peer answers
    # when its scenario reaches the expect_call step.
    while server.runtime.registry.get(charger_id) is None and not peer.done():
        await asyncio.sleep(0.02)
    assert await server.runtime.services.commands.remote_start(charger_id, 1, "TAG-1") is True
    output = await peer

    assert output["connected"] and output["protocol"] == f"ocpp{version}"
    assert output["schema_violations"] == []
    assert output["bad_messages"] == []
    failed = [s for s in output["steps"] if not s["ok"]]
    assert failed == []
    results = {s["call"]: s["result"] for s in output["steps"] if "call" in s}
    assert results["BootNotification"]["status"] == "Accepted"
    info = results["Authorize"]["idTagInfo" if version == "1.6" else "idTokenInfo"]
    assert tag_status(info) == {"status": "Accepted"}
    assert results["DataTransfer"] == {"status": "UnknownVendorId"}
    starts = ("RemoteStartTransaction", "RequestStartTransaction")
    [remote] = [c for c in output["server_calls"] if c["action"] in starts]
    assert remote["response"] == {"status": "Accepted"}
    assert (
        remote["params"].get("idTag", remote["params"].get("idToken", {}).get("idToken")) == "TAG-1"
    )

    [tx] = await rows(server.runtime, t.transactions)
    assert tx["status"] == "ended" and tx["meter_stop_wh"] == 2500
    assert tx["meter_start_wh"] == 100
    readings = await rows(
        server.runtime, t.meter_readings, t.meter_readings.c.transaction_id == tx["id"]
    )
    assert sorted(r["energy_wh"] for r in readings) == [100, 1500, 2500]
    view = await server.runtime.charger_store.get(charger_id)
    assert view is not None and view.vendor == "Peer" and view.firmware_status == "Installed"
    assert view.connectors[0].status == "Available"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_local_list_a_strict_charger_gets_is_schema_valid(
    server: RunningServer, charger_id: str, version: str
) -> None:
    """A charger that boots with list version 0 gets the full list of cards, in a
    SendLocalList the official schema accepts."""
    await server.runtime.services.chargers.add_id_tag("CARD-1")
    boot = (
        {"chargePointVendor": "Peer", "chargePointModel": "RPC"}
        if version == "1.6"
        else {"chargingStation": {"model": "RPC", "vendorName": "Peer"}, "reason": "PowerUp"}
    )
    steps: list[dict[str, Any]] = [
        {"call": "BootNotification", "payload": boot},
        {
            "expect_call": "GetLocalListVersion",
            "respond": {"listVersion": 0} if version == "1.6" else {"versionNumber": 0},
            "timeout_s": 10,
        },
        {"expect_call": "SendLocalList", "respond": {"status": "Accepted"}, "timeout_s": 10},
    ]
    output = await run_ocpp_rpc_charger(
        server.ocpp_url, charger_id, PASSWORD, version, steps, timeout=40
    )
    assert output["schema_violations"] == [] and output["bad_messages"] == []
    assert [s for s in output["steps"] if not s["ok"]] == []
    [sent] = [c for c in output["server_calls"] if c["action"] == "SendLocalList"]
    params = sent["params"]
    assert params["updateType"] == "Full"
    assert params["listVersion" if version == "1.6" else "versionNumber"] == 1
    [entry] = params["localAuthorizationList"]
    if version == "1.6":
        assert entry["idTag"] == "CARD-1" and entry["idTagInfo"]["status"] == "Accepted"
    else:
        assert entry["idToken"]["idToken"] == "CARD-1"
        assert entry["idTokenInfo"]["status"] == "Accepted"
