"""Use cases around the chargers themselves: registration, authentication, boot, status."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugpay.domain.errors import InvalidInput
from plugpay.services.ports import (
    BootInfo,
    ChargerStore,
    ChargerView,
    NewCharger,
    PasswordHasher,
)
from plugpay.services.ports.jobs import NewJob

log = logging.getLogger(__name__)

# OCPI ConnectorType values a public charger is likely to have.
CONNECTOR_STANDARDS = frozenset(
    {
        "IEC_62196_T1",
        "IEC_62196_T1_COMBO",
        "IEC_62196_T2",
        "IEC_62196_T2_COMBO",
        "IEC_62196_T3A",
        "IEC_62196_T3C",
        "CHADEMO",
        "CHAOJI",
        "GBT_AC",
        "GBT_DC",
        "TESLA_R",
        "TESLA_S",
        "DOMESTIC_F",
        "NEMA_5_20",
        "NEMA_14_50",
        "SAE_J3400",
    }
)

# OCPP identities travel in a URL path: printable, no separators. OCPP 2.0.1's
# identifierString also allows ":", but the id is the HTTP Basic user name and
# a user name with a colon cannot be sent (RFC 7617 §2): such a charger could
# never connect, so it is refused here.
_CHARGER_ID = re.compile(r"^[A-Za-z0-9._\-*+=@|]{1,48}$")


def check_charger_id(charger_id: str) -> str:
    if not _CHARGER_ID.match(charger_id):
        raise InvalidInput(
            "charger id must be 1-48 characters of letters, digits and . _ - * + = @ |"
        )
    return charger_id


@dataclass
class ChargerService:
    store: ChargerStore
    hasher: PasswordHasher
    heartbeat_interval: int = 300
    # Told when a charger connects or boots: commands waiting for it go out then.
    on_back: Callable[[str], Awaitable[None]] | None = None
    # What a boot sets off, written with the boot (its local list checked).
    boot_job: Callable[[str], Awaitable[NewJob | None]] | None = None

    async def add_charger(
        self,
        charger_id: str,
        password: str,
        connectors: int = 1,
        site: str | None = None,
        time_zone: str = "UTC",
        standard: str | None = None,
        max_power_kw: Decimal | None = None,
    ) -> None:
        """Register a charger and its connectors. The password is stored only as a slow hash."""
        check_charger_id(charger_id)
        # OCPP 1.6 security whitepaper: AuthorizationKey is 16..40 bytes; 2.0.1
        # allows 16..40 too. Shorter keys are refused rather than weakly hashed.
        if not 16 <= len(password) <= 40:
            raise InvalidInput("password must be 16 to 40 characters (OCPP BasicAuthPassword)")
        if not 1 <= connectors <= 32:
            raise InvalidInput("connectors must be between 1 and 32")
        if standard is not None and standard not in CONNECTOR_STANDARDS:
            raise InvalidInput(
                f"connector type must be one of {', '.join(sorted(CONNECTOR_STANDARDS))}"
            )
        if max_power_kw is not None and not 0 < max_power_kw <= 1500:
            raise InvalidInput("power must be between 0 and 1500 kW")
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone {time_zone!r}") from None
        max_power_w = int(max_power_kw * 1000) if max_power_kw is not None else None
        await self.store.add(
            NewCharger(
                charger_id,
                self.hasher.hash(password),
                connectors,
                site,
                time_zone,
                standard,
                max_power_w,
            )
        )

    async def authenticate(self, charger_id: str, password: str | None) -> str:
        """'ok', 'unknown' (no such charger) or 'denied' (wrong or missing password)."""
        password_hash = await self.store.password_hash(charger_id)
        if password_hash is None:
            return "unknown"
        if password is None or not await self.hasher.verify(password_hash, password):
            return "denied"
        return "ok"

    async def list_chargers(self) -> list[ChargerView]:
        return await self.store.list_chargers()

    async def connected(
        self, charger_id: str, version: str, at: datetime, instance: str | None = None
    ) -> None:
        """The charger connected to server ``instance`` (see ``ConnectionRegistry``)."""
        await self.store.set_connected(charger_id, version, at, instance)
        await self._back(charger_id)

    async def disconnected(
        self, charger_id: str, at: datetime, connected_at: datetime | None = None
    ) -> None:
        """The connection that began at ``connected_at`` closed; a newer one (on this or
        another server instance) keeps the charger connected."""
        await self.store.set_disconnected(charger_id, at, connected_at)

    async def boot(self, charger_id: str, info: BootInfo, at: datetime) -> tuple[str, int]:
        """Record a BootNotification; answer (status, heartbeat interval)."""
        job = await self.boot_job(charger_id) if self.boot_job is not None else None
        await self.store.record_boot(charger_id, info, "Accepted", at, job)
        await self._back(charger_id)
        return "Accepted", self.heartbeat_interval

    async def _back(self, charger_id: str) -> None:
        if self.on_back is None:
            return
        try:
            await self.on_back(charger_id)
        except Exception:  # its jobs run anyway, only a little later
            log.exception("waking the jobs of charger %s failed", charger_id)

    async def heartbeat(self, charger_id: str, at: datetime) -> None:
        self.store.record_heartbeat(charger_id, at)
        await self.store.flush()

    async def status(
        self, charger_id: str, connector_id: int, status: str, error_code: str | None, at: datetime
    ) -> None:
        await self.store.record_status(charger_id, connector_id, status, error_code, at)

    async def firmware_status(self, charger_id: str, status: str, at: datetime) -> None:
        await self.store.record_firmware_status(charger_id, status, at)

    async def authorize(self, id_tag: str, charger_id: str | None = None) -> str:
        """Accepted / Blocked / Expired / Invalid for an RFID tag or session token, at
        ``charger_id`` (a session token works at its own charger only, until revoked)."""
        return await self.store.id_tag_status(id_tag, charger_id)

    async def tag_info(self, id_tag: str, charger_id: str, version: str) -> dict[str, Any]:
        """What Authorize (and a transaction's start) answers for a tag: idTagInfo (1.6)
        or idTokenInfo (2.0.1), an accepted one with how long the charger may cache
        it; a tag never seen is kept for an operator to review."""
        status, expires = await self.store.id_tag_lookup(id_tag, charger_id)
        if status == "Unknown":
            await self.store.add_review(charger_id, "unknown_id_tag", {"id_tag": id_tag[:36]})
        return tag_info(status, expires, version)

    async def add_id_tag(
        self, id_tag: str, status: str = "Accepted", note: str | None = None
    ) -> None:
        """Register an RFID card (or a session token) that Authorize accepts."""
        if not 1 <= len(id_tag) <= 20:
            raise InvalidInput("id tags are 1-20 characters (OCPP IdToken)")
        if status not in ("Accepted", "Blocked"):
            raise InvalidInput("id tag status must be Accepted or Blocked")
        await self.store.add_id_tag(id_tag, status, note)

    async def report(self, charger_id: str, kind: str, detail: dict[str, object]) -> None:
        """Keep something a charger said for an operator to review."""
        await self.store.add_review(charger_id, kind, dict(detail))


# How long a charger may keep an accepted tag in its authorisation cache.
TAG_CACHE = timedelta(hours=24)
_OCPP16 = {"NoCredit": "Blocked", "Unknown": "Invalid"}


def tag_info(status: str, expires: datetime | None, version: str) -> dict[str, Any]:
    """idTagInfo (1.6: no NoCredit or Unknown, Blocked and Invalid instead) or
    idTokenInfo (2.0.1); an accepted tag carries its cache expiry."""
    until = datetime.now(UTC) + TAG_CACHE
    if expires is not None and expires < until:
        until = expires
    stamp = until.isoformat(timespec="seconds").replace("+00:00", "Z")
    if version == "1.6":
        info: dict[str, Any] = {"status": _OCPP16.get(status, status)}
        if info["status"] == "Accepted":
            info["expiryDate"] = stamp
        return info
    info = {"status": status}
    if status == "Accepted":
        info["cacheExpiryDateTime"] = stamp
    return info
