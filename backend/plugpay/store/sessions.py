"""Charging sessions, their payment jobs, ledger, webhook events and push subscriptions."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from plugpay.services.ports import (
    ConnectorTaken,
    PaymentJob,
    PushSubscription,
    Reading,
    SessionRecord,
    TransactionInfo,
    WebhookEvent,
)
from plugpay.store import tables as t
from plugpay.store.chargers import aware, now
from plugpay.store.database import Database

_S = t.charging_sessions
_TIMES = {
    "created_at",
    "authorized_at",
    "start_deadline",
    "started_at",
    "last_reading_at",
    "stopped_at",
    "settled_at",
    "receipt_pushed_at",
}


@functools.cache
def _live_update(columns: tuple[str, ...]) -> Any:
    """The live-figures UPDATE for these columns, built once: it runs for every
    reading of every charging session, and building it costs more than running it."""
    return (
        update(_S)
        .where(_S.c.id == bindparam("session_id"), _S.c.state.in_(("CHARGING", "STOPPING")))
        .values(
            updated_at=bindparam("updated_at"),
            version=_S.c.version + 1,
            **{c: bindparam(f"new_{c}") for c in columns},
        )
        .returning(*_S.c)
    )


def _payment_job(r: Any) -> PaymentJob:
    return PaymentJob(
        r["session_id"],
        r["kind"],
        r["amount_minor"],
        r["idempotency_key"],
        r["attempts"],
        aware(r["give_up_at"]) or r["give_up_at"],
    )


def _record(row: Any) -> SessionRecord:
    values: dict[str, Any] = {k: (aware(v) if k in _TIMES else v) for k, v in dict(row).items()}
    values.pop("updated_at", None)
    return SessionRecord(**values)


class SqlSessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, values: dict[str, Any]) -> None:
        stamp = now()
        try:
            async with self.db.begin() as conn:
                await conn.execute(
                    insert(_S).values(
                        **values,
                        state="CREATED",
                        energy_wh=0,
                        cost_minor=0,
                        created_at=stamp,
                        updated_at=stamp,
                        version=0,
                    )
                )
        except IntegrityError as exc:
            if "connector" in str(exc.orig).lower() or "uq_charging_sessions_active" in str(
                exc.orig
            ):
                raise ConnectorTaken(f"connector {values['connector_id']} is taken") from None
            raise

    async def _one(self, where: Any) -> SessionRecord | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(_S).where(where))).mappings().first()
        return _record(row) if row else None

    async def get(self, session_id: str) -> SessionRecord | None:
        return await self._one(_S.c.id == session_id)

    async def by_id_tag(self, id_tag: str) -> SessionRecord | None:
        return await self._one(_S.c.id_tag == id_tag)

    async def by_transaction(self, transaction_pk: int) -> SessionRecord | None:
        return await self._one(_S.c.transaction_pk == transaction_pk)

    async def by_payment_ref(self, payment_ref: str) -> SessionRecord | None:
        return await self._one(_S.c.payment_ref == payment_ref)

    async def active_on(self, charger_id: str, connector_id: int) -> SessionRecord | None:
        return await self._one(
            (_S.c.charger_id == charger_id)
            & (_S.c.connector_id == connector_id)
            & _S.c.state.in_(t.ACTIVE_SESSION_STATES)
        )

    async def transition(
        self, session_id: str, sources: frozenset[str], target: str, **values: Any
    ) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                update(_S)
                .where(_S.c.id == session_id, _S.c.state.in_(sorted(sources)))
                .values(state=target, updated_at=now(), version=_S.c.version + 1, **values)
            )
        return bool(result.rowcount == 1)

    async def update(self, session_id: str, **values: Any) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                update(_S)
                .where(_S.c.id == session_id)
                .values(updated_at=now(), version=_S.c.version + 1, **values)
            )

    async def update_live(self, session_id: str, **values: Any) -> SessionRecord | None:
        """Set a charging session's running figures and return it, in one statement.

        Only while it is CHARGING or STOPPING; None once it has moved on.
        """
        statement = _live_update(tuple(sorted(values)))
        params = {f"new_{k}": v for k, v in values.items()}
        async with self.db.begin() as conn:
            row = (
                (
                    await conn.execute(
                        statement, {"session_id": session_id, "updated_at": now(), **params}
                    )
                )
                .mappings()
                .first()
            )
        return _record(row) if row else None

    async def in_states(self, states: frozenset[str]) -> list[SessionRecord]:
        async with self.db.connect() as conn:
            rows = (
                (await conn.execute(select(_S).where(_S.c.state.in_(sorted(states)))))
                .mappings()
                .all()
            )
        return [_record(r) for r in rows]

    async def timers_due(
        self, now: datetime, unpaid_before: datetime, silent_before: datetime
    ) -> list[SessionRecord]:
        # The database picks the few due sessions: reading every live session once
        # a second would hold the event loop for milliseconds per hundred sessions.
        last_sign = func.coalesce(_S.c.last_reading_at, _S.c.started_at, _S.c.created_at)
        due = or_(
            and_(_S.c.state == "CREATED", _S.c.created_at < unpaid_before),
            and_(
                _S.c.state == "STARTING",
                _S.c.start_deadline.is_not(None),
                _S.c.start_deadline < now,
            ),
            and_(
                _S.c.state.in_(("CHARGING", "STOPPING")),
                _S.c.transaction_pk.is_not(None),
                last_sign < silent_before,
            ),
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(_S).where(due))).mappings().all()
        return [_record(r) for r in rows]

    async def transaction_readings(self, transaction_pk: int) -> list[Reading]:
        m = t.meter_readings
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(m.c.at, m.c.energy_wh, m.c.power_w)
                    .where(
                        m.c.transaction_id == transaction_pk,
                        m.c.flag == "",
                        m.c.energy_wh.is_not(None),
                    )
                    .order_by(m.c.at)
                )
            ).all()
        return [Reading(aware(r.at) or r.at, int(r.energy_wh), r.power_w) for r in rows]

    async def transaction_info(self, transaction_pk: int) -> TransactionInfo | None:
        tx = t.transactions
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        tx.c.ocpp_transaction_id,
                        tx.c.started_at,
                        tx.c.stopped_at,
                        tx.c.status,
                        tx.c.meter_start_wh,
                        tx.c.meter_stop_wh,
                    ).where(tx.c.id == transaction_pk)
                )
            ).first()
        if row is None:
            return None
        return TransactionInfo(
            row.ocpp_transaction_id,
            aware(row.started_at),
            aware(row.stopped_at),
            row.status == "ended",
            row.meter_start_wh,
            row.meter_stop_wh,
        )

    async def charger_connected(self, charger_id: str) -> bool:
        async with self.db.connect() as conn:
            value = await conn.scalar(
                select(t.chargers.c.connected).where(t.chargers.c.id == charger_id)
            )
        return bool(value)

    # -- payment jobs and the ledger ------------------------------------------
    async def add_payment_job(self, job: PaymentJob) -> None:
        try:
            async with self.db.begin() as conn:
                await conn.execute(
                    insert(t.payment_jobs).values(
                        session_id=job.session_id,
                        kind=job.kind,
                        amount_minor=job.amount_minor,
                        idempotency_key=job.idempotency_key,
                        attempts=0,
                        next_attempt_at=now(),
                        give_up_at=job.give_up_at,
                    )
                )
        except IntegrityError:
            pass  # one job per session: the first one stands

    async def due_payment_jobs(self, at: datetime) -> list[PaymentJob]:
        j = t.payment_jobs
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(j).where(j.c.done_at.is_(None), j.c.next_attempt_at <= at)
                    )
                )
                .mappings()
                .all()
            )
        return [_payment_job(r) for r in rows]

    async def payment_job(self, session_id: str) -> PaymentJob | None:
        j = t.payment_jobs
        async with self.db.connect() as conn:
            r = (
                (
                    await conn.execute(
                        select(j).where(j.c.session_id == session_id, j.c.done_at.is_(None))
                    )
                )
                .mappings()
                .first()
            )
        if r is None:
            return None
        return _payment_job(r)

    async def payment_job_retry(self, session_id: str, error: str, next_at: datetime) -> None:
        j = t.payment_jobs
        async with self.db.begin() as conn:
            await conn.execute(
                update(j)
                .where(j.c.session_id == session_id)
                .values(attempts=j.c.attempts + 1, last_error=error[:300], next_attempt_at=next_at)
            )

    async def payment_job_done(self, session_id: str) -> None:
        j = t.payment_jobs
        async with self.db.begin() as conn:
            await conn.execute(update(j).where(j.c.session_id == session_id).values(done_at=now()))

    async def settle(
        self,
        session_id: str,
        target: str,
        captured_minor: int,
        payment_ref: str,
        currency: str,
        card_brand: str | None,
        card_last4: str | None,
    ) -> bool:
        stamp = now()
        async with self.db.begin() as conn:
            moved = await conn.execute(
                update(_S)
                .where(_S.c.id == session_id, _S.c.state == "STOPPED")
                .values(
                    state=target,
                    captured_minor=captured_minor,
                    settled_at=stamp,
                    card_brand=card_brand,
                    card_last4=card_last4,
                    updated_at=stamp,
                    version=_S.c.version + 1,
                )
            )
            if moved.rowcount != 1:
                return False
            await conn.execute(
                insert(t.ledger_entries).values(
                    session_id=session_id,
                    kind="capture",
                    amount_minor=captured_minor,
                    currency=currency,
                    payment_ref=payment_ref,
                    created_at=stamp,
                )
            )
            await conn.execute(
                update(t.payment_jobs)
                .where(t.payment_jobs.c.session_id == session_id)
                .values(done_at=stamp)
            )
        return True

    # -- webhooks, push, id tags ------------------------------------------------
    async def record_webhook_event(self, event: WebhookEvent, provider: str) -> bool:
        try:
            async with self.db.begin() as conn:
                await conn.execute(
                    insert(t.webhook_events).values(
                        id=event.id,
                        provider=provider,
                        type=event.type,
                        payment_ref=event.payment_ref,
                        received_at=now(),
                    )
                )
        except IntegrityError:
            # Seen before. If acting on it failed half-way (the provider could not be
            # read), the provider's redelivery must be acted on: acting again is safe,
            # the intake re-reads the PaymentIntent and every state change is a
            # compare-and-set.
            async with self.db.connect() as conn:
                processed = await conn.scalar(
                    select(t.webhook_events.c.processed_at).where(t.webhook_events.c.id == event.id)
                )
            return processed is None
        return True

    async def webhook_processed(self, event_id: str) -> None:
        w = t.webhook_events
        async with self.db.begin() as conn:
            await conn.execute(update(w).where(w.c.id == event_id).values(processed_at=now()))

    async def add_push_subscription(self, session_id: str, sub: PushSubscription) -> None:
        p = t.push_subscriptions
        async with self.db.begin() as conn:
            await conn.execute(
                p.delete().where(p.c.session_id == session_id, p.c.endpoint == sub.endpoint)
            )
            await conn.execute(
                insert(p).values(
                    session_id=session_id,
                    endpoint=sub.endpoint,
                    p256dh=sub.p256dh,
                    auth=sub.auth,
                    created_at=now(),
                )
            )

    async def push_subscriptions(self, session_id: str) -> list[PushSubscription]:
        p = t.push_subscriptions
        async with self.db.connect() as conn:
            rows = (
                (await conn.execute(select(p).where(p.c.session_id == session_id))).mappings().all()
            )
        return [PushSubscription(r["endpoint"], r["p256dh"], r["auth"]) for r in rows]

    async def remove_push_subscription(self, session_id: str, endpoint: str) -> None:
        p = t.push_subscriptions
        async with self.db.begin() as conn:
            await conn.execute(
                p.delete().where(p.c.session_id == session_id, p.c.endpoint == endpoint)
            )

    async def claim_receipt_push(self, session_id: str) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                update(_S)
                .where(_S.c.id == session_id, _S.c.receipt_pushed_at.is_(None))
                .values(receipt_pushed_at=now())
            )
        return bool(result.rowcount == 1)

    async def add_id_tag(self, id_tag: str, note: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                insert(t.id_tags).values(
                    id_tag=id_tag,
                    status="Accepted",
                    note=note,
                    expires_at=now() + timedelta(days=2),
                    created_at=now(),
                )
            )


class SqlDemoPaymentStore:
    """Keeps the demo provider's payment intents across restarts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, ref: str) -> dict[str, Any] | None:
        async with self.db.connect() as conn:
            value = await conn.scalar(
                select(t.demo_payments.c.data).where(t.demo_payments.c.ref == ref)
            )
        return dict(value) if value is not None else None

    async def save(self, ref: str, data: dict[str, Any]) -> None:
        d = t.demo_payments
        async with self.db.begin() as conn:
            changed = await conn.execute(
                update(d).where(d.c.ref == ref).values(data=data, updated_at=now())
            )
            if changed.rowcount == 0:
                await conn.execute(insert(d).values(ref=ref, data=data, updated_at=now()))
