"""Payments, their ledger journals, refunds and disputes, in SQL.

The ledger is append-only: a journal is written once, under a key that names
the movement ("capture:<session>", "refund:<refund id>", ...), so a job run
twice cannot post it twice (the unique (journal, account) constraint says so).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.domain.ledger import Account, Journal, Movement
from plugpay.services.ports.ledger import PaymentRecord, RefundRecord
from plugpay.store import tables as t
from plugpay.store.clock import aware, now
from plugpay.store.database import Database

_P = t.payments
_E = t.ledger_entries
_R = t.refunds
_D = t.disputes


def _payment(row: Any) -> PaymentRecord:
    values = dict(row)
    values["created_at"] = aware(values["created_at"])
    values["updated_at"] = aware(values["updated_at"])
    return PaymentRecord(**values)


def _refund(row: Any) -> RefundRecord:
    values = dict(row)
    values["created_at"] = aware(values["created_at"])
    values["done_at"] = aware(values["done_at"])
    return RefundRecord(**values)


def _journals(rows: Any) -> list[Journal]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row["journal"]].append(row)
    journals = []
    for lines in grouped.values():
        first = lines[0]
        journals.append(
            Journal.of_lines(
                Movement(first["movement"]),
                first["currency"],
                tuple((Account(r["account"]), int(r["amount_minor"])) for r in lines),
            )
        )
    return journals


class SqlPaymentRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _one(self, where: Any) -> PaymentRecord | None:
        row = (
            (await self.conn.execute(select(_P).where(where).with_for_update())).mappings().first()
        )
        return _payment(row) if row else None

    async def open(
        self, session_id: str | None, provider: str, ref: str, currency: str
    ) -> PaymentRecord:
        stamp = now()
        row = (
            (
                await self.conn.execute(
                    insert(_P)
                    .values(
                        session_id=session_id,
                        provider=provider,
                        ref=ref,
                        currency=currency,
                        authorised_minor=0,
                        captured_minor=0,
                        refunded_minor=0,
                        captured_vat_minor=0,
                        status="created",
                        created_at=stamp,
                        updated_at=stamp,
                    )
                    .returning(*_P.c)
                )
            )
            .mappings()
            .one()
        )
        return _payment(row)

    async def get(self, payment_id: int) -> PaymentRecord | None:
        return await self._one(_P.c.id == payment_id)

    async def of_session(self, session_id: str) -> PaymentRecord | None:
        return await self._one(_P.c.session_id == session_id)

    async def by_ref(self, ref: str) -> PaymentRecord | None:
        return await self._one(_P.c.ref == ref)

    async def post(
        self, payment: PaymentRecord, journal_key: str, journal: Journal, **changes: Any
    ) -> bool:
        stamp = now()
        rows = [
            {
                "journal": journal_key,
                "movement": journal.movement,
                "payment_id": payment.id,
                "session_id": payment.session_id,
                "account": account,
                "amount_minor": amount,
                "currency": journal.currency,
                "created_at": stamp,
            }
            for account, amount in journal.lines
        ]
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(insert(_E), rows)
        except IntegrityError:
            return False  # posted before: a job run twice
        if changes:
            await self.conn.execute(
                update(_P).where(_P.c.id == payment.id).values(updated_at=stamp, **changes)
            )
        return True

    async def journals(self, payment_id: int) -> list[Journal]:
        rows = (
            (
                await self.conn.execute(
                    select(_E).where(_E.c.payment_id == payment_id).order_by(_E.c.id)
                )
            )
            .mappings()
            .all()
        )
        return _journals(rows)

    async def add_refund(
        self,
        payment: PaymentRecord,
        key: str,
        amount_minor: int,
        reason: str,
        *,
        source: str = "plugpay",
        provider_ref: str | None = None,
    ) -> tuple[RefundRecord, bool]:
        existing = (await self.conn.execute(select(_R).where(_R.c.key == key))).mappings().first()
        if existing is not None:
            return _refund(existing), False
        row = (
            (
                await self.conn.execute(
                    insert(_R)
                    .values(
                        payment_id=payment.id,
                        session_id=payment.session_id,
                        key=key,
                        amount_minor=amount_minor,
                        reason=reason,
                        state="pending",
                        provider_ref=provider_ref,
                        source=source,
                        created_at=now(),
                    )
                    .returning(*_R.c)
                )
            )
            .mappings()
            .one()
        )
        return _refund(row), True

    async def refunds(self, payment_id: int) -> list[RefundRecord]:
        rows = (
            (
                await self.conn.execute(
                    select(_R).where(_R.c.payment_id == payment_id).order_by(_R.c.id)
                )
            )
            .mappings()
            .all()
        )
        return [_refund(r) for r in rows]

    async def refund(self, refund_id: int) -> RefundRecord | None:
        row = (await self.conn.execute(select(_R).where(_R.c.id == refund_id))).mappings().first()
        return _refund(row) if row else None

    async def refund_by_key(self, key: str) -> RefundRecord | None:
        row = (await self.conn.execute(select(_R).where(_R.c.key == key))).mappings().first()
        return _refund(row) if row else None

    async def refund_by_provider_ref(self, provider_ref: str) -> RefundRecord | None:
        row = (
            (await self.conn.execute(select(_R).where(_R.c.provider_ref == provider_ref)))
            .mappings()
            .first()
        )
        return _refund(row) if row else None

    async def note_refund_ref(self, refund: RefundRecord, provider_ref: str) -> None:
        await self.conn.execute(
            update(_R).where(_R.c.id == refund.id).values(provider_ref=provider_ref)
        )

    async def finish_refund(
        self, refund: RefundRecord, state: str, provider_ref: str | None
    ) -> None:
        await self.conn.execute(
            update(_R)
            .where(_R.c.id == refund.id)
            .values(state=state, provider_ref=provider_ref or refund.provider_ref, done_at=now())
        )

    async def upsert_dispute(
        self,
        payment: PaymentRecord,
        provider_ref: str,
        amount_minor: int,
        status: str,
        reason: str | None,
    ) -> bool:
        stamp = now()
        row = (
            (await self.conn.execute(select(_D).where(_D.c.provider_ref == provider_ref)))
            .mappings()
            .first()
        )
        if row is None:
            await self.conn.execute(
                insert(_D).values(
                    payment_id=payment.id,
                    provider_ref=provider_ref,
                    amount_minor=amount_minor,
                    status=status,
                    reason=reason,
                    funds_withdrawn=False,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            return False
        await self.conn.execute(
            update(_D)
            .where(_D.c.id == row["id"])
            .values(status=status, amount_minor=amount_minor, updated_at=stamp)
        )
        return bool(row["funds_withdrawn"])

    async def mark_dispute_withdrawn(self, provider_ref: str, withdrawn: bool) -> None:
        await self.conn.execute(
            update(_D).where(_D.c.provider_ref == provider_ref).values(funds_withdrawn=withdrawn)
        )


class SqlLedgerQueries:
    """Reads of payments and the ledger, outside any unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def of_session(self, session_id: str) -> PaymentRecord | None:
        async with self.db.connect() as conn:
            row = (
                (await conn.execute(select(_P).where(_P.c.session_id == session_id)))
                .mappings()
                .first()
            )
        return _payment(row) if row else None

    async def refunds_of_session(self, session_id: str) -> list[RefundRecord]:
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(_R).where(_R.c.session_id == session_id).order_by(_R.c.id)
                    )
                )
                .mappings()
                .all()
            )
        return [_refund(r) for r in rows]

    async def refunded_of_sessions(self, session_ids: Sequence[str]) -> dict[str, int]:
        if not session_ids:
            return {}
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(_R.c.session_id, func.sum(_R.c.amount_minor))
                .where(_R.c.session_id.in_(list(session_ids)), _R.c.state == "succeeded")
                .group_by(_R.c.session_id)
            )
            return {str(session_id): int(total) for session_id, total in rows}

    async def journals_of_session(self, session_id: str) -> list[Journal]:
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(_E).where(_E.c.session_id == session_id).order_by(_E.c.id)
                    )
                )
                .mappings()
                .all()
            )
        return _journals(rows)

    async def trial_balance(self) -> dict[tuple[str, str], int]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(_E.c.currency, _E.c.account, func.sum(_E.c.amount_minor)).group_by(
                    _E.c.currency, _E.c.account
                )
            )
            return {(r[0], r[1]): int(r[2]) for r in rows}
