"""The unit of work: one use case, one database transaction.

A use case opens a unit, reads what it needs (rows it will change are
locked), changes state, adds the jobs that must follow, and the unit commits
all of it at once when the block ends without an exception. After a crash at
any instant the database holds either the old state or the new state with its
follow-up work queued, never one without the other. Nothing slow (a payment
provider, a charger) is awaited inside a unit.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from plugpay.services.ports.accounts import AccountRepository
from plugpay.services.ports.cards import CardRepository
from plugpay.services.ports.jobs import JobRepository
from plugpay.services.ports.ledger import PaymentRepository
from plugpay.services.ports.rfid import RfidRepository
from plugpay.services.ports.sessions import SessionRepository
from plugpay.services.ports.webhooks import WebhookRepository


class UnitOfWork(Protocol):
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def jobs(self) -> JobRepository: ...
    @property
    def payments(self) -> PaymentRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...
    @property
    def accounts(self) -> AccountRepository: ...
    @property
    def cards(self) -> CardRepository: ...
    @property
    def rfid(self) -> RfidRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
