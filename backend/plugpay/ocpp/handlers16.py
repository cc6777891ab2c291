"""OCPP 1.6J: what the server does with each CALL from a charger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plugpay.ocpp.connection import ChargerConnection, Handler
from plugpay.ocpp.fields import bounded, readings, register
from plugpay.ocpp.meter import parse_timestamp
from plugpay.services.ports import BootInfo, StartInput, StopInput


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def on_boot_notification(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    info = BootInfo(
        vendor=p["chargePointVendor"],
        model=p["chargePointModel"],
        serial_number=p.get("chargePointSerialNumber") or p.get("chargeBoxSerialNumber"),
        firmware_version=p.get("firmwareVersion"),
    )
    status, interval = await conn.services.chargers.boot(conn.charger_id, info, datetime.now(UTC))
    return {"status": status, "currentTime": _now(), "interval": interval}


async def on_heartbeat(conn: ChargerConnection, _p: dict[str, Any]) -> dict[str, Any]:
    await conn.services.chargers.heartbeat(conn.charger_id, datetime.now(UTC))
    return {"currentTime": _now()}


async def on_status_notification(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    at = parse_timestamp(p["timestamp"]) if "timestamp" in p else datetime.now(UTC)
    error = p["errorCode"] if p["errorCode"] != "NoError" else None
    connector_id = bounded(p["connectorId"], "connectorId")
    await conn.services.chargers.status(conn.charger_id, connector_id, p["status"], error, at)
    return {}


async def on_authorize(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {"idTagInfo": await conn.services.chargers.tag_info(p["idTag"], conn.charger_id, "1.6")}


async def on_start_transaction(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    start = StartInput(
        charger_id=conn.charger_id,
        connector_id=bounded(p["connectorId"], "connectorId", low=1),
        id_tag=p["idTag"],
        at=parse_timestamp(p["timestamp"]),
        meter_start_wh=register(p["meterStart"], "meterStart"),
    )
    pk, info = await conn.services.transactions.start_16(start)
    return {"transactionId": pk, "idTagInfo": info}


async def on_meter_values(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    connector_id = bounded(p["connectorId"], "connectorId")
    transaction_id = p.get("transactionId")
    samples = await readings(conn, "MeterValues", p["meterValue"])
    await conn.services.transactions.meter_values(
        conn.charger_id,
        connector_id,
        int(transaction_id) if transaction_id is not None else None,
        samples,
    )
    return {}


async def on_stop_transaction(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    meter_stop = register(p["meterStop"], "meterStop")
    samples = await readings(conn, "StopTransaction", p.get("transactionData", ()))
    stop = StopInput(
        charger_id=conn.charger_id,
        transaction_pk=int(p["transactionId"]),
        at=parse_timestamp(p["timestamp"]),
        meter_stop_wh=meter_stop,
        reason=p.get("reason"),
        id_tag=p.get("idTag"),
    )
    response: dict[str, Any] = await conn.services.transactions.stop_16(stop, samples)
    return response


async def on_data_transfer(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    # No vendor extensions are handled: say so, as OCPP asks, rather than fail.
    return {"status": "UnknownVendorId"}


async def on_firmware_status_notification(
    conn: ChargerConnection, p: dict[str, Any]
) -> dict[str, Any]:
    await conn.services.chargers.firmware_status(conn.charger_id, p["status"], datetime.now(UTC))
    return {}


async def on_diagnostics_status_notification(
    conn: ChargerConnection, p: dict[str, Any]
) -> dict[str, Any]:
    return {}  # kept in the message log; nothing else depends on it


async def on_security_event_notification(
    conn: ChargerConnection, p: dict[str, Any]
) -> dict[str, Any]:
    # OCPP 1.6 security whitepaper: the same notification as in 2.0.1.
    await conn.services.chargers.report(
        conn.charger_id,
        "security_event",
        {"type": p["type"], "timestamp": p["timestamp"], "techInfo": p.get("techInfo")},
    )
    return {}


HANDLERS: dict[str, Handler] = {
    "BootNotification": on_boot_notification,
    "Heartbeat": on_heartbeat,
    "StatusNotification": on_status_notification,
    "Authorize": on_authorize,
    "StartTransaction": on_start_transaction,
    "MeterValues": on_meter_values,
    "StopTransaction": on_stop_transaction,
    "DataTransfer": on_data_transfer,
    "FirmwareStatusNotification": on_firmware_status_notification,
    "DiagnosticsStatusNotification": on_diagnostics_status_notification,
    "SecurityEventNotification": on_security_event_notification,
}
