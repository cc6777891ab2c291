"""The set of services one server instance runs with (built in app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from plugpay.services.chargers import ChargerService
from plugpay.services.commands import CommandService
from plugpay.services.receipts import ReceiptService
from plugpay.services.sessions import SessionService
from plugpay.services.settlement import SettlementService
from plugpay.services.tariffs import TariffService
from plugpay.services.transactions import TransactionService
from plugpay.services.webhooks import WebhookService


@dataclass
class Services:
    chargers: ChargerService
    transactions: TransactionService
    commands: CommandService
    tariffs: TariffService
    sessions: SessionService
    settlement: SettlementService
    receipts: ReceiptService
    webhooks: WebhookService
    push_key: str | None = None
