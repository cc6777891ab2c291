"""Web Push: the real pywebpush sender against a local push service played by the test.

The receiver runs in the test's event loop, so every round trip here also shows
that sending does not block the loop (it would deadlock otherwise).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from plugpay.notify.receipts import receipt_notification
from plugpay.notify.webpush import (
    MAX_PAYLOAD_BYTES,
    WebPushSender,
    generate_vapid_private_key,
    load_or_create_dev_key,
)
from plugpay.services.ports import PushSender, PushSubscription
from support.push_receiver import FakeBrowser, PushReceiver, b64url_decode
from support.server import free_port

SUBJECT = "mailto:operator@example.com"


@pytest.fixture
def private_key() -> str:
    return generate_vapid_private_key()


@pytest.fixture
def sender(private_key: str) -> WebPushSender:
    return WebPushSender(private_key, SUBJECT, allow_private=True)


@pytest.fixture
async def receiver() -> AsyncIterator[PushReceiver]:
    async with PushReceiver() as r:
        yield r


def subscribe(
    receiver: PushReceiver, sender: WebPushSender
) -> tuple[FakeBrowser, PushSubscription]:
    browser = FakeBrowser(application_server_key=sender.public_key)
    return browser, receiver.subscribe(browser)


def test_sender_satisfies_the_port(sender: WebPushSender) -> None:
    port: PushSender = sender
    point = b64url_decode(port.public_key)
    assert len(point) == 65 and point[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


async def test_round_trip_decrypts_and_carries_a_valid_vapid_token(
    sender: WebPushSender, receiver: PushReceiver
) -> None:
    _, subscription = subscribe(receiver, sender)
    payload = receipt_notification("€12.34", "https://pay.example/r/abc", "en-GB")

    before = int(time.time())
    assert await sender.send(subscription, payload) == "sent"

    [message] = receiver.messages
    assert message.errors == []
    assert message.status == 201
    assert message.payload == payload
    token = message.token
    assert token is not None
    assert token.signature_valid
    assert token.header == {"typ": "JWT", "alg": "ES256"}
    assert token.key == sender.public_key
    assert token.claims["aud"] == receiver.origin
    assert token.claims["sub"] == SUBJECT
    assert before < token.claims["exp"] <= int(time.time()) + 24 * 3600
    assert message.headers["TTL"] == "86400"
    assert message.headers["Urgency"] == "high"
    assert message.headers["Content-Encoding"] == "aes128gcm"
    assert message.endpoint == subscription.endpoint


async def test_non_ascii_payload_survives(sender: WebPushSender, receiver: PushReceiver) -> None:
    _, subscription = subscribe(receiver, sender)
    payload = receipt_notification("12,34 €", "https://pay.example/r/xyz", "de-DE")
    assert await sender.send(subscription, payload) == "sent"
    assert receiver.messages[0].payload == payload
    assert payload["title"] == "Ladevorgang beendet"


@pytest.mark.parametrize(("status", "outcome"), [(410, "gone"), (404, "gone"), (500, "failed")])
async def test_push_service_answers(
    sender: WebPushSender,
    receiver: PushReceiver,
    status: int,
    outcome: str,
    caplog: pytest.LogCaptureFixture,
    private_key: str,
) -> None:
    _, subscription = subscribe(receiver, sender)
    receiver.status = status
    caplog.set_level(logging.DEBUG, logger="plugpay")

    assert await sender.send(subscription, {"title": "secret-payload-text"}) == outcome

    assert len(receiver.messages) == 1 and receiver.messages[0].errors == []
    assert str(status) in caplog.text
    for secret in ("secret-payload-text", private_key, subscription.endpoint, subscription.auth):
        assert secret not in caplog.text


async def test_unreachable_endpoint_fails(
    sender: WebPushSender, caplog: pytest.LogCaptureFixture
) -> None:
    browser = FakeBrowser(application_server_key=sender.public_key)
    endpoint = f"http://127.0.0.1:{free_port()}/push/nobody-listens"
    subscription = PushSubscription(endpoint, browser.p256dh, browser.auth)
    caplog.set_level(logging.DEBUG, logger="plugpay")
    assert await sender.send(subscription, {"title": "x"}) == "failed"
    assert "nobody-listens" not in caplog.text


async def test_slow_push_service_times_out(private_key: str) -> None:
    sender = WebPushSender(private_key, SUBJECT, timeout=0.3, allow_private=True)
    async with PushReceiver(delay=2.0) as receiver:
        _, subscription = subscribe(receiver, sender)
        started = time.monotonic()
        assert await sender.send(subscription, {"title": "x"}) == "failed"
        assert time.monotonic() - started < 1.5


async def test_wrong_vapid_key_is_refused_by_the_push_service(
    sender: WebPushSender, receiver: PushReceiver
) -> None:
    _, subscription = subscribe(receiver, sender)
    other = WebPushSender(generate_vapid_private_key(), SUBJECT, allow_private=True)
    assert await other.send(subscription, {"title": "x"}) == "failed"
    assert receiver.messages[0].status == 403


async def test_fresh_claims_for_every_message(sender: WebPushSender) -> None:
    async with PushReceiver() as first, PushReceiver() as second:
        _, to_first = subscribe(first, sender)
        _, to_second = subscribe(second, sender)
        assert first.origin != second.origin
        for _ in range(2):
            assert await sender.send(to_first, {"n": 1}) == "sent"
            assert await sender.send(to_second, {"n": 2}) == "sent"
        for receiver in (first, second):
            assert len(receiver.messages) == 2
            for message in receiver.messages:
                assert message.errors == []
                assert message.token is not None
                assert message.token.claims["aud"] == receiver.origin


@pytest.mark.parametrize(
    "subscription",
    [
        PushSubscription("not a url", "x", "y"),
        PushSubscription("ftp://push.example/abc", "x", "y"),
        PushSubscription("https://push.example/abc", "not-a-point", "AAAAAAAAAAAAAAAAAAAAAA"),
        PushSubscription("https://push.example/abc", "BAAA", "AAAAAAAAAAAAAAAAAAAAAA"),
    ],
)
async def test_malformed_subscription_is_gone_without_a_request(
    sender: WebPushSender, subscription: PushSubscription
) -> None:
    assert await sender.send(subscription, {"title": "x"}) == "gone"


async def test_bad_auth_secret_length_is_gone(sender: WebPushSender) -> None:
    browser = FakeBrowser(application_server_key=sender.public_key)
    subscription = PushSubscription("https://push.example/abc", browser.p256dh, "AAAA")
    assert await sender.send(subscription, {"title": "x"}) == "gone"


async def test_oversized_payload_fails_without_a_request(
    sender: WebPushSender, receiver: PushReceiver
) -> None:
    _, subscription = subscribe(receiver, sender)
    assert await sender.send(subscription, {"body": "x" * MAX_PAYLOAD_BYTES}) == "failed"
    assert receiver.messages == []
    # the largest payload that fits still goes through and decrypts
    filler = MAX_PAYLOAD_BYTES - len('{"body":""}')
    assert await sender.send(subscription, {"body": "x" * filler}) == "sent"
    assert receiver.messages[0].errors == []


# -- keys ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        "",
        "   ",
        "not base64!",
        "AAAA",
        "A" * 43,  # zero is not a private key
        "_" * 43,  # 2**256 - 1 exceeds the group order
        "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n",
    ],
)
def test_malformed_private_key_is_rejected(key: str) -> None:
    with pytest.raises(ValueError, match="VAPID private key") as info:
        WebPushSender(key, SUBJECT)
    if key.strip():
        assert key.strip() not in str(info.value)


def test_pem_of_another_curve_is_rejected() -> None:
    pem = (
        ec.generate_private_key(ec.SECP384R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="another kind of key"):
        WebPushSender(pem, SUBJECT)


def test_pem_and_raw_forms_of_one_key_agree(private_key: str) -> None:
    scalar = int.from_bytes(b64url_decode(private_key), "big")
    pem = (
        ec.derive_private_key(scalar, ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )
    assert WebPushSender(pem, SUBJECT).public_key == WebPushSender(private_key, SUBJECT).public_key
    assert WebPushSender(private_key + "=", SUBJECT).public_key  # padding tolerated


@pytest.mark.parametrize("subject", ["", "operator@example.com", "http://example.com"])
def test_bad_subject_is_rejected(private_key: str, subject: str) -> None:
    with pytest.raises(ValueError, match="VAPID subject"):
        WebPushSender(private_key, subject)


def test_generated_keys_are_fresh_and_well_formed() -> None:
    keys = {generate_vapid_private_key() for _ in range(5)}
    assert len(keys) == 5
    for key in keys:
        assert len(key) == 43 and len(b64url_decode(key)) == 32
        WebPushSender(key, SUBJECT)


def test_dev_key_is_created_once_with_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "vapid-key"
    first = load_or_create_dev_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_dev_key(str(path)) == first
    WebPushSender(first, SUBJECT)


def test_dev_key_file_with_garbage_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "vapid-key"
    path.write_text("garbage\n")
    with pytest.raises(ValueError, match=str(path)):
        load_or_create_dev_key(path)
    assert path.read_text() == "garbage\n"


# -- the receipt notification ---------------------------------------------------
def test_receipt_notification_in_english_and_german() -> None:
    url = "https://pay.example/r/s3ss10n"
    english = receipt_notification("€12.34", url, "en-US")
    assert english == {
        "title": "Charging complete",
        "body": "Total €12.34 — tap for your receipt",
        "url": url,
        "tag": "plugpay-receipt:/r/s3ss10n",
    }
    german = receipt_notification("12,34 €", url, "de_AT")
    assert german["title"] == "Ladevorgang beendet"
    assert "12,34 €" in german["body"]
    assert german["url"] == url and german["tag"] == english["tag"]
    assert receipt_notification("€1.00", url, "fr")["title"] == "Charging complete"
    assert receipt_notification("€1.00", url, "")["title"] == "Charging complete"
    assert receipt_notification("€1.00", url, "DE")["title"] == "Ladevorgang beendet"
