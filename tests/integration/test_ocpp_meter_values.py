"""Meter values end to end: normalised once, implausible registers kept but flagged
and never used as the transaction's energy, unreadable ones answered and reviewed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import PASSWORD
from plugpay.domain.metering import FLAG_BACKWARDS, FLAG_JUMP
from plugpay.store import tables as t
from support.ocpp_client import OcppClient, rows
from support.server import RunningServer

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def iso(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def kwh(minutes: float, value: str, **extra: Any) -> dict[str, Any]:
    return {"timestamp": iso(minutes), "sampledValue": [{"value": value, "unit": "kWh", **extra}]}


async def test_implausible_registers_are_flagged_and_never_the_transactions_energy(
    server: RunningServer, charger_id: str
) -> None:
    cp = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, "1.6")
    try:
        start = {"connectorId": 1, "idTag": "RFID", "meterStart": 1000, "timestamp": iso(0)}
        tx_id = (await cp.call("StartTransaction", start))["transactionId"]
        for minute, value in [(1, "2.5"), (2, "2.0"), (3, "900"), (4, "3.0")]:
            message = {"connectorId": 1, "transactionId": tx_id, "meterValue": [kwh(minute, value)]}
            assert await cp.call("MeterValues", message) == {}
        [tx] = await rows(server.runtime, t.transactions)
        assert tx["last_energy_wh"] == 3000
        # The stop reading goes backwards too: kept, and the transaction needs a look.
        stop = {"transactionId": tx_id, "meterStop": 2900, "timestamp": iso(5)}
        await cp.call("StopTransaction", stop)
    finally:
        await cp.close()
    readings = await rows(server.runtime, t.meter_readings)
    assert [(r["energy_wh"], r["flag"]) for r in sorted(readings, key=lambda r: r["at"])] == [
        (1000, ""),
        (2500, ""),
        (2000, FLAG_BACKWARDS),
        (900000, FLAG_JUMP),
        (3000, ""),
        (2900, FLAG_BACKWARDS),
    ]
    [tx] = await rows(server.runtime, t.transactions)
    assert tx["last_energy_wh"] == 3000 and tx["meter_stop_wh"] == 2900
    assert tx["needs_review"] and "register_backwards" in tx["review_reason"]


async def test_2_0_1_values_in_any_layout_are_one_reading_per_instant(
    server: RunningServer, charger_id: str
) -> None:
    cp = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, "2.0.1")
    tx = {"transactionId": "tx-9"}
    begin = [{"value": 1.0, "context": "Transaction.Begin", "unitOfMeasure": {"unit": "kWh"}}]
    try:
        await cp.call(
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": iso(0),
                "triggerReason": "CablePluggedIn",
                "seqNo": 0,
                "transactionInfo": tx,
                "evse": {"id": 2},
                "meterValue": [{"timestamp": iso(0), "sampledValue": begin}],
            },
        )
        phases = [
            {"value": v, "phase": p, "unitOfMeasure": {"unit": "Wh", "multiplier": 1}}
            for v, p in ((100, "L1"), (110, "L2"), (120, "L3"))
        ]
        power = [
            {"value": 7.4, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}}
        ]
        unreadable = [{"value": 1, "unitOfMeasure": {"unit": "varh"}}]
        # One instant split over two messages (OCPP 2.0.1 E11.FR.06), then a repeat.
        for seq, sampled in [(1, phases), (2, power + unreadable), (2, power + unreadable)]:
            answer = await cp.call(
                "TransactionEvent",
                {
                    "eventType": "Updated",
                    "timestamp": iso(1),
                    "triggerReason": "MeterValuePeriodic",
                    "seqNo": seq,
                    "transactionInfo": tx,
                    "meterValue": [{"timestamp": iso(1), "sampledValue": sampled}],
                },
            )
            assert answer == {}
    finally:
        await cp.close()
    readings = await rows(server.runtime, t.meter_readings)
    assert sorted((r["energy_wh"], r["power_w"], r["connector_id"]) for r in readings) == [
        (1000, None, 2),
        (3300, 7400, 2),
    ]
    [tx_row] = await rows(server.runtime, t.transactions)
    assert tx_row["last_energy_wh"] == 3300 and tx_row["meter_start_wh"] == 1000
    [review] = await rows(server.runtime, t.review_items)
    assert review["kind"] == "unreadable_meter_value" and "varh" in review["detail"]["problems"][0]
