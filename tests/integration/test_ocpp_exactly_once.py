"""Every transaction message is applied exactly once, whatever the charger repeats,
and late (offline) messages land at the charger's own times."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import PASSWORD
from plugpay.store import tables as t
from support.ocpp_client import OcppClient, rows, tag_status
from support.server import RunningServer

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def iso(at: datetime, millis: bool = False) -> str:
    return at.isoformat(timespec="milliseconds" if millis else "seconds").replace("+00:00", "Z")


def energy(at: datetime, wh: int, context: str = "Sample.Periodic") -> dict[str, Any]:
    return {
        "timestamp": iso(at),
        "sampledValue": [{"value": str(wh), "context": context, "unit": "Wh"}],
    }


def energy201(at: datetime, wh: float, context: str = "Sample.Periodic") -> dict[str, Any]:
    return {
        "timestamp": iso(at),
        "sampledValue": [
            {
                "value": wh,
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "kWh", "multiplier": -3},  # = Wh
            }
        ],
    }


async def snapshot(server: RunningServer) -> dict[str, list[dict[str, Any]]]:
    return {
        table.name: await rows(server.runtime, table)
        for table in (t.transactions, t.meter_readings, t.transaction_messages, t.review_items)
    }


@pytest.fixture
async def cp16(server: RunningServer, charger_id: str) -> AsyncIterator[OcppClient]:
    await server.runtime.services.chargers.add_id_tag("TAG-1")
    client = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, "1.6")
    yield client
    await client.close()


@pytest.fixture
async def cp201(server: RunningServer, charger_id: str) -> AsyncIterator[OcppClient]:
    await server.runtime.services.chargers.add_id_tag("TAG-1")
    client = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, "2.0.1")
    yield client
    await client.close()


# -- OCPP 1.6 ----------------------------------------------------------------
def start16(at: datetime = T0, meter: int = 1000, millis: bool = False) -> dict[str, Any]:
    return {"connectorId": 1, "idTag": "TAG-1", "meterStart": meter, "timestamp": iso(at, millis)}


async def test_repeated_start_transaction_returns_the_same_id_and_one_row(
    server: RunningServer, cp16: OcppClient
) -> None:
    first = await cp16.call("StartTransaction", start16())
    again = await cp16.call("StartTransaction", start16())
    # The same instant written differently is the same StartTransaction.
    reworded = await cp16.call("StartTransaction", start16(millis=True))
    assert tag_status(first["idTagInfo"]) == {"status": "Accepted"}
    assert first["transactionId"] == again["transactionId"] == reworded["transactionId"]
    [tx] = await rows(server.runtime, t.transactions)
    assert tx["id"] == first["transactionId"] and tx["meter_start_wh"] == 1000
    assert len(await rows(server.runtime, t.transaction_messages)) == 1
    assert len(await rows(server.runtime, t.meter_readings)) == 1  # Transaction.Begin

    other = await cp16.call("StartTransaction", start16(T0 + timedelta(hours=1), 5000))
    assert other["transactionId"] != first["transactionId"]


async def test_repeated_stop_transaction_is_billed_once(
    server: RunningServer, cp16: OcppClient
) -> None:
    tx_id = (await cp16.call("StartTransaction", start16()))["transactionId"]
    await cp16.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx_id,
            "meterValue": [energy(T0 + timedelta(minutes=5), 3000)],
        },
    )
    stop = {
        "transactionId": tx_id,
        "idTag": "TAG-1",
        "meterStop": 6000,
        "timestamp": iso(T0 + timedelta(minutes=10)),
        "reason": "Local",
        "transactionData": [energy(T0 + timedelta(minutes=8), 5000)],
    }
    answer = await cp16.call("StopTransaction", stop)
    assert tag_status(answer["idTagInfo"]) == {"status": "Accepted"}
    before = await snapshot(server)
    [tx] = before["transactions"]
    assert tx["status"] == "ended" and tx["meter_stop_wh"] == 6000
    assert sorted(r["energy_wh"] for r in before["meter_readings"]) == [1000, 3000, 5000, 6000]

    assert await cp16.call("StopTransaction", stop) == answer
    # A retry that differs (the charger re-read its meter) changes nothing either.
    changed = {**stop, "meterStop": 9999, "transactionData": [energy(T0, 1)]}
    assert await cp16.call("StopTransaction", changed) == answer
    assert await snapshot(server) == before


async def test_repeated_meter_values_are_stored_once(
    server: RunningServer, cp16: OcppClient
) -> None:
    tx_id = (await cp16.call("StartTransaction", start16()))["transactionId"]
    message = {
        "connectorId": 1,
        "transactionId": tx_id,
        "meterValue": [
            energy(T0 + timedelta(minutes=1), 1500),
            energy(T0 + timedelta(minutes=2), 2000),
        ],
    }
    loose = {"connectorId": 0, "meterValue": [energy(T0, 123456)]}  # main meter, no transaction
    for _ in range(3):
        await cp16.call("MeterValues", message)
        await cp16.call("MeterValues", loose)
    readings = await rows(server.runtime, t.meter_readings)
    assert sorted(r["energy_wh"] for r in readings) == [1000, 1500, 2000, 123456]
    [tx] = await rows(server.runtime, t.transactions)
    assert tx["last_energy_wh"] == 2000


async def test_stop_of_an_unknown_transaction_is_acknowledged_and_kept_for_review(
    server: RunningServer, cp16: OcppClient, charger_id: str
) -> None:
    for transaction_id in (424242, 2**63, -5):
        stop = {"transactionId": transaction_id, "meterStop": 10, "timestamp": iso(T0)}
        assert await cp16.call("StopTransaction", stop) == {}
        assert await cp16.call("StopTransaction", stop) == {}  # the retry changes nothing
    reviews = await rows(server.runtime, t.review_items)
    assert [(r["charger_id"], r["kind"]) for r in reviews] == [
        (charger_id, "unknown_transaction_stop")
    ] * 3
    assert [r["detail"]["transactionId"] for r in reviews] == [424242, 2**63, -5]
    assert await rows(server.runtime, t.transactions) == []


async def test_stop_of_another_chargers_transaction_is_not_applied(
    server: RunningServer, cp16: OcppClient
) -> None:
    await server.runtime.services.chargers.add_charger("CP-2", PASSWORD, connectors=1)
    other = await OcppClient.connect(server.ocpp_url, "CP-2", PASSWORD, "1.6")
    try:
        tx_id = (await other.call("StartTransaction", start16()))["transactionId"]
    finally:
        await other.close()
    stop = {"transactionId": tx_id, "meterStop": 10, "timestamp": iso(T0)}
    assert await cp16.call("StopTransaction", stop) == {}
    [tx] = await rows(server.runtime, t.transactions)
    assert tx["status"] == "active"
    [review] = await rows(server.runtime, t.review_items)
    assert review["kind"] == "unknown_transaction_stop"


async def test_a_late_1_6_transaction_keeps_the_chargers_times(
    server: RunningServer, cp16: OcppClient
) -> None:
    long_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    tx_id = (await cp16.call("StartTransaction", start16(long_ago, 100)))["transactionId"]
    await cp16.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx_id,
            "meterValue": [energy(long_ago + timedelta(minutes=30), 4100)],
        },
    )
    await cp16.call(
        "StopTransaction",
        {
            "transactionId": tx_id,
            "meterStop": 8100,
            "timestamp": iso(long_ago + timedelta(hours=1)),
        },
    )
    [tx] = await rows(server.runtime, t.transactions)
    assert aware(tx["started_at"]) == long_ago
    assert aware(tx["stopped_at"]) == long_ago + timedelta(hours=1)
    assert (tx["meter_start_wh"], tx["meter_stop_wh"]) == (100, 8100)
    readings = await rows(server.runtime, t.meter_readings)
    assert [(aware(r["at"]) - long_ago, r["energy_wh"]) for r in readings] == [
        (timedelta(0), 100),
        (timedelta(minutes=30), 4100),
        (timedelta(hours=1), 8100),
    ]


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- OCPP 2.0.1 --------------------------------------------------------------
def event(
    kind: str,
    seq: int,
    at: datetime,
    wh: float | None,
    *,
    tx: str = "tx-1",
    context: str = "Sample.Periodic",
    offline: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "eventType": kind,
        "timestamp": iso(at),
        "triggerReason": {
            "Started": "Authorized",
            "Updated": "MeterValuePeriodic",
            "Ended": "StopAuthorized",
        }[kind],
        "seqNo": seq,
        "transactionInfo": {"transactionId": tx, **extra.pop("info", {})},
        **extra,
    }
    if wh is not None:
        payload["meterValue"] = [energy201(at, wh, context)]
    if offline:
        payload["offline"] = True
    return payload


def started(at: datetime = T0, wh: float = 1000, **kw: Any) -> dict[str, Any]:
    return event(
        "Started",
        0,
        at,
        wh,
        context="Transaction.Begin",
        evse={"id": 1, "connectorId": 1},
        idToken={"idToken": "TAG-1", "type": "ISO14443"},
        **kw,
    )


def ended(seq: int, at: datetime, wh: float, **kw: Any) -> dict[str, Any]:
    return event(
        "Ended",
        seq,
        at,
        wh,
        context="Transaction.End",
        info={"stoppedReason": "EVDisconnected"},
        **kw,
    )


async def test_repeated_transaction_events_get_the_same_answer_and_change_nothing(
    server: RunningServer, cp201: OcppClient
) -> None:
    messages = [
        started(),
        event("Updated", 1, T0 + timedelta(minutes=5), 3000),
        ended(
            2, T0 + timedelta(minutes=10), 6000, idToken={"idToken": "TAG-1", "type": "ISO14443"}
        ),
    ]
    for message in messages:
        answer = await cp201.call("TransactionEvent", message)
        before = await snapshot(server)
        assert await cp201.call("TransactionEvent", message) == answer
        assert await snapshot(server) == before
    assert tag_status(answer["idTokenInfo"]) == {"status": "Accepted"}
    [tx] = before["transactions"]
    assert tx["status"] == "ended" and (tx["meter_start_wh"], tx["meter_stop_wh"]) == (1000, 6000)
    assert tx["stop_reason"] == "EVDisconnected" and not tx["needs_review"]
    assert len(before["transaction_messages"]) == 3
    assert [r["energy_wh"] for r in before["meter_readings"]] == [1000, 3000, 6000]


async def test_a_transaction_replayed_out_of_order_is_applied_in_order(
    server: RunningServer, cp201: OcppClient
) -> None:
    long_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    at = [long_ago + timedelta(minutes=10 * n) for n in range(4)]
    # Queued while offline and delivered shuffled: an update first, the end
    # before the other update, the start last.
    await cp201.call("TransactionEvent", event("Updated", 1, at[1], 2000, offline=True))
    [tx] = await rows(server.runtime, t.transactions)
    assert tx["needs_review"]  # no start yet: not billable until it arrives
    await cp201.call("TransactionEvent", ended(3, at[3], 4000, offline=True))
    await cp201.call("TransactionEvent", event("Updated", 2, at[2], 3000, offline=True))
    await cp201.call("TransactionEvent", started(at[0], 1000, offline=True))

    [tx] = await rows(server.runtime, t.transactions)
    assert tx["status"] == "ended" and tx["offline"] and not tx["needs_review"]
    assert aware(tx["started_at"]) == at[0] and aware(tx["stopped_at"]) == at[3]
    assert (tx["meter_start_wh"], tx["meter_stop_wh"]) == (1000, 4000)
    assert tx["connector_id"] == 1 and tx["id_tag"] == "TAG-1"
    assert tx["last_energy_wh"] == 4000  # the late update is older than the end
    readings = await rows(server.runtime, t.meter_readings)
    assert sorted((aware(r["at"]), r["energy_wh"], r["flag"]) for r in readings) == [
        (at[0], 1000, ""),
        (at[1], 2000, ""),
        (at[2], 3000, ""),
        (at[3], 4000, ""),
    ]


async def test_updates_arriving_after_the_end_do_not_move_the_end(
    server: RunningServer, cp201: OcppClient
) -> None:
    await cp201.call("TransactionEvent", started())
    await cp201.call("TransactionEvent", ended(3, T0 + timedelta(minutes=30), 9000))
    await cp201.call(
        "TransactionEvent", event("Updated", 1, T0 + timedelta(minutes=10), 4000, offline=True)
    )
    await cp201.call(
        "TransactionEvent", event("Updated", 2, T0 + timedelta(minutes=20), 7000, offline=True)
    )
    [tx] = await rows(server.runtime, t.transactions)
    assert tx["status"] == "ended" and tx["meter_stop_wh"] == 9000 and tx["last_energy_wh"] == 9000
    assert aware(tx["stopped_at"]) == T0 + timedelta(minutes=30)
    assert len(await rows(server.runtime, t.meter_readings)) == 4
    assert len(await rows(server.runtime, t.transaction_messages)) == 4


async def test_repeated_2_0_1_meter_values_are_stored_once(
    server: RunningServer, cp201: OcppClient
) -> None:
    message = {"evseId": 1, "meterValue": [energy201(T0, 777)]}
    for _ in range(3):
        assert await cp201.call("MeterValues", message) == {}
    [reading] = await rows(server.runtime, t.meter_readings)
    assert reading["energy_wh"] == 777 and reading["transaction_id"] is None


async def test_an_end_that_reuses_a_seq_no_after_a_reboot_still_ends_the_transaction(
    server: RunningServer, cp201: OcppClient
) -> None:
    await cp201.call("TransactionEvent", started())
    await cp201.call("TransactionEvent", event("Updated", 1, T0 + timedelta(minutes=5), 2000))
    # The charger rebooted and numbers from 0 again: its Ended carries seqNo 1.
    end = ended(1, T0 + timedelta(minutes=9), 4000)
    answer = await cp201.call("TransactionEvent", end)
    assert await cp201.call("TransactionEvent", end) == answer  # and is retried
    [tx] = await rows(server.runtime, t.transactions)
    assert tx["status"] == "ended" and tx["meter_stop_wh"] == 4000
    assert tx["needs_review"] and tx["review_reason"] == "seqNo 1 reused by Ended"


async def test_a_transaction_authorized_after_the_cable_was_plugged_gets_its_id_tag(
    server: RunningServer, cp201: OcppClient
) -> None:
    plugged = event("Started", 0, T0, 1000, context="Transaction.Begin", evse={"id": 1})
    await cp201.call("TransactionEvent", plugged)
    token = {"idToken": "TAG-1", "type": "ISO14443"}
    authorized = event("Updated", 1, T0 + timedelta(minutes=1), 1000, idToken=token)
    answer = await cp201.call("TransactionEvent", authorized)
    assert tag_status(answer["idTokenInfo"]) == {"status": "Accepted"}
    assert await cp201.call("TransactionEvent", authorized) == answer
    [tx] = await rows(server.runtime, t.transactions)
    assert tx["id_tag"] == "TAG-1"
    assert len(await rows(server.runtime, t.transaction_messages)) == 2
