"""OCPP 2.0.1: what the server does with each CALL from a charging station.

plugpay numbers connectors by EVSE: connector N of a charger is EVSE N
(one connector per EVSE, the common case for public chargers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plugpay.ocpp.connection import ChargerConnection, Handler
from plugpay.ocpp.fields import bounded, readings
from plugpay.ocpp.meter import parse_timestamp
from plugpay.services.ports import BootInfo, EventInput


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def on_boot_notification(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    station = p["chargingStation"]
    info = BootInfo(
        vendor=station["vendorName"],
        model=station["model"],
        serial_number=station.get("serialNumber"),
        firmware_version=station.get("firmwareVersion"),
    )
    status, interval = await conn.services.chargers.boot(conn.charger_id, info, datetime.now(UTC))
    return {"status": status, "currentTime": _now(), "interval": interval}


async def on_heartbeat(conn: ChargerConnection, _p: dict[str, Any]) -> dict[str, Any]:
    await conn.services.chargers.heartbeat(conn.charger_id, datetime.now(UTC))
    return {"currentTime": _now()}


async def on_status_notification(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    await conn.services.chargers.status(
        conn.charger_id,
        bounded(p["evseId"], "evseId"),
        p["connectorStatus"],
        None,
        parse_timestamp(p["timestamp"]),
    )
    return {}


async def on_authorize(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    token = p["idToken"]["idToken"]
    return {"idTokenInfo": await conn.services.chargers.tag_info(token, conn.charger_id, "2.0.1")}


async def on_transaction_event(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    info = p["transactionInfo"]
    evse = p.get("evse") or {}
    token = p.get("idToken")
    event = EventInput(
        charger_id=conn.charger_id,
        ocpp_transaction_id=info["transactionId"],
        event_type=p["eventType"],
        seq_no=bounded(p["seqNo"], "seqNo"),
        at=parse_timestamp(p["timestamp"]),
        offline=bool(p.get("offline", False)),
        connector_id=bounded(evse["id"], "evse.id") if "id" in evse else None,
        id_tag=token["idToken"] if token and token.get("type") != "NoAuthorization" else None,
        stopped_reason=info.get("stoppedReason"),
    )
    samples = await readings(conn, "TransactionEvent", p.get("meterValue", ()))
    response: dict[str, Any] = await conn.services.transactions.transaction_event(event, samples)
    return response


async def on_meter_values(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    evse_id = bounded(p["evseId"], "evseId")
    samples = await readings(conn, "MeterValues", p["meterValue"])
    await conn.services.transactions.meter_values(conn.charger_id, evse_id, None, samples)
    return {}


async def on_notify_event(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {}  # kept in the message log for operators


async def on_firmware_status_notification(
    conn: ChargerConnection, p: dict[str, Any]
) -> dict[str, Any]:
    await conn.services.chargers.firmware_status(conn.charger_id, p["status"], datetime.now(UTC))
    return {}


async def on_security_event_notification(
    conn: ChargerConnection, p: dict[str, Any]
) -> dict[str, Any]:
    await conn.services.chargers.report(
        conn.charger_id,
        "security_event",
        {"type": p["type"], "timestamp": p["timestamp"], "techInfo": p.get("techInfo")},
    )
    return {}


async def on_data_transfer(conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
    return {"status": "UnknownVendorId"}


HANDLERS: dict[str, Handler] = {
    "BootNotification": on_boot_notification,
    "Heartbeat": on_heartbeat,
    "StatusNotification": on_status_notification,
    "Authorize": on_authorize,
    "TransactionEvent": on_transaction_event,
    "MeterValues": on_meter_values,
    "NotifyEvent": on_notify_event,
    "FirmwareStatusNotification": on_firmware_status_notification,
    "SecurityEventNotification": on_security_event_notification,
    "DataTransfer": on_data_transfer,
}
