"""Drivers' sign-in with OpenID Connect: begin, complete, sign out, who is signed in.

A sign-in is two use cases. ``begin`` records the attempt (an HMAC of its
``state``, its ``nonce`` and PKCE verifier) and sends the browser to the
provider; the browser keeps the state in a short-lived cookie, so an answer
can only finish the sign-in in the browser that began it. ``complete`` takes
the attempt out of the database first, in its own transaction (a replayed
answer finds nothing), asks the provider for the checked identity, and then,
in one transaction, finds or makes the account, records a new login (a fresh
random token: no session fixation), ends the browser's previous login, and
gives the account the sessions this browser started as a guest.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from plugpay.domain.errors import InvalidInput, NotFound
from plugpay.domain.session import FINAL_STATES
from plugpay.services.ports.accounts import (
    Account,
    AccountStore,
    Device,
    IdentityProvider,
    SignInAttempt,
    SignInRefused,
)
from plugpay.services.ports.jobs import JobKind, NewJob
from plugpay.services.ports.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

ATTEMPT_LIFETIME: Final = timedelta(minutes=10)
LOGIN_LIFETIME: Final = timedelta(days=30)
MAX_TOKEN = 100


class AccountBusy(Exception):
    """The account has a charge under way: it can be deleted once that is settled."""


@dataclass(frozen=True)
class ProviderChoice:
    name: str
    title: str


@dataclass(frozen=True)
class SignInStart:
    url: str  # the provider's authorization endpoint, with this attempt's parameters
    state: str  # for the browser's cookie


@dataclass(frozen=True)
class SignInResult:
    account: Account
    login_token: str  # for the browser's cookie; the database keeps only its HMAC
    return_to: str
    claimed: int  # guest sessions the account took over


def safe_return_path(value: str | None) -> str | None:
    """A path on this site, or None: never another origin (no open redirect)."""
    if not value or len(value) > 300 or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 0x21 for c in value):
        return None
    return value


class SignInService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: AccountStore,
        providers: Sequence[IdentityProvider],
        key: str,
        public_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        provider_groups: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.uow = uow
        self.store = store
        self.providers = {p.name: p for p in providers}
        # Everyone who signs in with a provider joins its groups (a company's staff).
        self.provider_groups = {k: tuple(v) for k, v in (provider_groups or {}).items()}
        self.key = key.encode()
        self.public_url = public_url.rstrip("/")
        self.clock = clock

    def choices(self) -> list[ProviderChoice]:
        return [ProviderChoice(p.name, p.title) for p in self.providers.values()]

    def redirect_uri(self, provider: str) -> str:
        return f"{self.public_url}/auth/{provider}/callback"

    def _hash(self, token: str) -> str:
        return hmac.new(self.key, token.encode(), hashlib.sha256).hexdigest()

    def _provider(self, name: str) -> IdentityProvider:
        provider = self.providers.get(name)
        if provider is None:
            raise NotFound("no such sign-in provider")
        return provider

    async def begin(self, provider_name: str, return_to: str | None) -> SignInStart:
        """Raises NotFound for an unknown provider, ProviderUnavailable when it is down."""
        provider = self._provider(provider_name)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
        url = await provider.authorization_url(
            self.redirect_uri(provider_name), state, nonce, verifier
        )
        now = self.clock()
        attempt = SignInAttempt(
            provider=provider_name,
            nonce=nonce,
            code_verifier=verifier,
            return_to=safe_return_path(return_to),
            expires_at=now + ATTEMPT_LIFETIME,
        )
        async with self.uow() as uow:
            await uow.accounts.add_attempt(self._hash(state), attempt, now)
        return SignInStart(url=url, state=state)

    async def complete(
        self,
        provider_name: str,
        *,
        code: str | None,
        state: str | None,
        browser_state: str | None,
        error: str | None,
        owner_hashes: Sequence[str],
        previous_login: str | None,
    ) -> SignInResult:
        """Raises SignInRefused (nothing was signed in) or ProviderUnavailable."""
        provider = self._provider(provider_name)
        if not state or len(state) > MAX_TOKEN:
            raise SignInRefused("the answer carries no state")
        if not browser_state or not secrets.compare_digest(state, browser_state):
            raise SignInRefused("the state is not the one this browser began with")
        now = self.clock()
        async with self.uow() as uow:
            attempt = await uow.accounts.take_attempt(self._hash(state), now)
        if attempt is None or attempt.provider != provider_name:
            raise SignInRefused("no sign-in under way for this state (used already, or expired)")
        if error:
            raise SignInRefused(f"the provider answered {error[:60]}")
        if not code or len(code) > 2000:
            raise SignInRefused("the answer carries no code")
        identity = await provider.identity(
            code, attempt.code_verifier, self.redirect_uri(provider_name), attempt.nonce
        )
        token = secrets.token_urlsafe(32)
        now = self.clock()
        async with self.uow() as uow:
            account = await uow.accounts.sign_in(identity, now)
            await uow.accounts.join_groups(
                account.id, self.provider_groups.get(provider_name, ()), now
            )
            if previous_login and len(previous_login) <= MAX_TOKEN:
                await uow.accounts.end_login(self._hash(previous_login))
            await uow.accounts.add_login(self._hash(token), account.id, now, now + LOGIN_LIFETIME)
            claimed = await uow.accounts.claim_sessions(owner_hashes, account.id)
        log.info("account %s signed in with %s", account.id, provider_name)
        return SignInResult(account, token, attempt.return_to or "/me", claimed)

    async def delete_account(self, account: Account) -> None:
        """Personal data goes, receipts and payments stay (anonymised); the account's
        customers at the payment provider, with the cards saved on them, are deleted
        there by a job written in the same transaction. Raises AccountBusy while a
        charge of the account is not finished."""
        async with self.uow() as uow:
            if await uow.accounts.unfinished_sessions(account.id, sorted(FINAL_STATES)):
                raise AccountBusy("a charge of this account is not finished yet")
            for provider, customer_ref in await uow.cards.customers(account.id):
                await uow.jobs.add(
                    NewJob(
                        JobKind.DELETE_CUSTOMER,
                        f"delete_customer:{provider}:{customer_ref}",
                        {"provider": provider, "customer_ref": customer_ref},
                    )
                )
            await uow.accounts.delete(account.id, self.clock())
        log.info("account %s deleted", account.id)

    async def devices(self, account: Account) -> list[Device]:
        """The browsers that get the account's receipts by Web Push."""
        return await self.store.devices(account.id)

    async def remove_device(self, account: Account, device_id: int) -> None:
        async with self.uow() as uow:
            if not await uow.accounts.remove_device(account.id, device_id):
                raise NotFound("no such device")

    async def sign_out(self, login_token: str | None) -> None:
        if login_token and len(login_token) <= MAX_TOKEN:
            async with self.uow() as uow:
                await uow.accounts.end_login(self._hash(login_token))

    async def signed_in(self, login_token: str | None) -> Account | None:
        if not login_token or len(login_token) > MAX_TOKEN:
            return None
        return await self.store.logged_in(self._hash(login_token), self.clock())


