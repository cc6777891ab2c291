"""Use cases for OCPP transactions: start, meter values, stop, 2.0.1 events.

Each is applied exactly once: a repeated message gets the answer the first
one got and changes nothing. Readings are checked against the previous
register value of their transaction; implausible ones are kept but flagged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from plugpay.domain.metering import MeterSample, register_flag
from plugpay.services.chargers import tag_info
from plugpay.services.ports import (
    ChargerStore,
    EventInput,
    FlaggedSample,
    StartInput,
    StopInput,
    TransactionRef,
    TransactionStore,
)

log = logging.getLogger(__name__)


class TransactionListener(Protocol):
    """Told about new readings once they are durable (the driver's live page listens).

    A transaction's start and end reach the driver's session through jobs the
    store writes with them (``transaction.started`` / ``transaction.ended``):
    durable, applied once, retried until applied. Readings only feed a display,
    so a reading missed here costs nothing (the bill is priced from the store).
    """

    async def on_readings(self, transaction_pk: int, samples: Sequence[FlaggedSample]) -> None: ...


@dataclass
class TransactionService:
    store: TransactionStore
    chargers: ChargerStore
    listener: TransactionListener | None = None
    # Last plausible (time, Wh) per transaction: the reference for the next
    # reading, so the hot path needs no read from the database.
    _last: dict[int, tuple[Any, int]] = field(default_factory=dict)
    # Which charger a transaction belongs to, once checked against the database.
    _owner: dict[int, str] = field(default_factory=dict)

    def _flag(
        self, pk: int | None, ref: TransactionRef | None, samples: Sequence[MeterSample]
    ) -> list[FlaggedSample]:
        if pk is None:
            return [FlaggedSample(s) for s in samples]
        last = self._last.get(pk)
        if last is None and ref is not None and ref.last_energy_wh is not None:
            last = (ref.last_reading_at, ref.last_energy_wh)
        flagged = []
        for sample in samples:
            flag = ""
            if sample.energy_wh is not None:
                if last is not None and sample.at < last[0]:
                    # A late reading (queued while offline): it is checked
                    # against nothing newer; the register order is checked
                    # when the session is priced from all readings in time order.
                    flag = ""
                else:
                    flag = register_flag(
                        last[1] if last else None,
                        last[0] if last else None,
                        sample.energy_wh,
                        sample.at,
                    )
                    if not flag:
                        last = (sample.at, sample.energy_wh)
            flagged.append(FlaggedSample(sample, flag))
        if last is not None:
            self._last[pk] = last
        return flagged

    async def id_tag_info(self, id_tag: str | None, charger_id: str) -> dict[str, Any] | None:
        if id_tag is None:
            return None
        status, expires = await self.chargers.id_tag_lookup(id_tag, charger_id)
        return tag_info(status, expires, "1.6")

    # -- OCPP 1.6 -----------------------------------------------------------
    async def start_16(
        self, start: StartInput, samples: Sequence[MeterSample] = ()
    ) -> tuple[int, dict[str, Any]]:
        """Record a StartTransaction; (transactionId, idTagInfo). Repeats get the same id."""
        status, expires = await self.chargers.id_tag_lookup(start.id_tag, start.charger_id)
        begin = MeterSample(
            at=start.at, energy_wh=start.meter_start_wh, context="Transaction.Begin"
        )
        pk, created = await self.store.start(
            start, [FlaggedSample(begin), *[FlaggedSample(s) for s in samples]]
        )
        if created:
            self._last[pk] = (start.at, start.meter_start_wh)
        return pk, tag_info(status, expires, "1.6")

    async def stop_16(self, stop: StopInput, samples: Sequence[MeterSample]) -> dict[str, Any]:
        """Record a StopTransaction once; an unknown transaction is acked and kept for review."""
        response: dict[str, Any] = {}
        info = await self.id_tag_info(stop.id_tag, stop.charger_id)
        if info is not None:
            response["idTagInfo"] = info
        ref = await self.store.find(stop.charger_id, stop.transaction_pk)
        end = MeterSample(at=stop.at, energy_wh=stop.meter_stop_wh, context="Transaction.End")
        flagged = self._flag(stop.transaction_pk, ref, [*samples, end]) if ref else []
        stored = await self.store.stop(
            StopInput(
                stop.charger_id,
                stop.transaction_pk,
                stop.at,
                stop.meter_stop_wh,
                stop.reason,
                stop.id_tag,
                flagged,
            ),
            response,
        )
        if stored is None:
            await self.chargers.add_review(
                stop.charger_id,
                "unknown_transaction_stop",
                {
                    "transactionId": stop.transaction_pk,
                    "timestamp": stop.at.isoformat(),
                    "meterStop": stop.meter_stop_wh,
                    "reason": stop.reason,
                },
            )
            return response
        self._last.pop(stop.transaction_pk, None)
        self._owner.pop(stop.transaction_pk, None)
        return stored

    async def meter_values(
        self,
        charger_id: str,
        connector_id: int,
        transaction_pk: int | None,
        samples: Sequence[MeterSample],
    ) -> None:
        """Record MeterValues; durable before this returns (the charger is answered after)."""
        ref = None
        if transaction_pk is not None and self._owner.get(transaction_pk) != charger_id:
            ref = await self.store.find(charger_id, transaction_pk)
            if ref is None:
                # Readings for a transaction this charger does not have stay unattached.
                await self.chargers.add_review(
                    charger_id,
                    "meter_values_unknown_transaction",
                    {"transactionId": transaction_pk},
                )
                transaction_pk = None
            else:
                self._owner[transaction_pk] = charger_id
        flagged = self._flag(transaction_pk, ref, samples)
        self.store.record_readings(charger_id, connector_id, transaction_pk, flagged)
        await self._durable(transaction_pk)
        if transaction_pk is not None:
            await self._tell("on_readings", transaction_pk, flagged)

    # -- OCPP 2.0.1 ---------------------------------------------------------
    async def transaction_event(
        self, event: EventInput, samples: Sequence[MeterSample]
    ) -> dict[str, Any]:
        """Apply a TransactionEvent once; a repeat (same transaction, seqNo) is answered alike."""
        response: dict[str, Any] = {}
        if event.id_tag is not None:
            status, expires = await self.chargers.id_tag_lookup(event.id_tag, event.charger_id)
            response["idTokenInfo"] = tag_info(status, expires, "2.0.1")
        ref = await self.store.find_by_ocpp_id(event.charger_id, event.ocpp_transaction_id)
        if event.event_type == "Updated" and ref is not None and event.id_tag is None:
            # The hot path: readings only, buffered and group-committed. An update
            # that authorizes (cable first, idToken later) takes the full path below.
            flagged = self._flag(ref.pk, ref, samples)
            self.store.record_update(ref, _with_samples(event, flagged))
            await self._durable(ref.pk)
            await self._tell("on_readings", ref.pk, flagged)
            return response
        pk = ref.pk if ref else None
        flagged = (
            self._flag(pk, ref, samples) if pk is not None else [FlaggedSample(s) for s in samples]
        )
        stored = await self.store.apply_event(_with_samples(event, flagged), response)
        if event.event_type == "Ended" and ref is not None:
            self._last.pop(ref.pk, None)
        if event.event_type == "Updated" and ref is not None:
            await self._tell("on_readings", ref.pk, flagged)
        return stored

    async def _durable(self, pk: int | None) -> None:
        """Wait until the buffered readings are written; on failure forget what they
        taught us, so the next reading is checked against what is really stored."""
        try:
            await self.store.flush()
        except Exception:
            if pk is not None:
                self._last.pop(pk, None)
                self._owner.pop(pk, None)
            raise

    async def _tell(self, what: str, *args: Any) -> None:
        """Inform the listener; its failure never changes the charger's answer."""
        if self.listener is None:
            return
        try:
            await getattr(self.listener, what)(*args)
        except Exception:
            log.exception("transaction listener %s failed", what)


def _with_samples(event: EventInput, samples: Sequence[FlaggedSample]) -> EventInput:
    return EventInput(
        event.charger_id,
        event.ocpp_transaction_id,
        event.event_type,
        event.seq_no,
        event.at,
        event.offline,
        event.connector_id,
        event.id_tag,
        event.stopped_reason,
        tuple(samples),
    )
