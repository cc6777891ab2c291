"""Local authorisation lists: every charger knows the RFID cards, also offline.

One job per charger (``charger.local_list``, rearmed by every change) keeps its
list in step: it asks the charger for its list version; when that is the one
plugpay last had accepted, it sends only what changed (a Differential update:
new and changed cards, and cards to remove); otherwise, or when a differential
update is refused, the whole list (Full). What the charger accepted is kept with
its version, so a charger restarted with an old list gets the full one again.
The job runs on every card change, every saved-card change and after every
boot (a restarted charger may have lost its list): written with the boot, due a
random moment within ``boot_delay`` seconds, so that a storm of reconnecting
chargers is not also a storm of commands and writes. A job that finds its
charger offline waits for it (the charger's connection wakes it). OCPP 1.6 and
2.0.1 alike.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from plugpay.domain.errors import ChargerOffline, CommandFailed, CommandTimeout, InvalidInput
from plugpay.services.commands import CommandService
from plugpay.services.jobs import RetryLater
from plugpay.services.ports.jobs import Job, JobKind, NewJob
from plugpay.services.ports.local_lists import Entries, LocalListStore
from plugpay.services.ports.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)
# A reconnect storm asks the database once in this long whether any cards exist.
CARDS_CHECK_SECONDS = 10.0
# A job whose charger is offline looks again this long after (or when it connects).
OFFLINE_RETRY_SECONDS = 3600.0


@dataclass
class LocalListService:
    uow: UnitOfWorkFactory
    store: LocalListStore
    commands: CommandService
    boot_delay: float = 300.0
    _any_cards: bool = False
    _checked_at: float = -1e9

    async def queue(self, charger_ids: Sequence[str] | None = None) -> None:
        """Bring these chargers' lists (every charger's: None) in step, from a job."""
        if charger_ids is None:  # the cards changed: the next reconnect asks again
            self._checked_at = -1e9
        chargers = list(charger_ids) if charger_ids is not None else await self.store.chargers()
        async with self.uow() as uow:
            for charger_id in chargers:
                await uow.jobs.add(
                    NewJob(
                        JobKind.LOCAL_LIST,
                        f"local_list:{charger_id}",
                        charger_id=charger_id,
                        rearm=True,
                    )
                )

    async def boot_job(self, charger_id: str) -> NewJob | None:
        """The check a charger's boot sets off, to write with the boot; none where
        there are no cards (asked once in a while, not at every boot of a storm)."""
        moment = time.monotonic()
        if moment - self._checked_at > CARDS_CHECK_SECONDS:
            self._checked_at = moment  # before the query: a storm of boots asks once
            self._any_cards = bool(await self.store.wanted())
        if not self._any_cards:  # (cards all gone: their removal went out when they went)
            return None
        delay = random.uniform(min(1.0, self.boot_delay), self.boot_delay)
        return NewJob(
            JobKind.LOCAL_LIST,
            f"local_list:{charger_id}",
            charger_id=charger_id,
            run_at=datetime.now(UTC) + timedelta(seconds=delay),
            rearm=True,
        )

    async def run_sync(self, job: Job) -> None:
        charger_id = str(job.charger_id)
        wanted = await self.store.wanted()
        sent = await self.store.sent(charger_id)
        if not wanted and (sent is None or not sent[1]):
            return  # no cards, none sent: nothing to keep in step (and nothing asked)
        try:
            version = await self._version(charger_id)
            if version is None:
                return  # the charger keeps no local list
            if sent is not None and sent[0] == version:
                changes = _changes(sent[1], wanted)
                if not changes:
                    return
                if await self._send(charger_id, version + 1, "Differential", changes):
                    await self.store.record(charger_id, version + 1, wanted)
                    return
            # Never sent, out of step (a restart, another system), or refused: all of it.
            full = max(version, sent[0] if sent else 0) + 1
            if await self._send(charger_id, full, "Full", dict(wanted)):
                await self.store.record(charger_id, full, wanted)
            else:
                log.warning("charger %s refused its full local list", charger_id)
        except ChargerOffline:
            raise RetryLater("charger offline", OFFLINE_RETRY_SECONDS) from None
        except (CommandFailed, CommandTimeout) as exc:
            log.info("charger %s: local list not updated (%s)", charger_id, exc)
        except InvalidInput as exc:  # a list our own schema check refuses: a person looks
            log.error("charger %s: local list not sent: %s", charger_id, exc)

    async def _version(self, charger_id: str) -> int | None:
        v16 = await self.commands.version(charger_id) == "1.6"
        answer = await self.commands.send(charger_id, "GetLocalListVersion", {})
        value = answer.get("listVersion" if v16 else "versionNumber")
        if not isinstance(value, int) or value < 0:
            return None  # -1 in 1.6: local lists not supported
        return value

    async def _send(
        self, charger_id: str, version: int, kind: str, entries: dict[str, Any]
    ) -> bool:
        v16 = await self.commands.version(charger_id) == "1.6"
        items = [_entry(tag, value, v16) for tag, value in sorted(entries.items())]
        payload: dict[str, Any] = (
            {"listVersion": version, "updateType": kind}
            if v16
            else {"versionNumber": version, "updateType": kind}
        )
        if items:  # an empty Full list clears the charger's (2.0.1 wants no empty array)
            payload["localAuthorizationList"] = items
        answer = await self.commands.send(charger_id, "SendLocalList", payload)
        return answer.get("status") == "Accepted"


def _changes(sent: Entries, wanted: Entries) -> dict[str, tuple[str, str | None] | None]:
    """What a Differential update carries: new and changed cards, None for removed."""
    changed: dict[str, tuple[str, str | None] | None] = {
        tag: value for tag, value in wanted.items() if sent.get(tag) != value
    }
    for tag in sent:
        if tag not in wanted:
            changed[tag] = None
    return changed


def _entry(tag: str, value: tuple[str, str | None] | None, v16: bool) -> dict[str, Any]:
    if v16:
        entry: dict[str, Any] = {"idTag": tag}
        if value is not None:
            info: dict[str, Any] = {"status": value[0]}
            if value[1]:
                info["expiryDate"] = value[1]
            entry["idTagInfo"] = info
        return entry
    entry = {"idToken": {"idToken": tag, "type": "ISO14443"}}
    if value is not None:
        token_info: dict[str, Any] = {"status": value[0]}
        if value[1]:
            token_info["cacheExpiryDateTime"] = value[1]
        entry["idTokenInfo"] = token_info
    return entry
