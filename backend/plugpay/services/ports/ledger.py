"""Payments as plugpay records them: holds, their ledger journals, refunds, disputes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from plugpay.domain.ledger import Journal


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    id: int
    session_id: str | None
    provider: str
    ref: str
    currency: str
    authorised_minor: int
    captured_minor: int
    refunded_minor: int
    captured_vat_minor: int
    status: str  # created | authorised | captured | released | expired | disputed
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RefundRecord:
    id: int
    payment_id: int
    session_id: str | None
    key: str
    amount_minor: int
    reason: str
    state: str  # pending | succeeded | failed
    provider_ref: str | None
    source: str  # plugpay | provider
    created_at: datetime
    done_at: datetime | None


class PaymentRepository(Protocol):
    """Payments inside a unit of work; ``get`` and ``by_ref`` lock the row."""

    async def open(
        self, session_id: str | None, provider: str, ref: str, currency: str
    ) -> PaymentRecord: ...
    async def get(self, payment_id: int) -> PaymentRecord | None: ...
    async def of_session(self, session_id: str) -> PaymentRecord | None: ...
    async def by_ref(self, ref: str) -> PaymentRecord | None: ...
    async def post(
        self, payment: PaymentRecord, journal_key: str, journal: Journal, **changes: Any
    ) -> bool:
        """Append ``journal`` once (its key names the movement) and update the payment;
        False, and nothing changed, when that journal is there already."""
        ...

    async def journals(self, payment_id: int) -> list[Journal]: ...
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
        """The refund for ``key`` and whether it is new."""
        ...

    async def refunds(self, payment_id: int) -> list[RefundRecord]: ...
    async def refund(self, refund_id: int) -> RefundRecord | None: ...
    async def refund_by_key(self, key: str) -> RefundRecord | None: ...
    async def refund_by_provider_ref(self, provider_ref: str) -> RefundRecord | None: ...
    async def note_refund_ref(self, refund: RefundRecord, provider_ref: str) -> None:
        """The provider's id of a refund still pending there."""
        ...

    async def finish_refund(
        self, refund: RefundRecord, state: str, provider_ref: str | None
    ) -> None: ...
    async def upsert_dispute(
        self,
        payment: PaymentRecord,
        provider_ref: str,
        amount_minor: int,
        status: str,
        reason: str | None,
    ) -> bool:
        """Record a dispute's latest status; whether its funds were withdrawn before."""
        ...

    async def mark_dispute_withdrawn(self, provider_ref: str, withdrawn: bool) -> None: ...


class LedgerQueries(Protocol):
    """Reads for receipts, the command line and audits."""

    async def of_session(self, session_id: str) -> PaymentRecord | None: ...
    async def refunds_of_session(self, session_id: str) -> list[RefundRecord]: ...
    async def refunded_of_sessions(self, session_ids: Sequence[str]) -> dict[str, int]:
        """Succeeded refunds per session (only sessions with one), in one query."""
        ...

    async def journals_of_session(self, session_id: str) -> list[Journal]: ...
    async def trial_balance(self) -> dict[tuple[str, str], int]:
        """(currency, account) -> balance over the whole ledger."""
        ...
