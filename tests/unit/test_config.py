"""Settings fail fast and name the variable."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from plugpay.config import ConfigError, load_settings


def settings(tmp_path: Path, **env: str) -> object:
    base = {"PLUGPAY_SECRET_FILE": str(tmp_path / "secret")}
    return load_settings({**base, **env}, dotenv=None)


def test_defaults_run_the_demo(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.database_url == "sqlite+aiosqlite:///./plugpay.db"  # type: ignore[attr-defined]
    assert s.payments == "demo"  # type: ignore[attr-defined]
    assert s.default_hold == Decimal("50.00")  # type: ignore[attr-defined]
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


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
        ({"PLUGPAY_SECRET_KEY": "short"}, "PLUGPAY_SECRET_KEY"),
        ({"PLUGPAY_ENV": "production"}, "PLUGPAY_SECRET_KEY"),
        ({"PLUGPAY_MESSAGE_LOG_DAYS": "-1"}, "PLUGPAY_MESSAGE_LOG_DAYS"),
        ({"PLUGPAY_MESSAGE_LOG_DAYS": "a month"}, "PLUGPAY_MESSAGE_LOG_DAYS"),
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
    production = {**base, "PLUGPAY_ENV": "production", "PLUGPAY_SECRET_KEY": "x" * 40}
    assert load_settings(production, dotenv=dotenv).default_hold == Decimal("50.00")


def test_message_log_days_default_to_30_and_0_keeps_it_for_ever(tmp_path: Path) -> None:
    assert settings(tmp_path).message_log_days == 30.0  # type: ignore[attr-defined]
    kept = settings(tmp_path, PLUGPAY_MESSAGE_LOG_DAYS="0")
    assert kept.message_log_days == 0.0  # type: ignore[attr-defined]
    week = settings(tmp_path, PLUGPAY_MESSAGE_LOG_DAYS="7")
    assert week.message_log_days == 7.0  # type: ignore[attr-defined]
