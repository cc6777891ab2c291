"""One key per purpose from the one secret: HKDF-SHA256, stable, independent per purpose."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import get_args

import pytest

from plugpay.config import Settings
from plugpay.keys import KeyPurpose, derive_key, derive_key_text

SECRET = "a-secret-key-that-is-long-enough-0123456789"


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out, to check the library call against."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def test_the_key_is_hkdf_sha256_of_the_secret_with_the_purpose_as_info() -> None:
    expected = hkdf_sha256(SECRET.encode(), b"plugpay key derivation v1", b"plugpay:csrf", 32)
    assert derive_key(SECRET, "csrf") == expected


def test_every_purpose_gets_its_own_stable_32_byte_key() -> None:
    purposes = get_args(KeyPurpose)
    assert set(purposes) == {
        "cookies",
        "csrf",
        "capability",
        "demo-signatures",
        "job-tokens",
        "sign-in",
    }
    keys = {purpose: derive_key(SECRET, purpose) for purpose in purposes}
    assert len(set(keys.values())) == len(purposes)
    assert all(len(key) == 32 for key in keys.values())
    assert all(derive_key(SECRET, purpose) == key for purpose, key in keys.items())
    assert SECRET.encode() not in keys.values()


def test_another_secret_gives_other_keys() -> None:
    assert derive_key(SECRET, "cookies") != derive_key(SECRET + "x", "cookies")


def test_an_unknown_purpose_or_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown key purpose 'cookie'"):
        derive_key(SECRET, "cookie")
    with pytest.raises(ValueError, match="secret"):
        derive_key("", "csrf")


def test_settings_give_each_purpose_as_urlsafe_text() -> None:
    settings = Settings(secret_key=SECRET)
    text = settings.key("demo-signatures")
    assert text == derive_key_text(SECRET, "demo-signatures")
    assert len(text) == 43 and "=" not in text
    assert base64.urlsafe_b64decode(text + "=") == derive_key(SECRET, "demo-signatures")
    assert settings.key("csrf") != settings.key("cookies") != SECRET
