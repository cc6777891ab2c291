"""The services one server instance runs with (built in app.py), by type."""

from __future__ import annotations

from dataclasses import dataclass

from plugpay.services.accounts import GroupService, SignInService
from plugpay.services.cards import SavedCardService
from plugpay.services.chargers import ChargerService
from plugpay.services.charging import ChargingService
from plugpay.services.commands import CommandService
from plugpay.services.deadlines import DeadlineSweeper
from plugpay.services.history import HistoryService
from plugpay.services.jobs import JobWorker
from plugpay.services.live_pricing import LivePricing
from plugpay.services.receipts import ReceiptService
from plugpay.services.refunds import RefundService
from plugpay.services.reservations import ReservationService
from plugpay.services.rfid import RfidService
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
    reservations: ReservationService
    charging: ChargingService
    pricing: LivePricing
    settlement: SettlementService
    deadlines: DeadlineSweeper
    refunds: RefundService
    webhooks: WebhookService
    receipts: ReceiptService
    worker: JobWorker
    sign_in: SignInService
    groups: GroupService
    history: HistoryService
    cards: SavedCardService
    rfid: RfidService
    push_key: str | None = None
