"""build_runtime(settings): every adapter built and wired to the services it serves.

With app.py this is the one place that knows every piece: the units of work,
the job worker and its handlers, the periodic work, the stores, the gateway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from plugpay.config import ConfigError, Settings
from plugpay.domain.session import Timeouts
from plugpay.identity.oidc import OidcProvider
from plugpay.identity.passwords import Argon2Hasher
from plugpay.limits.memory import MemoryRateLimiter
from plugpay.limits.redis import RedisRateLimiter
from plugpay.live.memory import MemoryLiveBus
from plugpay.live.redis import RedisLiveBus
from plugpay.notify.receipts import (
    card_refused_notification,
    idle_notification,
    receipt_notification,
)
from plugpay.notify.webpush import WebPushSender, load_or_create_dev_key
from plugpay.ocpp.registry import ConnectionRegistry, LocalChargerLink
from plugpay.ocpp.relay import RedisChargerLink
from plugpay.payments.demo_gateway import DemoGateway
from plugpay.payments.stripe_gateway import StripeGateway
from plugpay.services.accounts import GroupService, SignInService
from plugpay.services.cards import SavedCardService
from plugpay.services.chargers import ChargerService
from plugpay.services.charging import ChargingService
from plugpay.services.commands import CommandService
from plugpay.services.container import Services
from plugpay.services.deadlines import DeadlineSweeper
from plugpay.services.history import HistoryService
from plugpay.services.jobs import Handler, JobWorker
from plugpay.services.limits import GuestStartLimits, Limit
from plugpay.services.live_pricing import LivePricing
from plugpay.services.local_lists import LocalListService
from plugpay.services.ports import PaymentGateway, PushSender
from plugpay.services.ports.jobs import Job, JobKind, NewJob
from plugpay.services.receipts import Operator, ReceiptService
from plugpay.services.refunds import RefundService
from plugpay.services.reservations import ReservationService
from plugpay.services.rfid import RfidService
from plugpay.services.settlement import SettlementService
from plugpay.services.tariffs import TariffService
from plugpay.services.transactions import TransactionService
from plugpay.services.webhooks import WebhookService
from plugpay.store.accounts import SqlAccountStore
from plugpay.store.cards import SqlCardStore
from plugpay.store.chargers import SqlChargerStore
from plugpay.store.database import Database
from plugpay.store.demo_payments import SqlDemoPaymentStore
from plugpay.store.jobs import SqlJobQueue
from plugpay.store.local_lists import SqlLocalListStore
from plugpay.store.messages import SqlMessageLog
from plugpay.store.payments import SqlLedgerQueries
from plugpay.store.rfid import SqlRfidStore
from plugpay.store.sessions import SqlSessionStore
from plugpay.store.tariffs import SqlTariffStore
from plugpay.store.transactions import SqlTransactionStore
from plugpay.store.uow import unit_of_work_factory
from plugpay.store.writer import BatchWriter
from plugpay.web.format import money as format_money

log = logging.getLogger(__name__)

# Periodic work, as jobs: each runs once per period across all instances.
SWEEP_SECONDS = 1
LOG_RETENTION_SECONDS = 600  # the OCPP message log is purged of old rows
INSTANCE_SWEEP_SECONDS = 30  # several instances: look for instances gone without a goodbye
JOB_PURGE_SECONDS = 3600
JOBS_KEPT = timedelta(days=7)  # done jobs are kept this long (failed ones until retried)
GUEST_START_WINDOW = 600.0  # seconds the guest start limits count over


@dataclass
class Runtime:
    """Everything one server instance holds; tests reach in through ``app.state.runtime``."""

    settings: Settings
    db: Database
    writer: BatchWriter
    charger_store: SqlChargerStore
    transaction_store: SqlTransactionStore
    message_log: SqlMessageLog
    tariff_store: SqlTariffStore
    session_store: SqlSessionStore
    ledger: SqlLedgerQueries
    jobs: SqlJobQueue
    registry: ConnectionRegistry
    live: MemoryLiveBus | RedisLiveBus
    payments: PaymentGateway
    link: LocalChargerLink | RedisChargerLink
    services: Services
    periodic: list[NewJob] = field(default_factory=list)

    async def start(self) -> None:
        self.db.start()
        if isinstance(self.link, RedisChargerLink):
            await self.link.start()
            await self.release_gone_instances()
        else:
            # Alone, this instance holds no charger yet: flags left by a crash are stale.
            await self.charger_store.reset_connections()
        await self.jobs.ensure(self.periodic)

    async def release_gone_instances(self, job: Job | None = None) -> int:
        """Several instances: clear the connected flags of chargers held by an
        instance whose lease ended (it crashed; a clean stop clears its own)."""
        if not isinstance(self.link, RedisChargerLink):
            return 0
        instances = await self.charger_store.connected_instances()
        alive = await self.link.alive(instances)
        released = 0
        for instance in instances:
            if instance not in alive:
                count = await self.charger_store.release_instance(instance, datetime.now(UTC))
                log.warning("instance %s is gone: %d chargers marked disconnected", instance, count)
                released += count
        return released

    async def purge_message_log(self, job: Job | None = None) -> int:
        days = self.settings.message_log_days
        if days <= 0:
            return 0
        gone = await self.message_log.purge(datetime.now(UTC) - timedelta(days=days))
        if gone:
            log.info("purged %d OCPP message log rows older than %g days", gone, days)
        return gone

    async def purge_jobs(self, job: Job | None = None) -> int:
        return await self.jobs.purge(datetime.now(UTC) - JOBS_KEPT)

    def use_payments(self, payments: PaymentGateway) -> None:
        """Put another gateway in front of every service (tests put faults there)."""
        self.payments = payments
        s = self.services
        s.reservations.payments = payments
        s.settlement.payments = payments
        s.refunds.payments = payments
        s.webhooks.payments = payments
        s.cards.payments = payments
        s.rfid.payments = payments

    async def close(self) -> None:
        await self.writer.close()
        await self.live.close()
        limiter = self.services.reservations.limiter
        if isinstance(limiter, RedisRateLimiter):
            await limiter.close()
        if isinstance(self.link, RedisChargerLink):
            await self.link.close()
        close_payments = getattr(self.payments, "close", None)
        if close_payments is not None:
            await close_payments()
        await self.db.dispose()


def build_payments(settings: Settings, db: Database) -> PaymentGateway:
    if settings.payments == "stripe":
        if not settings.stripe_secret_key or not settings.stripe_publishable_key:
            raise ConfigError(
                "PLUGPAY_STRIPE_SECRET_KEY and PLUGPAY_STRIPE_PUBLISHABLE_KEY are required"
            )
        return StripeGateway(
            settings.stripe_secret_key,
            settings.stripe_publishable_key,
            settings.stripe_webhook_secret or "",
            settings.stripe_api_base,
            # A replaced API base is a Stripe stand-in (localstripe in the tests),
            # which refuses a few create parameters real Stripe needs.
            localstripe=settings.stripe_api_base is not None,
        )
    if settings.production:
        raise ConfigError("PLUGPAY_PAYMENTS=demo is refused in production: set the Stripe keys")
    return DemoGateway(SqlDemoPaymentStore(db), webhook_secret=settings.key("demo-signatures"))


def build_push(settings: Settings) -> PushSender | None:
    key = settings.vapid_private_key
    if key is None:
        if settings.production:
            raise ConfigError("PLUGPAY_VAPID_PRIVATE_KEY is required in production")
        key = load_or_create_dev_key(Path(".plugpay-vapid"))
    try:
        return WebPushSender(key, settings.vapid_subject, allow_private=settings.push_allow_private)
    except ValueError as exc:
        raise ConfigError(f"PLUGPAY_VAPID_PRIVATE_KEY or PLUGPAY_VAPID_SUBJECT: {exc}") from None


def timeouts_of(settings: Settings) -> Timeouts:
    return Timeouts(
        reservation=timedelta(seconds=settings.reservation_timeout),
        start=timedelta(seconds=settings.start_timeout),
        silent=timedelta(seconds=settings.silent_timeout),
    )


def build_runtime(
    settings: Settings, *, push: PushSender | None = None, worker: dict[str, Any] | None = None
) -> Runtime:
    """``worker``: JobWorker options (tests shorten the lease)."""
    db = Database(settings.database_url)
    writer = BatchWriter(db)
    job_queue = SqlJobQueue(db, writer)
    job_worker = JobWorker(
        job_queue, **{"lease_seconds": settings.job_lease_seconds, **(worker or {})}
    )
    uow = unit_of_work_factory(db, job_worker.wake)
    charger_store = SqlChargerStore(db, writer)
    transaction_store = SqlTransactionStore(db, writer, on_jobs=job_worker.wake)
    message_log = SqlMessageLog(db, writer)
    tariff_store = SqlTariffStore(db)
    session_store = SqlSessionStore(db, writer)
    ledger = SqlLedgerQueries(db)
    registry = ConnectionRegistry()
    bus: MemoryLiveBus | RedisLiveBus = (
        RedisLiveBus(settings.redis_url) if settings.redis_url else MemoryLiveBus()
    )
    payments = build_payments(settings, db)
    link: LocalChargerLink | RedisChargerLink = (
        RedisChargerLink(registry, settings.redis_url, settings.ocpp_call_timeout)
        if settings.redis_url
        else LocalChargerLink(registry)
    )
    timeouts = timeouts_of(settings)
    commands = CommandService(link)
    tariffs = TariffService(tariff_store)
    limiter: MemoryRateLimiter | RedisRateLimiter = (
        RedisRateLimiter(settings.redis_url) if settings.redis_url else MemoryRateLimiter()
    )
    reservations = ReservationService(
        uow,
        session_store,
        tariffs,
        payments,
        bus,
        timeouts,
        limiter,
        GuestStartLimits(
            per_address=Limit(settings.guest_starts_per_address, GUEST_START_WINDOW),
            per_connector=Limit(settings.guest_starts_per_connector, GUEST_START_WINDOW),
        ),
        default_hold=settings.default_hold,
        demo=payments if isinstance(payments, DemoGateway) else None,
    )
    charging = ChargingService(uow, commands, bus, timeouts, session_store)
    pricing = LivePricing(session_store, tariffs, charging, bus, timeouts)
    settlement = SettlementService(
        uow,
        session_store,
        payments,
        pricing,
        charging,
        bus,
        timeouts,
        push=push,
        public_url=settings.public_url,
        receipt_text=lambda total, url, lang: receipt_notification(
            format_money(total.minor, total.currency, lang), url, lang
        ),
        accounts=SqlAccountStore(db),
        idle_text=idle_notification,
        refused_text=card_refused_notification,
    )
    deadlines = DeadlineSweeper(uow, settlement, bus, timeouts)
    refunds = RefundService(uow, payments)
    webhooks = WebhookService(uow, payments, reservations, charging, timeouts)
    transactions = TransactionService(transaction_store, charger_store, listener=pricing)
    chargers = ChargerService(charger_store, Argon2Hasher(), settings.heartbeat_interval)
    rfid = RfidService(
        uow,
        SqlRfidStore(db),
        session_store,
        SqlAccountStore(db),
        SqlCardStore(db),
        reservations,
        payments,
        bus,
        timeouts,
    )
    charging.card_start = rfid.start_from_card
    local_lists = LocalListService(
        uow, SqlLocalListStore(db), commands, boot_delay=settings.local_list_delay
    )
    rfid.on_change = local_lists.queue
    chargers.on_back = charging.charger_back
    chargers.boot_job = local_lists.boot_job
    charging.spread_wake = {JobKind.LOCAL_LIST: settings.local_list_delay}
    services = Services(
        chargers=chargers,
        transactions=transactions,
        commands=commands,
        tariffs=tariffs,
        reservations=reservations,
        charging=charging,
        pricing=pricing,
        settlement=settlement,
        deadlines=deadlines,
        refunds=refunds,
        webhooks=webhooks,
        receipts=ReceiptService(
            session_store,
            tariff_store,
            ledger,
            Operator(settings.operator_name, settings.operator_address, settings.operator_vat_id),
        ),
        worker=job_worker,
        sign_in=SignInService(
            uow,
            SqlAccountStore(db),
            [
                OidcProvider(p.name, p.issuer, p.client_id, p.client_secret, title=p.title)
                for p in settings.oidc_providers
            ],
            settings.key("sign-in"),
            settings.public_url,
            provider_groups={p.name: p.groups for p in settings.oidc_providers},
        ),
        groups=GroupService(uow, SqlAccountStore(db)),
        history=HistoryService(session_store, ledger),
        rfid=rfid,
        cards=SavedCardService(
            uow,
            SqlCardStore(db),
            payments,
            demo=payments if isinstance(payments, DemoGateway) else None,
            on_change=local_lists.queue,
        ),
        push_key=push.public_key if push else None,
    )
    runtime = Runtime(
        settings,
        db,
        writer,
        charger_store,
        transaction_store,
        message_log,
        tariff_store,
        session_store,
        ledger,
        job_queue,
        registry,
        bus,
        payments,
        link,
        services,
    )
    handlers: dict[str, Handler] = {
        JobKind.SESSION_START: charging.run_start,
        JobKind.SESSION_STOP: charging.run_stop,
        JobKind.LATE_STOP: charging.run_late_stop,
        JobKind.TRANSACTION_STARTED: charging.run_transaction_started,
        JobKind.IDLE_NOTICE: settlement.run_idle_notice,
        JobKind.RECOVER_HOLD: reservations.run_recover_hold,
        JobKind.CARD_REFUSED: settlement.run_card_refused,
        JobKind.LOCAL_LIST: local_lists.run_sync,
        JobKind.TRANSACTION_ENDED: settlement.run_transaction_ended,
        JobKind.CAPTURE: settlement.run_capture,
        JobKind.RELEASE: settlement.run_release,
        JobKind.RECEIPT: settlement.run_receipt,
        JobKind.REFUND: refunds.run_refund,
        JobKind.DELETE_CUSTOMER: services.cards.run_delete_customer,
        JobKind.WEBHOOK: webhooks.run,
        JobKind.SWEEP_SESSIONS: deadlines.run,
        JobKind.PURGE_MESSAGE_LOG: runtime.purge_message_log,
        JobKind.PURGE_JOBS: runtime.purge_jobs,
        JobKind.SWEEP_INSTANCES: runtime.release_gone_instances,
    }
    for kind, handler in handlers.items():
        job_worker.register(kind, handler)
    runtime.periodic = periodic_jobs(settings)
    return runtime


def periodic_jobs(settings: Settings) -> list[NewJob]:
    jobs = [
        NewJob(JobKind.SWEEP_SESSIONS, "periodic:sweep.sessions", every_seconds=SWEEP_SECONDS),
        NewJob(JobKind.PURGE_JOBS, "periodic:purge.jobs", every_seconds=JOB_PURGE_SECONDS),
        NewJob(
            JobKind.PURGE_MESSAGE_LOG,
            "periodic:purge.message_log",
            every_seconds=LOG_RETENTION_SECONDS,
            run_at=datetime.now(UTC) + timedelta(seconds=LOG_RETENTION_SECONDS),
        ),
    ]
    if settings.redis_url:
        jobs.append(
            NewJob(
                JobKind.SWEEP_INSTANCES,
                "periodic:sweep.instances",
                every_seconds=INSTANCE_SWEEP_SECONDS,
                run_at=datetime.now(UTC) + timedelta(seconds=INSTANCE_SWEEP_SECONDS),
            )
        )
    return jobs
