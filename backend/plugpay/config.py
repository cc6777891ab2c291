"""Settings, read once from the environment.

A missing or malformed setting stops start-up with one line that names the
variable (``ConfigError``). ``.env`` is read only in development, and values
already in the environment win over it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

from plugpay import crashpoints
from plugpay.keys import KeyPurpose, derive_key_text


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class OidcProvider:
    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    title: str = ""
    groups: tuple[str, ...] = ()  # driver groups everyone signing in with it joins


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./plugpay.db"
    redis_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    payments: str = "demo"
    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    oidc_providers: tuple[OidcProvider, ...] = ()
    vapid_private_key: str | None = None
    vapid_subject: str = "mailto:operator@example.invalid"
    default_hold: Decimal = Decimal("50.00")
    production: bool = False
    ocpp_call_timeout: float = 30.0
    heartbeat_interval: int = 300
    start_timeout: float = 90.0
    # An unpaid reservation blocks the connector for everyone else: minutes, not hours.
    reservation_timeout: float = 300.0
    silent_timeout: float = 900.0
    # Days the OCPP message log is kept; 0 keeps it for ever.
    message_log_days: float = 30.0
    extra: dict[str, str] = field(default_factory=dict)
    # None: /metrics answers loopback clients only.
    metrics_token: str | None = None
    # Web Push to private hosts and plain http: development and tests only.
    push_allow_private: bool = False
    # Guest starts (each reserves a connector and asks for a hold) per ten minutes.
    guest_starts_per_address: int = 5
    guest_starts_per_connector: int = 10
    # How long a job stays with a worker that stopped renewing its lease (it died).
    job_lease_seconds: float = 30.0
    # A booted charger's local authorisation list is checked within this long (it
    # matters once the charger is offline; until then every card is asked online).
    local_list_delay: float = 300.0
    # Who sells the charge, printed on every receipt (one operator for now).
    operator_name: str | None = None
    operator_address: str | None = None
    operator_vat_id: str | None = None

    def __post_init__(self) -> None:
        # Settings built or copied in code skip load_settings: the combinations
        # that would charge nothing or push anywhere are refused here too.
        if self.production and self.payments == "demo":
            raise ConfigError("PLUGPAY_PAYMENTS=demo is refused in production (nothing is charged)")
        if self.production and self.push_allow_private:
            raise ConfigError("PLUGPAY_PUSH_ALLOW_PRIVATE is refused in production")
        if self.production and crashpoints.ARMED:
            raise ConfigError("PLUGPAY_CRASH_AT is refused in production")
        try:
            crashpoints.check_points()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def __repr__(self) -> str:  # never print secrets
        return (
            f"Settings(database_url={_redact_url(self.database_url)!r}, payments={self.payments!r})"
        )

    def key(self, purpose: KeyPurpose) -> str:
        """The key for one use of the secret (see :mod:`plugpay.keys`), as base64url text."""
        return derive_key_text(self.secret_key, purpose)


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a minimal KEY=VALUE file (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_settings(
    environ: dict[str, str] | None = None, *, dotenv: Path | None = Path(".env")
) -> Settings:
    """Read every ``PLUGPAY_*`` variable once and validate it."""
    env = dict(os.environ if environ is None else environ)
    production = env.get("PLUGPAY_ENV", "development").lower() == "production"
    if dotenv is not None and not production:
        for key, value in read_dotenv(dotenv).items():
            env.setdefault(key, value)

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    database_url = get("PLUGPAY_DATABASE_URL") or "sqlite+aiosqlite:///./plugpay.db"
    if not (
        database_url.startswith("sqlite+aiosqlite://")
        or database_url.startswith("postgresql+asyncpg://")
    ):
        raise ConfigError(
            "PLUGPAY_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    redis_url = get("PLUGPAY_REDIS_URL")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("PLUGPAY_REDIS_URL must be a redis:// or rediss:// URL")
    public_url = (get("PLUGPAY_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("PLUGPAY_PUBLIC_URL must be an absolute http(s) URL")

    secret_key = get("PLUGPAY_SECRET_KEY")
    if secret_key is None:
        if production:
            raise ConfigError("PLUGPAY_SECRET_KEY is required in production")
        secret_key = _dev_secret(env)
    elif len(secret_key) < 32:
        raise ConfigError("PLUGPAY_SECRET_KEY must be at least 32 characters")

    stripe_secret = get("PLUGPAY_STRIPE_SECRET_KEY")
    payments = get("PLUGPAY_PAYMENTS") or ("stripe" if stripe_secret else "demo")
    if payments not in ("demo", "stripe"):
        raise ConfigError("PLUGPAY_PAYMENTS must be 'demo' or 'stripe'")
    if production and payments == "demo":
        # The demo provider approves every card without charging it.
        if get("PLUGPAY_PAYMENTS"):
            raise ConfigError("PLUGPAY_PAYMENTS=demo is refused in production (nothing is charged)")
        raise ConfigError(
            "PLUGPAY_STRIPE_SECRET_KEY is required in production (demo payments charge nothing)"
        )
    if payments == "stripe":
        for name in ("PLUGPAY_STRIPE_SECRET_KEY", "PLUGPAY_STRIPE_PUBLISHABLE_KEY"):
            if not get(name):
                raise ConfigError(f"{name} is required when PLUGPAY_PAYMENTS=stripe")
        if production and not get("PLUGPAY_STRIPE_WEBHOOK_SECRET"):
            raise ConfigError("PLUGPAY_STRIPE_WEBHOOK_SECRET is required in production")

    metrics_token = get("PLUGPAY_METRICS_TOKEN")
    if metrics_token is not None and len(metrics_token) < 16:
        raise ConfigError("PLUGPAY_METRICS_TOKEN must be at least 16 characters")
    push_allow_private = _flag("PLUGPAY_PUSH_ALLOW_PRIVATE", get("PLUGPAY_PUSH_ALLOW_PRIVATE"))
    if production and push_allow_private:
        raise ConfigError("PLUGPAY_PUSH_ALLOW_PRIVATE is refused in production")

    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        public_url=public_url,
        secret_key=secret_key,
        payments=payments,
        stripe_secret_key=stripe_secret,
        stripe_publishable_key=get("PLUGPAY_STRIPE_PUBLISHABLE_KEY"),
        stripe_webhook_secret=get("PLUGPAY_STRIPE_WEBHOOK_SECRET"),
        stripe_api_base=get("PLUGPAY_STRIPE_API_BASE"),
        oidc_providers=_oidc_providers(get("PLUGPAY_OIDC_PROVIDERS")),
        vapid_private_key=get("PLUGPAY_VAPID_PRIVATE_KEY"),
        vapid_subject=get("PLUGPAY_VAPID_SUBJECT") or "mailto:operator@example.invalid",
        default_hold=_decimal("PLUGPAY_DEFAULT_HOLD", get("PLUGPAY_DEFAULT_HOLD") or "50.00"),
        production=production,
        ocpp_call_timeout=float(
            _decimal("PLUGPAY_OCPP_CALL_TIMEOUT", get("PLUGPAY_OCPP_CALL_TIMEOUT") or "30")
        ),
        heartbeat_interval=int(
            _decimal("PLUGPAY_HEARTBEAT_INTERVAL", get("PLUGPAY_HEARTBEAT_INTERVAL") or "300")
        ),
        start_timeout=_seconds("PLUGPAY_START_TIMEOUT", get("PLUGPAY_START_TIMEOUT"), "90"),
        reservation_timeout=_seconds(
            "PLUGPAY_RESERVATION_TIMEOUT", get("PLUGPAY_RESERVATION_TIMEOUT"), "300"
        ),
        silent_timeout=_seconds("PLUGPAY_SILENT_TIMEOUT", get("PLUGPAY_SILENT_TIMEOUT"), "900"),
        message_log_days=_days("PLUGPAY_MESSAGE_LOG_DAYS", get("PLUGPAY_MESSAGE_LOG_DAYS"), "30"),
        metrics_token=metrics_token,
        push_allow_private=push_allow_private,
        job_lease_seconds=_seconds(
            "PLUGPAY_JOB_LEASE_SECONDS", get("PLUGPAY_JOB_LEASE_SECONDS"), "30"
        ),
        local_list_delay=_seconds(
            "PLUGPAY_LOCAL_LIST_DELAY", get("PLUGPAY_LOCAL_LIST_DELAY"), "300"
        ),
        guest_starts_per_address=int(
            _decimal(
                "PLUGPAY_GUEST_STARTS_PER_ADDRESS", get("PLUGPAY_GUEST_STARTS_PER_ADDRESS") or "5"
            )
        ),
        guest_starts_per_connector=int(
            _decimal(
                "PLUGPAY_GUEST_STARTS_PER_CONNECTOR",
                get("PLUGPAY_GUEST_STARTS_PER_CONNECTOR") or "10",
            )
        ),
        operator_name=_text("PLUGPAY_OPERATOR_NAME", get("PLUGPAY_OPERATOR_NAME"), 200),
        operator_address=_text("PLUGPAY_OPERATOR_ADDRESS", get("PLUGPAY_OPERATOR_ADDRESS"), 500),
        operator_vat_id=_text("PLUGPAY_OPERATOR_VAT_ID", get("PLUGPAY_OPERATOR_VAT_ID"), 40),
    )


def _text(name: str, raw: str | None, limit: int) -> str | None:
    """A text printed for drivers: trimmed, at most ``limit`` characters."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if len(text) > limit:
        raise ConfigError(f"{name} is longer than {limit} characters")
    return text


