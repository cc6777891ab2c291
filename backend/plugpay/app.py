"""create_app(settings): the one place that wires adapters to services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from litestar import Litestar, asgi
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from plugpay.api import health, webhooks
from plugpay.config import ConfigError, Settings
from plugpay.identity.passwords import Argon2Hasher
from plugpay.live.memory import MemoryLiveBus
from plugpay.live.redis import RedisLiveBus
from plugpay.notify.receipts import receipt_notification
from plugpay.notify.webpush import WebPushSender, load_or_create_dev_key
from plugpay.ocpp.registry import ConnectionRegistry, LocalChargerLink
from plugpay.ocpp.relay import RedisChargerLink
from plugpay.ocpp.route import make_ocpp_endpoint
from plugpay.payments.demo_gateway import DemoGateway
from plugpay.payments.stripe_gateway import StripeGateway
from plugpay.services.chargers import ChargerService
from plugpay.services.commands import CommandService
from plugpay.services.container import Services
from plugpay.services.ports import FlaggedSample, PaymentGateway, PushSender
from plugpay.services.receipts import ReceiptService
from plugpay.services.sessions import SessionService, SessionSettings
from plugpay.services.settlement import SettlementService
from plugpay.services.tariffs import TariffService
from plugpay.services.transactions import TransactionService
from plugpay.services.webhooks import WebhookService
from plugpay.store.chargers import SqlChargerStore
from plugpay.store.database import Database
from plugpay.store.messages import SqlMessageLog
from plugpay.store.sessions import SqlDemoPaymentStore, SqlSessionStore
from plugpay.store.tariffs import SqlTariffStore
from plugpay.store.transactions import SqlTransactionStore
from plugpay.store.writer import BatchWriter
from plugpay.web import driver, live, receipt, shell
from plugpay.web.format import money as format_money

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "web" / "templates"
TIMER_SECONDS = 1.0
# How often the OCPP message log is purged of rows past their retention.
LOG_RETENTION_SECONDS = 600.0
# Several instances: how often each looks for instances gone without a goodbye.
INSTANCE_SWEEP_SECONDS = 30.0
# No inline scripts anywhere; Stripe's script, frames and API are the only other origins.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' https://js.stripe.com",
        "frame-src https://js.stripe.com https://hooks.stripe.com https://pay.google.com",
        "connect-src 'self' https://api.stripe.com https://r.stripe.com",
        "img-src 'self' data: https://*.stripe.com",
        "style-src 'self' 'unsafe-inline'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


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
    registry: ConnectionRegistry
    live: MemoryLiveBus | RedisLiveBus
    payments: PaymentGateway
    link: LocalChargerLink | RedisChargerLink
    services: Services

    async def start(self) -> None:
        self.db.start()
        if isinstance(self.link, RedisChargerLink):
            await self.link.start()
            await self.release_gone_instances()
        else:
            # Alone, this instance holds no charger yet: flags left by a crash are stale.
            await self.charger_store.reset_connections()

    async def release_gone_instances(self) -> int:
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

    async def close(self) -> None:
        await self.writer.close()
        await self.live.close()
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
    return DemoGateway(SqlDemoPaymentStore(db), webhook_secret=settings.secret_key)


def build_push(settings: Settings) -> PushSender | None:
    key = settings.vapid_private_key
    if key is None:
        if settings.production:
            raise ConfigError("PLUGPAY_VAPID_PRIVATE_KEY is required in production")
        key = load_or_create_dev_key(Path(".plugpay-vapid"))
    try:
        return WebPushSender(key, settings.vapid_subject)
    except ValueError as exc:
        raise ConfigError(f"PLUGPAY_VAPID_PRIVATE_KEY or PLUGPAY_VAPID_SUBJECT: {exc}") from None


def build_runtime(settings: Settings, *, push: PushSender | None = None) -> Runtime:
    db = Database(settings.database_url)
    writer = BatchWriter(db)
    charger_store = SqlChargerStore(db, writer)
    transaction_store = SqlTransactionStore(db, writer)
    message_log = SqlMessageLog(db, writer)
    tariff_store = SqlTariffStore(db)
    session_store = SqlSessionStore(db)
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
    commands = CommandService(link)
    tariffs = TariffService(tariff_store)
    sessions = SessionService(
        session_store,
        tariffs,
        commands,
        payments,
        bus,
        SessionSettings(
            default_hold=settings.default_hold,
            start_timeout=settings.start_timeout,
            reservation_timeout=settings.reservation_timeout,
            silent_timeout=settings.silent_timeout,
        ),
        demo=payments if isinstance(payments, DemoGateway) else None,
    )
    settlement = SettlementService(
        sessions,
        push,
        settings.public_url,
        receipt_text=lambda total, url, lang: receipt_notification(
            format_money(total.minor, total.currency, lang), url, lang
        ),
    )
    transactions = TransactionService(transaction_store, charger_store)
    transactions.listener = SessionEvents(sessions, settlement)
    services = Services(
        chargers=ChargerService(charger_store, Argon2Hasher(), settings.heartbeat_interval),
        transactions=transactions,
        commands=commands,
        tariffs=tariffs,
        sessions=sessions,
        settlement=settlement,
        receipts=ReceiptService(session_store, tariff_store),
        webhooks=WebhookService(sessions, session_store),
        push_key=push.public_key if push else None,
    )
    return Runtime(
        settings,
        db,
        writer,
        charger_store,
        transaction_store,
        message_log,
        tariff_store,
        session_store,
        registry,
        bus,
        payments,
        link,
        services,
    )


@dataclass
class SessionEvents:
    """What the charger gateway tells the driver's session about its transaction."""

    sessions: SessionService
    settlement: SettlementService

    async def on_started(self, transaction_pk: int, id_tag: str | None, started_at: Any) -> None:
        await self.sessions.on_transaction_started(transaction_pk, id_tag, started_at)

    async def on_readings(self, transaction_pk: int, samples: Sequence[FlaggedSample]) -> None:
        await self.sessions.on_readings(transaction_pk, samples)

    async def on_ended(self, transaction_pk: int, id_tag: str | None) -> None:
        await self.settlement.on_transaction_ended(transaction_pk, id_tag)


