"""jobs, payments, a double-entry ledger, refunds, disputes, session deadlines

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 05:17:42.847272
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("session_id", sa.String(length=43), nullable=True),
        sa.Column("charger_id", sa.String(length=48), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("every_seconds", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("key", name=op.f("uq_jobs_key")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_charger_id", ["charger_id"], unique=False)
        batch_op.create_index("ix_jobs_session_id", ["session_id"], unique=False)
        batch_op.create_index("ix_jobs_state_run_at", ["state", "run_at"], unique=False)

    op.create_table(
        "payments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.String(length=43), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("authorised_minor", sa.BigInteger(), nullable=False),
        sa.Column("captured_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("captured_vat_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["charging_sessions.id"],
            name=op.f("fk_payments_session_id_charging_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("ref", name=op.f("uq_payments_ref")),
    )
    op.create_table(
        "disputes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_ref", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("funds_withdrawn", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_disputes_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
        sa.UniqueConstraint("provider_ref", name=op.f("uq_disputes_provider_ref")),
    )
    op.create_table(
        "refunds",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.String(length=43), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("provider_ref", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["charging_sessions.id"],
            name=op.f("fk_refunds_session_id_charging_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("key", name=op.f("uq_refunds_key")),
        sa.UniqueConstraint("provider_ref", name=op.f("uq_refunds_provider_ref")),
    )
    with op.batch_alter_table("charging_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_detail", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("stop_asked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_charging_sessions_deadline_at", ["deadline_at"], unique=False)

    # The old ledger (one capture row per session) becomes journals of the new one.
    op.rename_table("ledger_entries", "ledger_entries_0005")
    if op.get_bind().dialect.name == "postgresql":
        # Constraint and index names are global in PostgreSQL: free them for the new table.
        op.execute(
            "ALTER TABLE ledger_entries_0005 RENAME CONSTRAINT pk_ledger_entries TO pk_ledger_entries_0005"
        )
        op.execute(
            "ALTER TABLE ledger_entries_0005 RENAME CONSTRAINT uq_ledger_entries_session_id_kind TO uq_ledger_entries_0005_session_id_kind"
        )
        op.execute(
            "ALTER TABLE ledger_entries_0005 RENAME CONSTRAINT fk_ledger_entries_session_id_charging_sessions TO fk_ledger_entries_0005_session_id"
        )
    op.create_table(
        "ledger_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("journal", sa.String(length=120), nullable=False),
        sa.Column("movement", sa.String(length=16), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.String(length=43), nullable=True),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_ledger_entries_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["charging_sessions.id"],
            name=op.f("fk_ledger_entries_session_id_charging_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("journal", "account", name=op.f("uq_ledger_entries_journal_account")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_payment_id", ["payment_id"], unique=False)
    _move_payments_to_the_ledger()
    op.drop_table("ledger_entries_0005")
    op.drop_table("payment_jobs")

    with op.batch_alter_table("id_tags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charger_id", sa.String(length=48), nullable=True))
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("id_tags", schema=None) as batch_op:
        batch_op.drop_column("charger_id")
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_column("outcome")
        batch_op.drop_column("body")

    # Journals cannot become the old one-row ledger again without loss: a downgrade
    # keeps the captures only.
    captures = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT e.session_id, -e.amount_minor AS amount, e.currency, p.ref, e.created_at"
                " FROM ledger_entries e JOIN payments p ON p.id = e.payment_id"
                " WHERE e.movement = 'captured' AND e.account = 'hold_offset' AND e.session_id IS NOT NULL"
            ).columns(created_at=sa.DateTime(timezone=True))
        )
        .mappings()
        .all()
    )
    op.drop_table("ledger_entries")
    old = op.create_table(
        "ledger_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.String(length=43), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_ref", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["charging_sessions.id"],
            name=op.f("fk_ledger_entries_session_id_charging_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("session_id", "kind", name=op.f("uq_ledger_entries_session_id_kind")),
    )
    if captures:
        op.bulk_insert(
            old,
            [
                {
                    "session_id": c["session_id"],
                    "kind": "capture",
                    "amount_minor": -int(c["amount"]),
                    "currency": c["currency"],
                    "payment_ref": c["ref"],
                    "created_at": c["created_at"],
                }
                for c in captures
            ],
        )

    with op.batch_alter_table("charging_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_charging_sessions_deadline_at")
        batch_op.drop_column("deadline_at")
        batch_op.drop_column("stop_asked_at")
        batch_op.drop_column("reason_detail")

    op.create_table(
        "payment_jobs",
        sa.Column("session_id", sa.VARCHAR(length=43), nullable=False),
        sa.Column("kind", sa.VARCHAR(length=16), nullable=False),
        sa.Column("amount_minor", sa.BIGINT(), nullable=False),
        sa.Column("idempotency_key", sa.VARCHAR(length=80), nullable=False),
        sa.Column("attempts", sa.INTEGER(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.VARCHAR(length=300), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["charging_sessions.id"],
            name=op.f("fk_payment_jobs_session_id_charging_sessions"),
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_payment_jobs")),
    )
    op.drop_table("refunds")
    op.drop_table("disputes")
    op.drop_table("payments")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_state_run_at")
        batch_op.drop_index("ix_jobs_session_id")
        batch_op.drop_index("ix_jobs_charger_id")

    op.drop_table("jobs")


def _move_payments_to_the_ledger() -> None:
    """Every session's hold becomes a payment; its capture, the journals of the new
    ledger; a capture or release still queued, a job."""
    conn = op.get_bind()
    now = datetime.now(UTC)
    sessions = (
        conn.execute(
            sa.text(
                "SELECT id, state, payment_provider, payment_ref, currency, hold_minor, authorized_at,"
                " captured_minor, breakdown, created_at, settled_at FROM charging_sessions"
                " WHERE payment_ref IS NOT NULL"
            )
        )
        .mappings()
        .all()
    )
    captured = {
        r["session_id"]: r
        for r in conn.execute(
            sa.text(
                "SELECT session_id, amount_minor, created_at FROM ledger_entries_0005 WHERE kind = 'capture'"
            )
        ).mappings()
    }
    payments = sa.table(
        "payments",
        *(
            sa.column(c)
            for c in (
                "id",
                "session_id",
                "provider",
                "ref",
                "currency",
                "authorised_minor",
                "captured_minor",
                "refunded_minor",
                "captured_vat_minor",
                "status",
                "created_at",
                "updated_at",
            )
        ),
    )
    entries = sa.table(
        "ledger_entries",
        *(
            sa.column(c)
            for c in (
                "journal",
                "movement",
                "payment_id",
                "session_id",
                "account",
                "amount_minor",
                "currency",
                "created_at",
            )
        ),
    )
    for s in sessions:
        authorised = s["hold_minor"] if s["authorized_at"] is not None else 0
        capture = captured.get(s["id"])
        amount = int(capture["amount_minor"]) if capture else 0
        vat = _vat_of(s["breakdown"], amount, s["currency"])
        final = s["state"] in ("SETTLED", "START_FAILED", "CANCELED")
        status = (
            "captured"
            if amount
            else ("released" if final and authorised else "authorised" if authorised else "created")
        )
        result = conn.execute(
            payments.insert()
            .values(
                session_id=s["id"],
                provider=s["payment_provider"],
                ref=s["payment_ref"],
                currency=s["currency"],
                authorised_minor=authorised,
                captured_minor=amount,
                refunded_minor=0,
                captured_vat_minor=vat,
                status=status,
                created_at=s["created_at"],
                updated_at=s["settled_at"] or s["created_at"],
            )
            .returning(payments.c.id)
        )
        pid, sid, currency = result.scalar_one(), s["id"], s["currency"]
        rows: list[dict[str, object]] = []
        key = (pid, sid, currency)

        if authorised:
            _journal(
                rows,
                key,
                "authorise",
                "authorised",
                s["authorized_at"],
                ("driver_hold", authorised),
                ("hold_offset", -authorised),
            )
        if amount:
            _journal(
                rows,
                key,
                "capture",
                "captured",
                capture["created_at"] if capture else now,
                ("hold_offset", amount),
                ("driver_hold", -amount),
                ("driver_receivable", amount),
                ("operator_revenue", -(amount - vat)),
                ("vat_payable", -vat),
            )
        rest = authorised - amount
        if rest > 0 and final:
            _journal(
                rows,
                key,
                "release",
                "released",
                s["settled_at"] or s["created_at"],
                ("hold_offset", rest),
                ("driver_hold", -rest),
            )
        if rows:
            op.bulk_insert(entries, rows)
    jobs = sa.table(
        "jobs",
        sa.column("payload", sa.JSON()),
        *(
            sa.column(c)
            for c in (
                "kind",
                "key",
                "session_id",
                "state",
                "attempts",
                "run_at",
                "last_error",
                "give_up_at",
                "created_at",
                "updated_at",
            )
        ),
    )
    queued = (
        conn.execute(
            sa.text(
                "SELECT j.session_id, j.kind, j.amount_minor, j.attempts, j.next_attempt_at,"
                " j.give_up_at, j.last_error, s.breakdown, s.currency"
                " FROM payment_jobs j JOIN charging_sessions s ON s.id = j.session_id"
                " WHERE j.done_at IS NULL"
            )
        )
        .mappings()
        .all()
    )
    if queued:
        op.bulk_insert(
            jobs,
            [
                {
                    "kind": "payment.capture" if q["kind"] == "capture" else "payment.release",
                    "key": f"{'capture' if q['kind'] == 'capture' else 'release'}:{q['session_id']}",
                    "payload": {
                        "amount_minor": int(q["amount_minor"]),
                        "vat_minor": _vat_of(q["breakdown"], int(q["amount_minor"]), q["currency"]),
                    },
                    "session_id": q["session_id"],
                    "state": "pending",
                    "attempts": q["attempts"],
                    "run_at": q["next_attempt_at"],
                    "last_error": q["last_error"],
                    "give_up_at": q["give_up_at"],
                    "created_at": q["next_attempt_at"],
                    "updated_at": q["next_attempt_at"],
                }
                for q in queued
            ],
        )
    # Sessions still under way: the sweeper looks at each at once and sets its deadline.
    conn.execute(
        sa.text(
            "UPDATE charging_sessions SET deadline_at = CURRENT_TIMESTAMP"
            " WHERE state NOT IN ('SETTLED', 'START_FAILED', 'CANCELED')"
        )
    )


def _journal(
    rows: list[dict[str, object]],
    key: tuple[object, str, str],
    name: str,
    movement: str,
    at: object,
    *lines: tuple[str, int],
) -> None:
    payment_id, session_id, currency = key
    rows.extend(
        _entries(f"{name}:{session_id}", movement, at, payment_id, session_id, currency, lines)
    )


def _entries(
    journal: str,
    movement: str,
    at: object,
    payment_id: object,
    session_id: str,
    currency: str,
    lines: tuple[tuple[str, int], ...],
) -> list[dict[str, object]]:
    return [
        {
            "journal": journal,
            "movement": movement,
            "payment_id": payment_id,
            "session_id": session_id,
            "account": account,
            "amount_minor": value,
            "currency": currency,
            "created_at": at,
        }
        for account, value in lines
        if value
    ]


def _vat_of(breakdown: object, amount: int, currency: str) -> int:
    """The VAT inside a captured amount, from the session's price breakdown."""
    import json
    from decimal import Decimal

    from plugpay.domain.ledger import vat_share
    from plugpay.domain.money import Money

    data = json.loads(breakdown) if isinstance(breakdown, str) else breakdown
    if not amount or not isinstance(data, dict) or data.get("total_incl_vat") is None:
        return 0
    incl = Money.from_decimal(Decimal(data["total_incl_vat"]), currency).minor
    excl = Money.from_decimal(Decimal(data["total_excl_vat"]), currency).minor
    return vat_share(amount, incl, incl - excl)
