"""What every driver page needs: who is asking, the language, the capability cookie.

The services and the settings a page uses reach its handler as typed Litestar
dependencies (see ``dependencies`` below and app.py); the principal is resolved
once per request (a signed-in driver by the login cookie, else a guest by the
capability cookie), and a page of one session gets that session only if the
principal owns it (``owned_session``), so no handler checks ownership itself.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Template
from litestar.types import Guard
from litestar.utils.scope.state import ScopeState

from plugpay.services.accounts import SignInService
from plugpay.services.cards import SavedCardService
from plugpay.services.charging import ChargingService
from plugpay.services.container import Services
from plugpay.services.history import HistoryService
from plugpay.services.live_pricing import LivePricing
from plugpay.services.ports import SessionRecord
from plugpay.services.principals import Driver, Principal, capability_hash, guest_of
from plugpay.services.receipts import ReceiptService
from plugpay.services.reservations import ReservationService
from plugpay.services.rfid import RfidService
from plugpay.services.tariffs import TariffService
from plugpay.web import format as fmt
from plugpay.web.i18n import (
    catalog,
    context_translator,
    pick_language,
    plural_translator,
    problem_text,
    translator,
)

OWNER_COOKIE = "plugpay_owner"
OWNER_MAX_AGE = 60 * 60 * 24 * 90
LOGIN_COOKIE = "plugpay_login"
Req = Request[Any, Any, Any]


@dataclass(frozen=True)
class WebConfig:
    """What the pages need of the settings."""

    capability_key: str
    secret_key: str  # only to open sessions started before capability keys
    public_url: str
    production: bool
    push_key: str | None
    push_allow_private: bool = False

    @property
    def secure_cookies(self) -> bool:
        """Secure everywhere but plain-HTTP localhost development."""
        return not self.public_url.startswith(("http://127.0.0.1", "http://localhost"))


# What handlers ask for, each by its own type (see ``dependencies``).
Web = NamedDependency[WebConfig]
Reservations = NamedDependency[ReservationService]
Charging = NamedDependency[ChargingService]
Pricing = NamedDependency[LivePricing]
Tariffs = NamedDependency[TariffService]
Receipts = NamedDependency[ReceiptService]
SignIn = NamedDependency[SignInService]
Asking = NamedDependency[Principal]
SignedIn = NamedDependency[Driver]
Histories = NamedDependency[HistoryService]
Cards = NamedDependency[SavedCardService]
Rfid = NamedDependency[RfidService]
OwnedSession = NamedDependency[SessionRecord]
Connection = ASGIConnection[Any, Any, Any, Any]


async def resolve_principal(
    connection: Connection, web: WebConfig, sign_in: SignInService
) -> Principal:
    """Who is asking, looked up once per request (the guard and the handler share it)."""
    known: Principal | None = connection.state.get("principal")
    if known is not None:
        return known
    guest = guest_of(web.capability_key, web.secret_key, connection.cookies.get(OWNER_COOKIE))
    account = await sign_in.signed_in(connection.cookies.get(LOGIN_COOKIE))
    principal: Principal = guest if account is None else Driver(account, guest.capability_hashes)
    connection.state.principal = principal
    return principal


async def provide_principal(request: Req, web: Web, sign_in: SignIn) -> Principal:
    return await resolve_principal(request, web, sign_in)


def owner_guard(reservations: ReservationService, sign_in: SignInService, web: WebConfig) -> Guard:
    """The guard of every page of one session: the session of the path, for its
    owner only (404 for anyone else, with no hint whether it exists). What it found
    reaches the handler as the ``session`` dependency."""

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        principal = await resolve_principal(connection, web, sign_in)
        session_id = str(connection.path_params.get("session_id", ""))
        connection.state.owned_session = await reservations.get_owned(session_id, principal)

    return guard


class SignInRequired(Exception):
    """A page for signed-in drivers, asked for by someone who is not (see shell.py:
    the answer is the sign-in page, coming back here afterwards)."""


def driver_guard(sign_in: SignInService, web: WebConfig) -> Guard:
    """The guard of the account's pages: signed-in drivers only."""

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        if not isinstance(await resolve_principal(connection, web, sign_in), Driver):
            raise SignInRequired(connection.url.path)

    return guard


async def provide_driver(request: Req) -> Driver:
    """The driver the driver guard let through."""
    principal = request.state.get("principal")
    assert isinstance(principal, Driver)
    return principal


async def provide_owned_session(request: Req) -> SessionRecord:
    """The session the owner guard let through."""
    session: SessionRecord = request.state.owned_session
    return session


def dependencies(services: Services, web: WebConfig) -> dict[str, Provide]:
    """Every service by its own type, the principal, and the owned session."""

    def constant(value: Any) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    return {
        "web": constant(web),
        "reservations": constant(services.reservations),
        "charging": constant(services.charging),
        "pricing": constant(services.pricing),
        "tariffs": constant(services.tariffs),
        "receipts": constant(services.receipts),
        "webhooks": constant(services.webhooks),
        "sign_in": constant(services.sign_in),
        "principal": Provide(provide_principal),
        "session": Provide(provide_owned_session),
        "driver": Provide(provide_driver),
        "history": constant(services.history),
        "cards": constant(services.cards),
        "rfid": constant(services.rfid),
    }


def language(request: Req) -> str:
    return pick_language(request.headers.get("accept-language"))


def owner_cookie(request: Req, web: WebConfig) -> tuple[str, Cookie | None]:
    """This browser's capability hash, minting the HttpOnly cookie on first use."""
    token = request.cookies.get(OWNER_COOKIE)
    cookie = None
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(32)
        cookie = Cookie(
            key=OWNER_COOKIE,
            value=token,
            max_age=OWNER_MAX_AGE,
            path="/",
            httponly=True,
            secure=web.secure_cookies,
            samesite="lax",
        )
    return capability_hash(web.capability_key, token), cookie


def csrf_token(request: Req) -> str:
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) else ""


def page(request: Req, name: str, status_code: int = 200, **context: Any) -> Template:
    lang = language(request)
    principal = request.state.get("principal")
    return Template(
        template_name=name,
        status_code=status_code,
        context={
            "lang": lang,
            "_": translator(lang),
            "pgettext": context_translator(lang),
            "ngettext": plural_translator(lang),
            "gettext": catalog(lang).gettext,
            "money": lambda minor, currency: fmt.money(minor, currency, lang),
            "kwh": lambda wh: fmt.kwh(wh, lang),
            "kw": lambda w: fmt.kw(w, lang),
            "plug": fmt.plug,
            "amount": lambda text, currency: fmt.amount(text, currency, lang),
            "number": lambda text: fmt.number(text, lang),
            "when": lambda at: fmt.when(at, lang),
            "month": lambda text: fmt.month(text, lang),
            "next_change": lambda at, zone: fmt.next_change(at, zone, lang),
            "ago": lambda at: fmt.ago(at, lang),
            "local": lambda at, zone: fmt.local(at, zone, lang),
            "unit_price": lambda line, currency: fmt.unit_price(line, currency, lang),
            "elapsed": fmt.elapsed,
            "problem": lambda text: problem_text(text, lang),
            "csrf_token": csrf_token(request),
            "driver": principal.account if isinstance(principal, Driver) else None,
            "here": request.url.path,
            **context,
        },
    )
