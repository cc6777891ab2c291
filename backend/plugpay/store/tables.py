"""The database schema, as SQLAlchemy Core tables.

Alembic migrations in ``migrations/versions`` create exactly these tables; a
test compares the two so they cannot drift.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so it autoincrements) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utc() -> DateTime:
    return DateTime(timezone=True)


sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    Column("created_at", utc(), nullable=False),
)

chargers = Table(
    "chargers",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("site_id", Integer, ForeignKey("sites.id"), nullable=True),
    Column("password_hash", String(200), nullable=False),
    Column("connector_count", Integer, nullable=False),
    Column("ocpp_version", String(16), nullable=True),
    Column("vendor", String(50), nullable=True),
    Column("model", String(50), nullable=True),
    Column("serial_number", String(50), nullable=True),
    Column("firmware_version", String(50), nullable=True),
    Column("boot_status", String(16), nullable=True),
    Column("firmware_status", String(40), nullable=True),
    Column("connected", Boolean, nullable=False, default=False),
    Column("connected_at", utc(), nullable=True),
    # The server instance holding the connection (several share one database).
    Column("connected_instance", String(32), nullable=True),
    Column("disconnected_at", utc(), nullable=True),
    Column("last_boot_at", utc(), nullable=True),
    Column("last_heartbeat_at", utc(), nullable=True),
    Column("last_seen_at", utc(), nullable=True),
    Column("created_at", utc(), nullable=False),
)

connectors = Table(
    "connectors",
    metadata,
    Column("charger_id", String(48), ForeignKey("chargers.id"), primary_key=True),
    Column("connector_id", Integer, primary_key=True),
    Column("status", String(32), nullable=False, default="Unknown"),
    Column("error_code", String(50), nullable=True),
    Column("status_at", utc(), nullable=True),
    # What the driver sees before paying: plug standard (OCPI ConnectorType,
    # e.g. IEC_62196_T2) and the most power it delivers.
    Column("standard", String(40), nullable=True),
    Column("max_power_w", Integer, nullable=True),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("charger_id", String(48), ForeignKey("chargers.id"), nullable=False),
    Column("connector_id", Integer, nullable=False),
    # 1.6: the integer we handed out, as text; 2.0.1: the charger's transactionId.
    Column("ocpp_transaction_id", String(64), nullable=True),
    # 1.6 StartTransaction identity (connector, idTag, timestamp, meterStart):
    # a repeated StartTransaction finds its row through this key.
    Column("start_key", String(200), nullable=True),
    Column("id_tag", String(64), nullable=True),
    Column("status", String(16), nullable=False),  # active | ended
    Column("started_at", utc(), nullable=True),
    Column("meter_start_wh", BigInteger, nullable=True),
    Column("stopped_at", utc(), nullable=True),
    Column("meter_stop_wh", BigInteger, nullable=True),
    Column("stop_reason", String(40), nullable=True),
    Column("stop_id_tag", String(64), nullable=True),
    Column("last_energy_wh", BigInteger, nullable=True),
    Column("last_reading_at", utc(), nullable=True),
    Column("last_seq_no", Integer, nullable=True),
    Column("offline", Boolean, nullable=False, default=False),
    Column("needs_review", Boolean, nullable=False, default=False),
    Column("review_reason", String(200), nullable=True),
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
    UniqueConstraint("charger_id", "ocpp_transaction_id"),
    UniqueConstraint("charger_id", "start_key"),
)

meter_readings = Table(
    "meter_readings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("transaction_id", BigInteger, ForeignKey("transactions.id"), nullable=True),
    Column("charger_id", String(48), nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("at", utc(), nullable=False),
    Column("energy_wh", BigInteger, nullable=True),
    Column("power_w", BigInteger, nullable=True),
    Column("current_ma", BigInteger, nullable=True),
    Column("soc", Integer, nullable=True),
    Column("context", String(32), nullable=True),
    # "" when plausible; otherwise why the reading is kept but not priced.
    Column("flag", String(32), nullable=False, default=""),
    # A reading repeated by a retried message is stored once.
    UniqueConstraint("transaction_id", "at"),
)

# One row per TransactionEvent (2.0.1) or Start/StopTransaction (1.6) applied:
# a repeated message finds its row and gets the stored answer back.
transaction_messages = Table(
    "transaction_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("transaction_id", BigInteger, ForeignKey("transactions.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # start | stop (1.6), event (2.0.1)
    Column("event_type", String(16), nullable=True),  # Started | Updated | Ended
    Column("seq_no", Integer, nullable=False),
    Column("at", utc(), nullable=False),
    Column("offline", Boolean, nullable=False, default=False),
    Column("response", JSON, nullable=False),
    Column("received_at", utc(), nullable=False),
    UniqueConstraint("transaction_id", "kind", "seq_no"),
)

# RFID cards and the tokens of paid sessions: what Authorize answers.
id_tags = Table(
    "id_tags",
    metadata,
    Column("id_tag", String(64), primary_key=True),
    Column("status", String(16), nullable=False),  # Accepted | Blocked
    Column("expires_at", utc(), nullable=True),
    # A paid session's token works on its own charger only (None: any charger).
    Column("charger_id", String(48), nullable=True),
    Column("note", String(200), nullable=True),
    Column("created_at", utc(), nullable=False),
    # An RFID card: the driver's account it charges (its default saved card), the
    # driver group a station owner issued it to, and what the driver calls it.
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=True),
    Column("group_name", String(32), nullable=True),
    Column("label", String(60), nullable=True),
    Index("ix_id_tags_account_id", "account_id"),
)

# What each charger's local authorisation list holds, as last sent and accepted.
local_lists = Table(
    "local_lists",
    metadata,
    Column("charger_id", String(48), ForeignKey("chargers.id"), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("entries", JSON, nullable=False),  # id_tag -> [status, expiry ISO or None]
    Column("updated_at", utc(), nullable=False),
)

review_items = Table(
    "review_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("charger_id", String(48), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("created_at", utc(), nullable=False),
    Column("resolved_at", utc(), nullable=True),
)

ocpp_messages = Table(
    "ocpp_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("charger_id", String(48), nullable=False),
    Column("direction", String(3), nullable=False),  # in | out
    Column("message_type", Integer, nullable=True),
    Column("unique_id", String(64), nullable=True),
    Column("action", String(64), nullable=True),
    Column("frame", Text, nullable=False),
    Column("at", utc(), nullable=False),
    # A CALL from the charger and our answer share one row: the answer frame
    # (CALLRESULT or CALLERROR) and when it was sent.
    Column("answer", Text, nullable=True),
    Column("answered_at", utc(), nullable=True),
    Index("ix_ocpp_messages_charger_at", "charger_id", "at"),
)

# -- tariffs ------------------------------------------------------------------
# A tariff is never edited in place: importing the same OCPI id again adds a
# version; sessions keep the version (pk) they started with.
tariffs = Table(
    "tariffs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tariff_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    # The OCPI object as JSON text: exact decimals, as imported.
    Column("ocpi", Text, nullable=False),
    Column("created_at", utc(), nullable=False),
    UniqueConstraint("tariff_id", "version"),
)

# Which tariff applies: per connector, a site default, and per audience
# ("guest", "member:<group>", "contract:<id>") at a site.
tariff_assignments = Table(
    "tariff_assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site_id", Integer, ForeignKey("sites.id"), nullable=True),
    Column("charger_id", String(48), nullable=True),
    Column("connector_id", Integer, nullable=True),
    Column("audience", String(80), nullable=False, default="*"),
    Column("tariff_id", String(36), nullable=False),
    Column("created_at", utc(), nullable=False),
    UniqueConstraint("site_id", "charger_id", "connector_id", "audience"),
)

# -- charging sessions ----------------------------------------------------------
ACTIVE_SESSION_STATES = ("CREATED", "AUTHORIZED", "STARTING", "CHARGING", "STOPPING")

# A driver's account: made at the first sign-in, found again by (issuer, subject).
accounts = Table(
    "accounts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("issuer", String(300), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("email", String(320), nullable=True),
    Column("name", String(200), nullable=True),
    Column("created_at", utc(), nullable=False),
    Column("last_sign_in_at", utc(), nullable=False),
    # Deleted by the driver: personal data gone, the row kept for the financial records.
    Column("deleted_at", utc(), nullable=True),
    UniqueConstraint("issuer", "subject"),
)

# Driver groups an account belongs to: the tariff audience "member:<group>".
account_groups = Table(
    "account_groups",
    metadata,
    Column("account_id", BigInteger, ForeignKey("accounts.id"), primary_key=True),
    Column("group_name", String(32), primary_key=True),
    Column("created_at", utc(), nullable=False),
)

# A signed-in browser: only an HMAC of its cookie is kept; sign-out deletes the row.
account_logins = Table(
    "account_logins",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("created_at", utc(), nullable=False),
    Column("expires_at", utc(), nullable=False),
    Index("ix_account_logins_account_id", "account_id"),
)

# A sign-in under way, between the redirect to the provider and its answer: keyed by
# an HMAC of its ``state``, taken (deleted) by the one answer that may use it.
sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("provider", String(64), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("return_to", String(300), nullable=True),
    Column("created_at", utc(), nullable=False),
    Column("expires_at", utc(), nullable=False),
)

# A signed-in driver's device for Web Push: every receipt of the account reaches it.
account_devices = Table(
    "account_devices",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("endpoint", String(1000), nullable=False),
    Column("p256dh", String(200), nullable=False),
    Column("auth", String(100), nullable=False),
    Column("label", String(80), nullable=True),
    Column("created_at", utc(), nullable=False),
    UniqueConstraint("account_id", "endpoint"),
)

# The account's customer at a payment provider (cards are saved on it).
payment_customers = Table(
    "payment_customers",
    metadata,
    Column("account_id", BigInteger, ForeignKey("accounts.id"), primary_key=True),
    Column("provider", String(16), primary_key=True),
    Column("customer_ref", String(64), nullable=False, unique=True),
    Column("created_at", utc(), nullable=False),
)

# A card (or wallet) an account saved for one-tap starts; the provider keeps the card.
saved_cards = Table(
    "saved_cards",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("customer_ref", String(64), nullable=False),
    Column("method_ref", String(64), nullable=False, unique=True),
    Column("card_brand", String(20), nullable=True),
    Column("card_last4", String(4), nullable=True),
    Column("exp_month", Integer, nullable=True),
    Column("exp_year", Integer, nullable=True),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("created_at", utc(), nullable=False),
    Column("removed_at", utc(), nullable=True),
    Index("ix_saved_cards_account_id", "account_id"),
)

charging_sessions = Table(
    "charging_sessions",
    metadata,
    # >= 128 bits from the OS random source, URL-safe: the session's capability.
    Column("id", String(43), primary_key=True),
    Column("charger_id", String(48), ForeignKey("chargers.id"), nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("owner_hash", String(64), nullable=False),
    # The driver's account, once one is signed in (at the start, or claimed later).
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=True),
    Column("lang", String(8), nullable=False, default="en"),
    Column("tariff_pk", Integer, ForeignKey("tariffs.id"), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("hold_minor", BigInteger, nullable=False),
    Column("id_tag", String(20), nullable=False, unique=True),
    Column("payment_provider", String(16), nullable=False),
    Column("payment_ref", String(64), nullable=True, unique=True),
    Column("card_brand", String(20), nullable=True),
    Column("card_last4", String(4), nullable=True),
    Column("transaction_pk", BigInteger, ForeignKey("transactions.id"), nullable=True, unique=True),
    Column("energy_wh", BigInteger, nullable=False, default=0),
    Column("cost_minor", BigInteger, nullable=False, default=0),
    Column("power_w", BigInteger, nullable=True),
    Column("captured_minor", BigInteger, nullable=True),
    Column("breakdown", JSON, nullable=True),
    Column("reason", String(200), nullable=True),  # a domain.session.Reason
    Column("reason_detail", String(300), nullable=True),  # for operators
    # When the sweeper looks at the session next (None only in final states).
    Column("deadline_at", utc(), nullable=True),
    Column("created_at", utc(), nullable=False),
    Column("authorized_at", utc(), nullable=True),
    Column("start_deadline", utc(), nullable=True),
    Column("started_at", utc(), nullable=True),
    Column("last_reading_at", utc(), nullable=True),
    Column("stop_asked_at", utc(), nullable=True),  # when a stop was first asked for
    Column("stopped_at", utc(), nullable=True),
    Column("settled_at", utc(), nullable=True),
    Column("receipt_pushed_at", utc(), nullable=True),
    # The receipt's number: gapless, given when the capture is recorded (counters).
    Column("receipt_no", BigInteger, nullable=True, unique=True),
    Column("updated_at", utc(), nullable=False),
    Column("version", Integer, nullable=False, default=0),
    # At most one active session per connector, enforced by the database.
    Index(
        "uq_charging_sessions_active_connector",
        "charger_id",
        "connector_id",
        unique=True,
        sqlite_where=text(f"state IN {ACTIVE_SESSION_STATES!r}"),
        postgresql_where=text(f"state IN {ACTIVE_SESSION_STATES!r}"),
    ),
    Index("ix_charging_sessions_deadline_at", "deadline_at"),
    Index("ix_charging_sessions_account_id", "account_id"),
)

# A payment: a hold on the driver's card for one session (later also saved-method
# charges and invoice collections). Its movements are journals in the ledger.
payments = Table(
    "payments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("session_id", String(43), ForeignKey("charging_sessions.id"), nullable=True),
    Column("provider", String(16), nullable=False),
    Column("ref", String(64), nullable=False, unique=True),  # the provider's id
    Column("currency", String(3), nullable=False),
    Column("authorised_minor", BigInteger, nullable=False, default=0),
    Column("captured_minor", BigInteger, nullable=False, default=0),
    Column("refunded_minor", BigInteger, nullable=False, default=0),
    # The VAT inside what was captured: refunds give back their share of it.
    Column("captured_vat_minor", BigInteger, nullable=False, default=0),
    # created | authorised | captured | released | expired | disputed
    Column("status", String(16), nullable=False),
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
)

# The double-entry ledger (domain/ledger.py): append-only, each journal's lines
# sum to zero. A journal is written once: its key names the movement.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("journal", String(120), nullable=False),  # e.g. "capture:<session>"
    Column("movement", String(16), nullable=False),
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=False),
    Column("session_id", String(43), ForeignKey("charging_sessions.id"), nullable=True),
    Column("account", String(32), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # debit > 0, credit < 0
    Column("currency", String(3), nullable=False),
    Column("created_at", utc(), nullable=False),
    UniqueConstraint("journal", "account"),
    Index("ix_ledger_entries_payment_id", "payment_id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=False),
    Column("session_id", String(43), ForeignKey("charging_sessions.id"), nullable=True),
    # Asking for the same refund again finds this row (and refunds nothing more).
    Column("key", String(200), nullable=False, unique=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("state", String(12), nullable=False),  # pending | succeeded | failed
    Column("provider_ref", String(64), nullable=True, unique=True),
    Column("source", String(16), nullable=False),  # plugpay | provider (made elsewhere)
    Column("created_at", utc(), nullable=False),
    Column("done_at", utc(), nullable=True),
)

disputes = Table(
    "disputes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=False),
    Column("provider_ref", String(64), nullable=False, unique=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("funds_withdrawn", Boolean, nullable=False, default=False),
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
)

# The work that must follow a committed change (capture, release, start and stop
# commands, receipts, what the charger told us) and the periodic work: claimed
# with a lease by exactly one worker of any instance, retried with backoff.
# Numbers that must have no gaps (receipts): taken inside the transaction that uses
# them, so a transaction rolled back gives its number back.
counters = Table(
    "counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("key", String(200), nullable=False, unique=True),  # one job per key
    Column("payload", JSON, nullable=False),
    Column("session_id", String(43), nullable=True),
    Column("charger_id", String(48), nullable=True),
    Column("state", String(12), nullable=False),  # pending | running | done | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_at", utc(), nullable=False),
    Column("lease_until", utc(), nullable=True),
    Column("worker", String(64), nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("give_up_at", utc(), nullable=True),
    Column("every_seconds", Integer, nullable=True),  # periodic work
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
    Column("done_at", utc(), nullable=True),
    Index("ix_jobs_state_run_at", "state", "run_at"),
    Index("ix_jobs_session_id", "session_id"),
    Index("ix_jobs_charger_state_run_at", "charger_id", "state", "run_at"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("type", String(80), nullable=False),
    Column("payment_ref", String(64), nullable=True),
    # The whole event as received, kept before it is acted on.
    Column("body", Text, nullable=True),
    Column("received_at", utc(), nullable=False),
    Column("processed_at", utc(), nullable=True),
    Column("outcome", String(200), nullable=True),
)

push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("session_id", String(43), ForeignKey("charging_sessions.id"), nullable=False),
    Column("endpoint", String(1000), nullable=False),
    Column("p256dh", String(200), nullable=False),
    Column("auth", String(100), nullable=False),
    Column("created_at", utc(), nullable=False),
    UniqueConstraint("session_id", "endpoint"),
)

demo_payments = Table(
    "demo_payments",
    metadata,
    Column("ref", String(64), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("updated_at", utc(), nullable=False),
)

__all__ = [
    "account_devices",
    "account_groups",
    "account_logins",
    "accounts",
    "chargers",
    "charging_sessions",
    "connectors",
    "demo_payments",
    "disputes",
    "id_tags",
    "jobs",
    "ledger_entries",
    "local_lists",
    "metadata",
    "meter_readings",
    "ocpp_messages",
    "payment_customers",
    "payments",
    "push_subscriptions",
    "refunds",
    "review_items",
    "saved_cards",
    "sign_in_attempts",
    "sites",
    "tariff_assignments",
    "tariffs",
    "transaction_messages",
    "transactions",
    "webhook_events",
]
