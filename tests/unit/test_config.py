"""Settings fail fast and name the variable."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from plugpay.config import ConfigError, Settings, load_settings

STRIPE = {
    "PLUGPAY_STRIPE_SECRET_KEY": "sk_live_x",
    "PLUGPAY_STRIPE_PUBLISHABLE_KEY": "pk_live_x",
    "PLUGPAY_STRIPE_WEBHOOK_SECRET": "whsec_x",
}
PRODUCTION = {"PLUGPAY_ENV": "production", "PLUGPAY_SECRET_KEY": "x" * 40, **STRIPE}


def settings(tmp_path: Path, **env: str) -> object:
    base = {"PLUGPAY_SECRET_FILE": str(tmp_path / "secret")}
    return load_settings({**base, **env}, dotenv=None)


def test_defaults_run_the_demo(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.database_url == "sqlite+aiosqlite:///./plugpay.db"  # type: ignore[attr-defined]
    assert s.payments == "demo"  # type: ignore[attr-defined]
    assert s.default_hold == Decimal("50.00")  # type: ignore[attr-defined]
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


def _provider(
    name: str = "google", issuer: str = "https://accounts.google.com", twice: bool = False
) -> str:
    one = {"name": name, "issuer": issuer, "client_id": "id", "client_secret": "secret"}
    return json.dumps([one, one] if twice else [one])


def test_providers_are_read_with_their_titles_and_no_secret_in_repr(tmp_path: Path) -> None:
    raw = json.dumps(
        [
            {
                "name": "google",
                "issuer": "https://accounts.google.com/",
                "client_id": "a",
                "client_secret": "s3cr3t-value",
                "title": "Google",
            },
            {
                "name": "local",
                "issuer": "http://127.0.0.1:9000",
                "client_id": "b",
                "client_secret": "x",
            },
        ]
    )
    read = settings(tmp_path, PLUGPAY_OIDC_PROVIDERS=raw).oidc_providers
    assert [(p.name, p.issuer, p.title) for p in read] == [
        ("google", "https://accounts.google.com", "Google"),
        ("local", "http://127.0.0.1:9000", "Local"),
    ]
    assert "s3cr3t-value" not in repr(read)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PLUGPAY_DATABASE_URL": "mysql://x"}, "PLUGPAY_DATABASE_URL"),
        ({"PLUGPAY_REDIS_URL": "http://x"}, "PLUGPAY_REDIS_URL"),
        ({"PLUGPAY_PUBLIC_URL": "not a url"}, "PLUGPAY_PUBLIC_URL"),
        ({"PLUGPAY_DEFAULT_HOLD": "lots"}, "PLUGPAY_DEFAULT_HOLD"),
        ({"PLUGPAY_DEFAULT_HOLD": "-5"}, "PLUGPAY_DEFAULT_HOLD"),
        ({"PLUGPAY_PAYMENTS": "paypal"}, "PLUGPAY_PAYMENTS"),
        ({"PLUGPAY_PAYMENTS": "stripe"}, "PLUGPAY_STRIPE_SECRET_KEY"),
        ({"PLUGPAY_OIDC_PROVIDERS": "{"}, "PLUGPAY_OIDC_PROVIDERS"),
        ({"PLUGPAY_OIDC_PROVIDERS": '[{"name": "x"}]'}, "PLUGPAY_OIDC_PROVIDERS[0]"),
        ({"PLUGPAY_OIDC_PROVIDERS": _provider(name="Google Login")}, "PLUGPAY_OIDC_PROVIDERS[0]"),
        ({"PLUGPAY_OIDC_PROVIDERS": _provider(issuer="http://id.example")}, ".issuer"),
        ({"PLUGPAY_OIDC_PROVIDERS": _provider(twice=True)}, "twice"),
        ({"PLUGPAY_SECRET_KEY": "short"}, "PLUGPAY_SECRET_KEY"),
        ({"PLUGPAY_ENV": "production"}, "PLUGPAY_SECRET_KEY"),
        ({"PLUGPAY_MESSAGE_LOG_DAYS": "-1"}, "PLUGPAY_MESSAGE_LOG_DAYS"),
        ({"PLUGPAY_MESSAGE_LOG_DAYS": "a month"}, "PLUGPAY_MESSAGE_LOG_DAYS"),
        ({"PLUGPAY_METRICS_TOKEN": "too-short"}, "PLUGPAY_METRICS_TOKEN"),
        ({"PLUGPAY_PUSH_ALLOW_PRIVATE": "maybe"}, "PLUGPAY_PUSH_ALLOW_PRIVATE"),
        ({"PLUGPAY_RESERVATION_TIMEOUT": "0"}, "PLUGPAY_RESERVATION_TIMEOUT"),
        ({**PRODUCTION, "PLUGPAY_PAYMENTS": "demo"}, "PLUGPAY_PAYMENTS"),
        ({**PRODUCTION, "PLUGPAY_PUSH_ALLOW_PRIVATE": "1"}, "PLUGPAY_PUSH_ALLOW_PRIVATE"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path: Path, env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(tmp_path, **env)
    assert named in str(error.value)
    assert "\n" not in str(error.value)


def test_stripe_keys_switch_to_stripe_and_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        PLUGPAY_STRIPE_SECRET_KEY="sk_test_secret_value",
        PLUGPAY_STRIPE_PUBLISHABLE_KEY="pk_test_x",
        PLUGPAY_DATABASE_URL="postgresql+asyncpg://user:hunter2@db/plugpay",
    )
    assert s.payments == "stripe"  # type: ignore[attr-defined]
    text = repr(s)
    assert "sk_test_secret_value" not in text and "hunter2" not in text


def test_dotenv_is_read_in_development_only(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PLUGPAY_DEFAULT_HOLD=25\n")
    base = {"PLUGPAY_SECRET_FILE": str(tmp_path / "secret")}
    assert load_settings(base, dotenv=dotenv).default_hold == Decimal(25)
    production = {**base, **PRODUCTION}
    assert load_settings(production, dotenv=dotenv).default_hold == Decimal("50.00")


def test_message_log_days_default_to_30_and_0_keeps_it_for_ever(tmp_path: Path) -> None:
    assert settings(tmp_path).message_log_days == 30.0  # type: ignore[attr-defined]
    kept = settings(tmp_path, PLUGPAY_MESSAGE_LOG_DAYS="0")
    assert kept.message_log_days == 0.0  # type: ignore[attr-defined]
    week = settings(tmp_path, PLUGPAY_MESSAGE_LOG_DAYS="7")
    assert week.message_log_days == 7.0  # type: ignore[attr-defined]


def test_production_refuses_the_demo_provider_that_charges_nothing(tmp_path: Path) -> None:
    no_stripe = {k: v for k, v in PRODUCTION.items() if k not in STRIPE}
    with pytest.raises(ConfigError) as unset:
        settings(tmp_path, **no_stripe)
    assert str(unset.value).startswith("PLUGPAY_STRIPE_SECRET_KEY is required in production")
    with pytest.raises(ConfigError) as chosen:
        settings(tmp_path, **PRODUCTION, PLUGPAY_PAYMENTS="demo")
    assert str(chosen.value).startswith("PLUGPAY_PAYMENTS=demo is refused in production")
    # Settings built in code are held to the same rule.
    with pytest.raises(ConfigError, match="PLUGPAY_PAYMENTS=demo"):
        Settings(production=True, payments="demo", secret_key="x" * 40)
    with pytest.raises(ConfigError, match="PLUGPAY_PUSH_ALLOW_PRIVATE"):
        Settings(production=True, payments="stripe", push_allow_private=True)
    live = settings(tmp_path, **PRODUCTION)
    assert live.payments == "stripe" and live.production  # type: ignore[attr-defined]


def test_development_still_runs_the_demo_provider(tmp_path: Path) -> None:
    for env in ("development", "test"):
        assert settings(tmp_path, PLUGPAY_ENV=env).payments == "demo"  # type: ignore[attr-defined]


def test_metrics_token_is_unset_by_default_and_kept_when_long_enough(tmp_path: Path) -> None:
    assert settings(tmp_path).metrics_token is None  # type: ignore[attr-defined]
    token = "m" * 16
    assert settings(tmp_path, PLUGPAY_METRICS_TOKEN=token).metrics_token == token  # type: ignore[attr-defined]
    assert token not in repr(settings(tmp_path, PLUGPAY_METRICS_TOKEN=token))


@pytest.mark.parametrize(
    ("raw", "allowed"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("false", False), ("no", False)],
)
def test_push_to_private_hosts_is_a_development_switch(
    tmp_path: Path, raw: str, allowed: bool
) -> None:
    assert settings(tmp_path).push_allow_private is False  # type: ignore[attr-defined]
    s = settings(tmp_path, PLUGPAY_PUSH_ALLOW_PRIVATE=raw)
    assert s.push_allow_private is allowed  # type: ignore[attr-defined]
    off = settings(tmp_path, **PRODUCTION, PLUGPAY_PUSH_ALLOW_PRIVATE="0")
    assert off.push_allow_private is False  # type: ignore[attr-defined]


def test_an_unpaid_reservation_blocks_the_connector_for_five_minutes(tmp_path: Path) -> None:
    assert settings(tmp_path).reservation_timeout == 300.0  # type: ignore[attr-defined]
    assert Settings().reservation_timeout == 300.0
    longer = settings(tmp_path, PLUGPAY_RESERVATION_TIMEOUT="900")
    assert longer.reservation_timeout == 900.0  # type: ignore[attr-defined]
