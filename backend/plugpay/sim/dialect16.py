"""OCPP 1.6J messages of the virtual charger, on the ``ocpp`` package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call
from ocpp.v16 import call_result as result

from plugpay.sim.state import ConnectorState, TransactionState, iso

if TYPE_CHECKING:
    from plugpay.sim.charger import VirtualCharger

SUBPROTOCOL = "ocpp1.6"


def _sample(at: str, wh: int, power_w: int, context: str) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": at,
            "sampledValue": [
                {
                    "value": str(wh),
                    "context": context,
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "Wh",
                },
                {
                    "value": str(power_w),
                    "context": context,
                    "measurand": "Power.Active.Import",
                    "unit": "W",
                },
            ],
        }
    ]


class Protocol16(ChargePoint):  # type: ignore[misc]
    sim: VirtualCharger

    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **_: Any) -> Any:
        connector = self.sim.connector(connector_id or 1)
        ok = (
            connector is not None
            and connector.transaction is None
            and self.sim.accepts_remote_start
        )
        return result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @after("RemoteStartTransaction")
    async def after_remote_start(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> None:
        connector = self.sim.connector(connector_id or 1)
        if (
            connector is not None
            and connector.transaction is None
            and self.sim.accepts_remote_start
        ):
            self.sim.schedule(self.sim.start_transaction(connector.connector_id, id_tag))

    @on("RemoteStopTransaction")
    def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        connector = self.sim.connector_for_transaction(transaction_id)
        if connector is None:
            return result.RemoteStopTransaction(status="Rejected")
        self.sim.schedule(self.sim.stop_transaction(connector.connector_id, "Remote"))
        return result.RemoteStopTransaction(status="Accepted")

    @on("SendLocalList")
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        entries = [
            (e["id_tag"], (e.get("id_tag_info") or {}).get("status"))
            for e in local_authorization_list or []
        ]
        status = self.sim.apply_local_list(list_version, update_type, entries)
        return result.SendLocalList(status=status)

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **_: Any) -> Any:
        return result.GetLocalListVersion(list_version=self.sim.local_list_version)

    @on("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        return result.Reset(status="Accepted")

    @on("UnlockConnector")
    def on_unlock(self, connector_id: int, **_: Any) -> Any:
        return result.UnlockConnector(status="Unlocked")

    @on("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        return result.ChangeAvailability(status="Accepted")

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, connector_id: int | None = None, **_: Any) -> Any:
        if requested_message in (
            "Heartbeat",
            "StatusNotification",
            "BootNotification",
            "MeterValues",
        ):
            self.sim.schedule(self.sim.triggered(requested_message, connector_id))
            return result.TriggerMessage(status="Accepted")
        return result.TriggerMessage(status="NotImplemented")

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        known = self.sim.configuration
        wanted = key or list(known)
        return result.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": False, "value": known[k]} for k in wanted if k in known
            ],
            unknown_key=[k for k in wanted if k not in known] or None,
        )

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        self.sim.configuration[key] = value
        return result.ChangeConfiguration(status="Accepted")

    @on("UpdateFirmware")
    def on_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> Any:
        self.sim.schedule(
            self.sim.update_firmware(["Downloading", "Downloaded", "Installing", "Installed"])
        )
        return result.UpdateFirmware()


def boot(sim: VirtualCharger) -> Any:
    return call.BootNotification(
        charge_point_model=sim.model,
        charge_point_vendor=sim.vendor,
        charge_point_serial_number=sim.charger_id,
        firmware_version=sim.firmware_version,
    )


def heartbeat() -> Any:
    return call.Heartbeat()


def status(connector: ConnectorState) -> Any:
    return call.StatusNotification(
        connector_id=connector.connector_id,
        error_code="NoError",
        status=connector.status,
        timestamp=iso(),
    )


def firmware_status(value: str) -> Any:
    return call.FirmwareStatusNotification(status=value)


def start(connector_id: int, tx: TransactionState, offline: bool) -> Any:
    return call.StartTransaction(
        connector_id=connector_id,
        id_tag=tx.id_tag,
        meter_start=tx.meter_start_wh,
        timestamp=iso(tx.started_at),
    )


def started_id(response: Any) -> int:
    return int(response.transaction_id)


def meter(
    connector_id: int, tx: TransactionState, at: str, wh: int, power_w: int, offline: bool
) -> Any:
    return call.MeterValues(
        connector_id=connector_id,
        transaction_id=tx.transaction_id,
        meter_value=_sample(at, wh, power_w, "Sample.Periodic"),
    )


def stop(
    connector_id: int, tx: TransactionState, at: str, wh: int, reason: str, offline: bool
) -> Any:
    return call.StopTransaction(
        meter_stop=wh,
        timestamp=at,
        transaction_id=tx.transaction_id,
        reason=reason,
        id_tag=tx.id_tag,
        transaction_data=_sample(at, wh, 0, "Transaction.End"),
    )