_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


def _flag(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1/true/yes or 0/false/no, got {raw!r}")


def _seconds(name: str, raw: str | None, default: str) -> float:
    return float(_decimal(name, raw or default))


def _days(name: str, raw: str | None, default: str) -> float:
    """A number of days, where 0 means for ever."""
    text = (raw or default).strip()
    if text in ("0", "0.0"):
        return 0.0
    return float(_decimal(name, text))


def _decimal(name: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {raw!r}")
    return value


_PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def _oidc_providers(raw: str | None) -> tuple[OidcProvider, ...]:
    if raw is None:
        return ()
    try:
        items = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError("PLUGPAY_OIDC_PROVIDERS must be a JSON list") from None
    if not isinstance(items, list):
        raise ConfigError("PLUGPAY_OIDC_PROVIDERS must be a JSON list")
    providers: list[OidcProvider] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"PLUGPAY_OIDC_PROVIDERS[{index}] must be an object")
        missing = [k for k in ("name", "issuer", "client_id", "client_secret") if not item.get(k)]
        if missing:
            raise ConfigError(f"PLUGPAY_OIDC_PROVIDERS[{index}] lacks {', '.join(missing)}")
        name, issuer = str(item["name"]), str(item["issuer"]).rstrip("/")
        if not _PROVIDER_NAME.fullmatch(name):
            raise ConfigError(
                f"PLUGPAY_OIDC_PROVIDERS[{index}].name must be 1-32 of a-z, 0-9 and '-'"
                f" (it is part of the sign-in URLs), got {name!r}"
            )
        if any(p.name == name for p in providers):
            raise ConfigError(f"PLUGPAY_OIDC_PROVIDERS names {name!r} twice")
        parts = urlsplit(issuer)
        local = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ConfigError(
                f"PLUGPAY_OIDC_PROVIDERS[{index}].issuer must be an https URL, got {issuer!r}"
            )
        groups = item.get("groups", [])
        if not isinstance(groups, list) or not all(
            isinstance(g, str) and _PROVIDER_NAME.fullmatch(g) for g in groups
        ):
            raise ConfigError(
                f"PLUGPAY_OIDC_PROVIDERS[{index}].groups must be a list of group names"
                " (1-32 of a-z, 0-9 and '-')"
            )
        providers.append(
            OidcProvider(
                name,
                issuer,
                str(item["client_id"]),
                str(item["client_secret"]),
                str(item.get("title") or name.capitalize())[:60],
                tuple(groups),
            )
        )
    return tuple(providers)


def _dev_secret(env: dict[str, str]) -> str:
    """Generate a secret on first run in development and keep it beside the database."""
    path = Path(env.get("PLUGPAY_SECRET_FILE", ".plugpay-secret"))
    if path.is_file():
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= 32:
            return value
    value = secrets.token_urlsafe(48)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return value
