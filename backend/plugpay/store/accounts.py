"""Drivers' accounts, signed-in browsers and sign-ins under way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.services.ports.accounts import Account, Device, SignInAttempt, VerifiedIdentity
from plugpay.store import tables as t
from plugpay.store.clock import aware
from plugpay.store.database import Database

_A = t.accounts
_L = t.account_logins
_P = t.sign_in_attempts
_G = t.account_groups
_D = t.account_devices


def _account(row: Any, groups: tuple[str, ...] = ()) -> Account:
    return Account(
        id=row["id"],
        issuer=row["issuer"],
        subject=row["subject"],
        email=row["email"],
        name=row["name"],
        created_at=aware(row["created_at"]) or row["created_at"],
        groups=groups,
    )


async def _groups(conn: AsyncConnection, account_id: int) -> tuple[str, ...]:
    rows = await conn.execute(
        select(_G.c.group_name).where(_G.c.account_id == account_id).order_by(_G.c.group_name)
    )
    return tuple(str(name) for (name,) in rows)


class SqlAccountRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add_attempt(self, state_hash: str, attempt: SignInAttempt, now: datetime) -> None:
        # Attempts nobody finished go with the next one (a bounded table, no sweeper).
        await self.conn.execute(delete(_P).where(_P.c.expires_at < now))
        await self.conn.execute(
            insert(_P).values(
                state_hash=state_hash,
                provider=attempt.provider,
                nonce=attempt.nonce,
                code_verifier=attempt.code_verifier,
                return_to=attempt.return_to,
                created_at=now,
                expires_at=attempt.expires_at,
            )
        )

    async def take_attempt(self, state_hash: str, now: datetime) -> SignInAttempt | None:
        row = (
            (await self.conn.execute(delete(_P).where(_P.c.state_hash == state_hash).returning(_P)))
            .mappings()
            .first()
        )
        if row is None:
            return None
        expires_at = aware(row["expires_at"]) or now
        if expires_at < now:
            return None
        return SignInAttempt(
            provider=row["provider"],
            nonce=row["nonce"],
            code_verifier=row["code_verifier"],
            return_to=row["return_to"],
            expires_at=expires_at,
        )

    async def sign_in(self, identity: VerifiedIdentity, now: datetime) -> Account:
        dialect = sqlite if self.conn.dialect.name == "sqlite" else postgresql
        values = {"email": identity.email, "name": identity.name, "last_sign_in_at": now}
        statement = dialect.insert(_A).values(
            issuer=identity.issuer, subject=identity.subject, created_at=now, **values
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_A.c.issuer, _A.c.subject], set_=values
        ).returning(_A)
        row = (await self.conn.execute(statement)).mappings().one()
        return _account(row)

    async def add_login(
        self, token_hash: str, account_id: int, now: datetime, expires_at: datetime
    ) -> None:
        await self.conn.execute(delete(_L).where(_L.c.expires_at < now))
        await self.conn.execute(
            insert(_L).values(
                token_hash=token_hash, account_id=account_id, created_at=now, expires_at=expires_at
            )
        )

    async def end_login(self, token_hash: str) -> None:
        await self.conn.execute(delete(_L).where(_L.c.token_hash == token_hash))

    async def claim_sessions(self, owner_hashes: Sequence[str], account_id: int) -> int:
        if not owner_hashes:
            return 0
        s = t.charging_sessions
        result = await self.conn.execute(
            update(s)
            .where(s.c.owner_hash.in_(list(owner_hashes)), s.c.account_id.is_(None))
            .values(account_id=account_id)
        )
        return result.rowcount or 0

    async def join_groups(self, account_id: int, groups: Sequence[str], now: datetime) -> None:
        dialect = sqlite if self.conn.dialect.name == "sqlite" else postgresql
        for group in groups:
            await self.conn.execute(
                dialect.insert(_G)
                .values(account_id=account_id, group_name=group, created_at=now)
                .on_conflict_do_nothing()
            )

    async def leave_group(self, account_id: int, group: str) -> bool:
        result = await self.conn.execute(
            delete(_G).where(_G.c.account_id == account_id, _G.c.group_name == group)
        )
        return bool(result.rowcount)

    async def add_device(
        self,
        account_id: int,
        endpoint: str,
        p256dh: str,
        auth: str,
        label: str | None,
        now: datetime,
    ) -> None:
        dialect = sqlite if self.conn.dialect.name == "sqlite" else postgresql
        keys = {"p256dh": p256dh, "auth": auth, "label": label}
        await self.conn.execute(
            dialect.insert(_D)
            .values(account_id=account_id, endpoint=endpoint, created_at=now, **keys)
            .on_conflict_do_update(index_elements=[_D.c.account_id, _D.c.endpoint], set_=keys)
        )

    async def remove_device(self, account_id: int, device_id: int) -> bool:
        result = await self.conn.execute(
            delete(_D).where(_D.c.account_id == account_id, _D.c.id == device_id)
        )
        return bool(result.rowcount)

    async def forget_endpoint(self, account_id: int, endpoint: str) -> None:
        await self.conn.execute(
            delete(_D).where(_D.c.account_id == account_id, _D.c.endpoint == endpoint)
        )

    async def unfinished_sessions(self, account_id: int, final_states: Sequence[str]) -> int:
        s = t.charging_sessions
        count = await self.conn.execute(
            select(func.count())
            .select_from(s)
            .where(s.c.account_id == account_id, s.c.state.not_in(list(final_states)))
        )
        return int(count.scalar_one())

    async def delete(self, account_id: int, now: datetime) -> None:
        s, push = t.charging_sessions, t.push_subscriptions
        await self.conn.execute(
            update(_A)
            .where(_A.c.id == account_id)
            .values(
                issuer="deleted",
                subject=f"deleted-{account_id}",
                email=None,
                name=None,
                deleted_at=now,
            )
        )
        await self.conn.execute(delete(_L).where(_L.c.account_id == account_id))
        await self.conn.execute(delete(_G).where(_G.c.account_id == account_id))
        await self.conn.execute(delete(_D).where(_D.c.account_id == account_id))
        # RFID cards: the driver's own are forgotten, issued ones go back to their group.
        tags = t.id_tags
        linked = (tags.c.account_id == account_id) & tags.c.charger_id.is_(None)
        await self.conn.execute(delete(tags).where(linked, tags.c.group_name.is_(None)))
        await self.conn.execute(update(tags).where(linked).values(account_id=None, label=None))
        cards = t.saved_cards
        await self.conn.execute(
            update(cards)
            .where(cards.c.account_id == account_id, cards.c.removed_at.is_(None))
            .values(
                removed_at=now, is_default=False, card_last4=None, exp_month=None, exp_year=None
            )
        )
        mine = select(s.c.id).where(s.c.account_id == account_id)
        await self.conn.execute(delete(push).where(push.c.session_id.in_(mine)))


class SqlAccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def logged_in(self, token_hash: str, now: datetime) -> Account | None:
        async with self.db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(_A)
                        .join(_L, _L.c.account_id == _A.c.id)
                        .where(
                            _L.c.token_hash == token_hash,
                            _L.c.expires_at > now,
                            _A.c.deleted_at.is_(None),
                        )
                    )
                )
                .mappings()
                .first()
            )
            return _account(row, await _groups(conn, int(row["id"]))) if row else None

    async def find(self, account_id: int | None = None, email: str | None = None) -> Account | None:
        if account_id is None and not email:
            return None
        where = _A.c.id == account_id if account_id is not None else _A.c.email == email
        async with self.db.connect() as conn:
            rows = (
                (await conn.execute(select(_A).where(where, _A.c.deleted_at.is_(None)).limit(2)))
                .mappings()
                .all()
            )
            if len(rows) != 1:
                return None  # none, or an address two accounts share: ask by id
            return _account(rows[0], await _groups(conn, int(rows[0]["id"])))

    async def devices(self, account_id: int) -> list[Device]:
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(_D).where(_D.c.account_id == account_id).order_by(_D.c.id)
                    )
                )
                .mappings()
                .all()
            )
        return [
            Device(
                r["id"],
                r["endpoint"],
                r["p256dh"],
                r["auth"],
                r["label"],
                aware(r["created_at"]) or r["created_at"],
            )
            for r in rows
        ]

    async def members(self, group: str | None = None) -> list[tuple[str, Account]]:
        query = select(_G.c.group_name, _A).join(_A, _A.c.id == _G.c.account_id)
        if group is not None:
            query = query.where(_G.c.group_name == group)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query.order_by(_G.c.group_name, _A.c.id))).mappings().all()
        return [(str(r["group_name"]), _account(r)) for r in rows]