GROUP_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def check_group_name(name: str) -> str:
    if not GROUP_NAME.fullmatch(name):
        raise InvalidInput(f"a group name is 1-32 of a-z, 0-9 and '-', got {name!r}")
    return name


class GroupService:
    """Driver groups (the tariff audience "member:<group>"), managed by the station
    owner: from the command line now, from the operators' console later."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: AccountStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.uow = uow
        self.store = store
        self.clock = clock

    async def _account(self, account_id: int | None, email: str | None) -> Account:
        account = await self.store.find(account_id, email)
        if account is None:
            raise NotFound(
                "no such account (it signs in once before it can join a group;"
                " an e-mail address two accounts share needs --account)"
            )
        return account

    async def add(
        self, group: str, account_id: int | None = None, email: str | None = None
    ) -> Account:
        check_group_name(group)
        account = await self._account(account_id, email)
        async with self.uow() as uow:
            await uow.accounts.join_groups(account.id, [group], self.clock())
        return account

    async def remove(
        self, group: str, account_id: int | None = None, email: str | None = None
    ) -> bool:
        account = await self._account(account_id, email)
        async with self.uow() as uow:
            return await uow.accounts.leave_group(account.id, group)

    async def members(self, group: str | None = None) -> list[tuple[str, Account]]:
        return await self.store.members(group)