async def run_timers(settlement: SettlementService) -> None:
    while True:
        try:
            await settlement.tick()
        except Exception:
            log.exception("session timers failed")
        await asyncio.sleep(TIMER_SECONDS)


async def run_instance_sweep(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(INSTANCE_SWEEP_SECONDS)
        try:
            await runtime.release_gone_instances()
        except Exception:
            log.exception("checking the other server instances failed")


async def run_log_retention(message_log: SqlMessageLog, days: float) -> None:
    """Purge the OCPP message log of what is older than ``days``, now and then."""
    while True:
        await asyncio.sleep(LOG_RETENTION_SECONDS)
        try:
            gone = await message_log.purge(datetime.now(UTC) - timedelta(days=days))
        except Exception:
            log.exception("purging the OCPP message log failed")
            continue
        if gone:
            log.info("purged %d OCPP message log rows older than %g days", gone, days)


def template_engine() -> JinjaTemplateEngine:
    """The page templates ship with the package and change only with it: no look
    at their files on every render (the live page renders one per meter reading)."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, auto_reload=False
    )
    return JinjaTemplateEngine.from_environment(environment)


def create_app(settings: Settings, *, push: PushSender | None = None) -> Litestar:
    runtime = build_runtime(settings, push=push if push is not None else build_push(settings))
    ocpp_endpoint = make_ocpp_endpoint(
        runtime.services, runtime.registry, runtime.message_log, settings.ocpp_call_timeout
    )
    # Mounted so that every scope type reaches it: a plain HTTP request gets a
    # clear 426 from the endpoint instead of a routing error.
    ocpp_route = asgi("/ocpp", is_mount=True, copy_scope=True)(ocpp_endpoint)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        loop = asyncio.get_running_loop()
        background = [loop.create_task(run_timers(runtime.services.settlement))]
        if isinstance(runtime.link, RedisChargerLink):
            background.append(loop.create_task(run_instance_sweep(runtime)))
        if settings.message_log_days > 0:
            background.append(
                loop.create_task(run_log_retention(runtime.message_log, settings.message_log_days))
            )
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runtime.close()

    secure = not settings.public_url.startswith(("http://127.0.0.1", "http://localhost"))
    app = Litestar(
        route_handlers=[
            *health.ROUTES,
            *webhooks.ROUTES,
            ocpp_route,
            *shell.ROUTES,
            *driver.ROUTES,
            *live.ROUTES,
            *receipt.ROUTES,
        ],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="plugpay", version="0.1.0", path="/schema"),
        template_config=TemplateConfig(instance=template_engine()),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="plugpay_csrf",
            cookie_secure=secure,
            cookie_httponly=False,
            cookie_samesite="lax",
            header_name="x-csrf-token",
            exclude=["/webhooks/", "/ocpp/"],
        ),
        exception_handlers=shell.EXCEPTION_HANDLERS,
        response_headers=[
            ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
            ResponseHeader(name="Referrer-Policy", value="same-origin"),
            ResponseHeader(name="X-Frame-Options", value="DENY"),
            ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
        ],
        # SSE must flow event by event, uncompressed and unbuffered.
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=512, exclude=[r"^/s/[^/]+/events$"]
        ),
        logging_config=None,
    )
    app.state.runtime = runtime
    app.state.ready_check = runtime.db.ping
    return app
