"""OCPP 2.0.1 messages of the virtual charging station, on the ``ocpp`` package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call
from ocpp.v201 import call_result as result

from plugpay.sim.state import ConnectorState, TransactionState, iso

if TYPE_CHECKING:
    from plugpay.sim.charger import VirtualCharger

SUBPROTOCOL = "ocpp2.0.1"


def _meter_value(at: str, wh: int, power_w: int, context: str) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": at,
            "sampledValue": [
                {
                    "value": wh,
                    "context": context,
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh"},
                },
                {
                    "value": power_w,
                    "context": context,
                    "measurand": "Power.Active.Import",
                    "unitOfMeasure": {"unit": "W"},
                },
            ],
        }
    ]


class Protocol201(ChargePoint):  # type: ignore[misc]
    sim: VirtualCharger

    @on("RequestStartTransaction")
    def on_request_start(
        self, id_token: dict[str, Any], remote_start_id: int, evse_id: int | None = None, **_: Any
    ) -> Any:
        connector = self.sim.connector(evse_id or 1)
        ok = (
            connector is not None
            and connector.transaction is None
            and self.sim.accepts_remote_start
        )
        return result.RequestStartTransaction(status="Accepted" if ok else "Rejected")

    @after("RequestStartTransaction")
    async def after_request_start(
        self, id_token: dict[str, Any], remote_start_id: int, evse_id: int | None = None, **_: Any
    ) -> None:
        connector = self.sim.connector(evse_id or 1)
        if (
            connector is not None
            and connector.transaction is None
            and self.sim.accepts_remote_start
        ):
            self.sim.schedule(
                self.sim.start_transaction(
                    connector.connector_id, id_token["id_token"], remote_start_id
                )
            )

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        connector = self.sim.connector_for_transaction(transaction_id)
        if connector is None:
            return result.RequestStopTransaction(status="Rejected")
        self.sim.schedule(self.sim.stop_transaction(connector.connector_id, "Remote"))
        return result.RequestStopTransaction(status="Accepted")

    @on("GetTransactionStatus")
    def on_get_transaction_status(self, transaction_id: str | None = None, **_: Any) -> Any:
        ongoing = (
            transaction_id is not None
            and self.sim.connector_for_transaction(transaction_id) is not None
        )
        return result.GetTransactionStatus(
            messages_in_queue=self.sim.queued > 0, ongoing_indicator=ongoing
        )

    @on("SendLocalList")
    def on_send_local_list(
        self,
        version_number: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        entries = [
            (e["id_token"]["id_token"], (e.get("id_token_info") or {}).get("status"))
            for e in local_authorization_list or []
        ]
        status = self.sim.apply_local_list(version_number, update_type, entries)
        return result.SendLocalList(status=status)

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **_: Any) -> Any:
        return result.GetLocalListVersion(version_number=self.sim.local_list_version)

    @on("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        return result.Reset(status="Accepted")

    @on("UnlockConnector")
    def on_unlock(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        return result.UnlockConnector(status="Unlocked")

    @on("ChangeAvailability")
    def on_change_availability(self, operational_status: str, **_: Any) -> Any:
        return result.ChangeAvailability(status="Accepted")

    @on("TriggerMessage")
    def on_trigger(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        if requested_message in (
            "Heartbeat",
            "StatusNotification",
            "BootNotification",
            "MeterValues",
        ):
            self.sim.schedule(self.sim.triggered(requested_message, (evse or {}).get("id")))
            return result.TriggerMessage(status="Accepted")
        return result.TriggerMessage(status="NotImplemented")

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        answers = []
        for item in get_variable_data:
            name = item["variable"]["name"]
            value = self.sim.configuration.get(name)
            answers.append(
                {
                    "attributeStatus": "Accepted" if value is not None else "UnknownVariable",
                    "component": item["component"],
                    "variable": item["variable"],
                    **({"attributeValue": value} if value is not None else {}),
                }
            )
        return result.GetVariables(get_variable_result=answers)

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        answers = []
        for item in set_variable_data:
            self.sim.configuration[item["variable"]["name"]] = item["attribute_value"]
            answers.append(
                {
                    "attributeStatus": "Accepted",
                    "component": item["component"],
                    "variable": item["variable"],
                }
            )
        return result.SetVariables(set_variable_result=answers)

    @on("UpdateFirmware")
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any], **_: Any) -> Any:
        self.sim.schedule(
            self.sim.update_firmware(["Downloading", "Downloaded", "Installing", "Installed"])
        )
        return result.UpdateFirmware(status="Accepted")


def boot(sim: VirtualCharger) -> Any:
    return call.BootNotification(
        charging_station={
            "model": sim.model,
            "vendor_name": sim.vendor,
            "serial_number": sim.charger_id,
            "firmware_version": sim.firmware_version,
        },
        reason="PowerUp",
    )


def heartbeat() -> Any:
    return call.Heartbeat()


def status(connector: ConnectorState) -> Any:
    status_201 = {
        "Preparing": "Occupied",
        "Charging": "Occupied",
        "SuspendedEV": "Occupied",
        "SuspendedEVSE": "Occupied",
        "Finishing": "Occupied",
    }.get(connector.status, connector.status)
    return call.StatusNotification(
        timestamp=iso(), connector_status=status_201, evse_id=connector.connector_id, connector_id=1
    )


def firmware_status(value: str) -> Any:
    return call.FirmwareStatusNotification(status=value)


def _token(tx: TransactionState) -> dict[str, str]:
    return {
        "idToken": tx.id_tag,
        "type": "Central" if tx.remote_start_id is not None else "ISO14443",
    }


def start(connector_id: int, tx: TransactionState, offline: bool) -> Any:
    return call.TransactionEvent(
        event_type="Started",
        timestamp=iso(tx.started_at),
        trigger_reason="RemoteStart" if tx.remote_start_id is not None else "Authorized",
        seq_no=tx.next_seq(),
        offline=offline or None,
        transaction_info={
            "transactionId": tx.transaction_id,
            "chargingState": "Charging",
            **({"remoteStartId": tx.remote_start_id} if tx.remote_start_id is not None else {}),
        },
        evse={"id": connector_id, "connectorId": 1},
        id_token=_token(tx),
        meter_value=_meter_value(iso(tx.started_at), tx.meter_start_wh, 0, "Transaction.Begin"),
    )


def started_id(response: Any) -> None:
    return None  # 2.0.1 transaction ids are the station's own


def meter(
    connector_id: int, tx: TransactionState, at: str, wh: int, power_w: int, offline: bool
) -> Any:
    return call.TransactionEvent(
        event_type="Updated",
        timestamp=at,
        trigger_reason="MeterValuePeriodic",
        seq_no=tx.next_seq(),
        offline=offline or None,
        transaction_info={"transactionId": tx.transaction_id, "chargingState": "Charging"},
        meter_value=_meter_value(at, wh, power_w, "Sample.Periodic"),
    )


def stop(
    connector_id: int, tx: TransactionState, at: str, wh: int, reason: str, offline: bool
) -> Any:
    trigger = (
        "RemoteStop"
        if reason == "Remote"
        else "StopAuthorized"
        if reason == "Local"
        else "EVCommunicationLost"
    )
    return call.TransactionEvent(
        event_type="Ended",
        timestamp=at,
        trigger_reason=trigger,
        seq_no=tx.next_seq(),
        offline=offline or None,
        transaction_info={
            "transactionId": tx.transaction_id,
            "chargingState": "Idle",
            "stoppedReason": reason,
        },
        meter_value=_meter_value(at, wh, 0, "Transaction.End"),
    )
