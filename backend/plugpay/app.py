"""create_app(settings): the one place that wires adapters to services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from litestar import Litestar, asgi
from litestar.openapi import OpenAPIConfig

from plugpay.api import health
from plugpay.config import Settings
from plugpay.identity.passwords import Argon2Hasher
from plugpay.ocpp.registry import ConnectionRegistry, LocalChargerLink
from plugpay.ocpp.route import make_ocpp_endpoint
from plugpay.services.chargers import ChargerService
from plugpay.services.commands import CommandService
from plugpay.services.container import Services
from plugpay.services.tariffs import TariffService
from plugpay.services.transactions import TransactionService
from plugpay.store.chargers import SqlChargerStore
from plugpay.store.database import Database
from plugpay.store.messages import SqlMessageLog
from plugpay.store.tariffs import SqlTariffStore
from plugpay.store.transactions import SqlTransactionStore
from plugpay.store.writer import BatchWriter

log = logging.getLogger(__name__)


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
    registry: ConnectionRegistry
    services: Services

    async def close(self) -> None:
        await self.writer.close()
        await self.db.dispose()


def build_runtime(settings: Settings) -> Runtime:
    db = Database(settings.database_url)
    writer = BatchWriter(db)
    charger_store = SqlChargerStore(db, writer)
    transaction_store = SqlTransactionStore(db, writer)
    message_log = SqlMessageLog(db, writer)
    tariff_store = SqlTariffStore(db)
    registry = ConnectionRegistry()
    services = Services(
        chargers=ChargerService(charger_store, Argon2Hasher(), settings.heartbeat_interval),
        transactions=TransactionService(transaction_store, charger_store),
        commands=CommandService(LocalChargerLink(registry)),
        tariffs=TariffService(tariff_store),
    )
    return Runtime(
        settings,
        db,
        writer,
        charger_store,
        transaction_store,
        message_log,
        tariff_store,
        registry,
        services,
    )


def create_app(settings: Settings) -> Litestar:
    runtime = build_runtime(settings)
    ocpp_endpoint = make_ocpp_endpoint(
        runtime.services, runtime.registry, runtime.message_log, settings.ocpp_call_timeout
    )
    ocpp_route = asgi("/ocpp/{charger_id:str}", copy_scope=True)(ocpp_endpoint)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await runtime.close()

    app = Litestar(
        route_handlers=[*health.ROUTES, ocpp_route],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="plugpay", version="0.1.0", path="/schema"),
        logging_config=None,
    )
    app.state.runtime = runtime
    app.state.ready_check = runtime.db.ping
    return app
