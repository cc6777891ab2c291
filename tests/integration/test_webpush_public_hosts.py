"""Web Push goes to public hosts only: a sender built without allow_private never
posts to the loopback push service, whether the endpoint names it outright, a
name resolves to it, or the name changes its answer between the check and the
connection (DNS rebinding). The push service is played by the test, over TLS
where the endpoint must be https, with a certificate from a CA the test makes."""

from __future__ import annotations

import datetime
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plugpay.notify.webpush import WebPushSender, generate_vapid_private_key
from plugpay.services.ports import PushSubscription
from support.push_receiver import FakeBrowser, PushReceiver

SUBJECT = "mailto:operator@example.com"
PUSH_HOST = "push.rebinding.example"  # no real resolver answers for it
PUBLIC_ADDRESS = "93.184.215.14"


@pytest.fixture(scope="module")
def private_key() -> str:
    return generate_vapid_private_key()


@pytest.fixture
def public_sender(private_key: str) -> WebPushSender:
    return WebPushSender(private_key, SUBJECT)


@pytest.fixture
def dev_sender(private_key: str) -> WebPushSender:
    return WebPushSender(private_key, SUBJECT, allow_private=True)


def subscribe(receiver: PushReceiver, sender: WebPushSender) -> PushSubscription:
    return receiver.subscribe(FakeBrowser(application_server_key=sender.public_key))


def assert_logged_without_secrets(
    caplog: pytest.LogCaptureFixture, subscription: PushSubscription, *expected: str
) -> None:
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for text in expected:
        assert text in warnings
    token = subscription.endpoint.rsplit("/", 1)[1]
    for secret in (token, subscription.auth, subscription.p256dh):
        assert secret not in caplog.text


async def test_without_allow_private_nothing_reaches_the_loopback_push_service(
    public_sender: WebPushSender,
    dev_sender: WebPushSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="plugpay")
    async with PushReceiver() as receiver:
        subscription = subscribe(receiver, public_sender)

        assert await public_sender.send(subscription, {"title": "x"}) == "failed"
        assert receiver.messages == []
        assert_logged_without_secrets(caplog, subscription, "refused", "https")

        assert await dev_sender.send(subscription, {"title": "x"}) == "sent"
        [message] = await receiver.wait_for(1)
        assert message.errors == []


# -- a public-looking https name that leads to the loopback service ----------------
class FakeDns:
    """What a hostile name server answers for PUSH_HOST: each lookup takes the
    next answer (the last one repeats). Every other name resolves as usual."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.lookups = 0
        self._real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != PUSH_HOST:
            return self._real(host, port, *args, **kwargs)
        address = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns("127.0.0.1")
    # Both the sender's own lookup (loop.getaddrinfo) and urllib3's go through it.
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None = None
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA, and a certificate from it for PUSH_HOST: (ca.pem, cert.pem, key.pem)."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _certificate("plugpay test CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _certificate(PUSH_HOST, key, issuer=ca)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(PUSH_HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


class TlsPushReceiver(PushReceiver):
    """The loopback push service behind https://PUSH_HOST:port."""

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__()
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(cert, key)

    @property
    def origin(self) -> str:
        return f"https://{PUSH_HOST}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{token}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, ssl_context=self._tls).start()


@pytest.fixture
async def tls_receiver(
    tls_files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TlsPushReceiver]:
    ca, cert, key = tls_files
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    async with TlsPushReceiver(cert, key) as receiver:
        yield receiver


async def test_a_name_that_resolves_to_loopback_is_refused(
    public_sender: WebPushSender,
    dev_sender: WebPushSender,
    tls_receiver: TlsPushReceiver,
    dns: FakeDns,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="plugpay")
    subscription = subscribe(tls_receiver, public_sender)
    assert subscription.endpoint.startswith(f"https://{PUSH_HOST}:")

    assert await public_sender.send(subscription, {"title": "x"}) == "failed"
    assert tls_receiver.messages == []
    assert dns.lookups == 1  # the sender asked, and went no further
    assert_logged_without_secrets(caplog, subscription, "refused", "resolves to 127.0.0.1")

    # The same endpoint, certificate and DNS deliver once private hosts are allowed.
    assert await dev_sender.send(subscription, {"title": "x"}) == "sent"
    [message] = await tls_receiver.wait_for(1)
    assert message.errors == [] and message.payload == {"title": "x"}
    assert message.token is not None and message.token.claims["aud"] == tls_receiver.origin


async def test_a_name_rebound_to_loopback_after_the_check_is_refused_at_connect(
    public_sender: WebPushSender,
    tls_receiver: TlsPushReceiver,
    dns: FakeDns,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="plugpay")
    dns.answers = [PUBLIC_ADDRESS, "127.0.0.1"]
    subscription = subscribe(tls_receiver, public_sender)

    assert await public_sender.send(subscription, {"title": "x"}) == "failed"
    assert dns.lookups == 2  # the sender's check, then the connection's own lookup
    assert tls_receiver.messages == []
    assert_logged_without_secrets(
        caplog, subscription, "refused", "the connection reached 127.0.0.1"
    )


async def test_a_name_with_one_private_address_among_public_ones_is_refused(
    public_sender: WebPushSender,
    tls_receiver: TlsPushReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = socket.getaddrinfo

    def several(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != PUSH_HOST:
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))
            for address in (PUBLIC_ADDRESS, "10.0.0.7")
        ]

    monkeypatch.setattr(socket, "getaddrinfo", several)
    caplog.set_level(logging.DEBUG, logger="plugpay")
    subscription = subscribe(tls_receiver, public_sender)
    assert await public_sender.send(subscription, {"title": "x"}) == "failed"
    assert tls_receiver.messages == []
    assert_logged_without_secrets(caplog, subscription, "resolves to 10.0.0.7")
