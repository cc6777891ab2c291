"""Send commands to chargers, whichever OCPP version they speak.

``send`` takes any action of the charger's version and returns its answer;
the helpers below map the common commands onto 1.6 or 2.0.1. Errors:
ChargerOffline (no live connection), CommandTimeout, CommandFailed (CALLERROR),
InvalidInput (a payload the schema refuses: nothing is sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugpay.domain.errors import ChargerOffline
from plugpay.services.ports import ChargerLink


@dataclass
class CommandService:
    link: ChargerLink

    async def version(self, charger_id: str) -> str:
        """The OCPP version the connected charger speaks (ChargerOffline if none)."""
        return await self._version(charger_id)

    async def _version(self, charger_id: str) -> str:
        version = await self.link.version(charger_id)
        if version is None:
            raise ChargerOffline(f"charger {charger_id} is not connected")
        return version

    async def send(
        self, charger_id: str, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send any OCPP action to a connected charger and await its answer."""
        return await self.link.call(charger_id, action, payload, timeout)

    async def remote_start(
        self, charger_id: str, connector_id: int, id_tag: str, remote_start_id: int = 1
    ) -> bool:
        """RemoteStartTransaction (1.6) / RequestStartTransaction (2.0.1); True when accepted."""
        if await self._version(charger_id) == "1.6":
            answer = await self.send(
                charger_id, "RemoteStartTransaction", {"connectorId": connector_id, "idTag": id_tag}
            )
        else:
            answer = await self.send(
                charger_id,
                "RequestStartTransaction",
                {
                    "evseId": connector_id,
                    "remoteStartId": remote_start_id,
                    "idToken": {"idToken": id_tag, "type": "Central"},
                },
            )
        return answer.get("status") == "Accepted"

    async def remote_stop(self, charger_id: str, ocpp_transaction_id: str) -> bool:
        """RemoteStopTransaction (1.6) / RequestStopTransaction (2.0.1); True when accepted."""
        if await self._version(charger_id) == "1.6":
            answer = await self.send(
                charger_id, "RemoteStopTransaction", {"transactionId": int(ocpp_transaction_id)}
            )
        else:
            answer = await self.send(
                charger_id, "RequestStopTransaction", {"transactionId": ocpp_transaction_id}
            )
        return answer.get("status") == "Accepted"

    async def reset(self, charger_id: str, hard: bool = False) -> str:
        if await self._version(charger_id) == "1.6":
            answer = await self.send(charger_id, "Reset", {"type": "Hard" if hard else "Soft"})
        else:
            answer = await self.send(
                charger_id, "Reset", {"type": "Immediate" if hard else "OnIdle"}
            )
        return str(answer.get("status"))

    async def unlock(self, charger_id: str, connector_id: int) -> str:
        if await self._version(charger_id) == "1.6":
            answer = await self.send(charger_id, "UnlockConnector", {"connectorId": connector_id})
        else:
            answer = await self.send(
                charger_id, "UnlockConnector", {"evseId": connector_id, "connectorId": 1}
            )
        return str(answer.get("status"))

    async def change_availability(self, charger_id: str, connector_id: int, available: bool) -> str:
        if await self._version(charger_id) == "1.6":
            payload: dict[str, Any] = {
                "connectorId": connector_id,
                "type": "Operative" if available else "Inoperative",
            }
        else:
            payload = {"operationalStatus": "Operative" if available else "Inoperative"}
            if connector_id:
                payload["evse"] = {"id": connector_id}
        answer = await self.send(charger_id, "ChangeAvailability", payload)
        return str(answer.get("status"))

    async def trigger(self, charger_id: str, message: str, connector_id: int | None = None) -> str:
        if await self._version(charger_id) == "1.6":
            payload: dict[str, Any] = {"requestedMessage": message}
            if connector_id is not None:
                payload["connectorId"] = connector_id
        else:
            payload = {"requestedMessage": message}
            if connector_id is not None:
                payload["evse"] = {"id": connector_id}
        answer = await self.send(charger_id, "TriggerMessage", payload)
        return str(answer.get("status"))

    async def update_firmware(
        self, charger_id: str, location: str, retrieve_at: str, request_id: int = 1
    ) -> str:
        if await self._version(charger_id) == "1.6":
            await self.send(
                charger_id, "UpdateFirmware", {"location": location, "retrieveDate": retrieve_at}
            )
            return "Accepted"  # 1.6 UpdateFirmware.conf carries no status
        answer = await self.send(
            charger_id,
            "UpdateFirmware",
            {
                "requestId": request_id,
                "firmware": {"location": location, "retrieveDateTime": retrieve_at},
            },
        )
        return str(answer.get("status"))
