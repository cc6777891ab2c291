"""Web Push endpoints: only public https hosts, unless private ones are allowed."""

from __future__ import annotations

import pytest

from plugpay.domain.errors import InvalidInput
from plugpay.domain.push import check_push_endpoint, is_public_address

SECRET = "gAAAAABsubscriber-token-0123456789"

PUBLIC_ENDPOINTS = [
    f"https://fcm.googleapis.com/fcm/send/dGhpcyBpcyBh:{SECRET}",
    f"https://updates.push.services.mozilla.com/wpush/v2/{SECRET}",
    f"https://wns2-par02p.notify.windows.com/w/?token={SECRET}%2b",
    f"https://web.push.apple.com/{SECRET}",
    "https://push.example:8443/x",
    "HTTPS://Push.Example/x",
    "https://push.example./x",
    "https://8.8.8.8/x",
    "https://[2606:4700::1111]/x",
    "https://[::ffff:8.8.8.8]/x",  # reaches 8.8.8.8
    "https://[2002:808:808::]/x",  # 6to4 of 8.8.8.8
    # A public name may resolve anywhere; the sender judges the answer when it sends.
    "https://127.0.0.1.nip.io/x",
    "https://push.example/" + "a" * (1000 - len("https://push.example/")),
]


@pytest.mark.parametrize("url", PUBLIC_ENDPOINTS)
def test_a_public_https_endpoint_is_accepted(url: str) -> None:
    assert check_push_endpoint(url, allow_private=False) == url
    assert check_push_endpoint(url, allow_private=True) == url


REFUSED = [
    # scheme, shape
    (f"http://push.example/{SECRET}", "must be an https URL"),
    ("ftp://push.example/x", "must be an https URL"),
    ("javascript:alert(1)", "must be an https URL"),
    ("", "must be an https URL"),
    ("https:///x", "has no host"),
    ("https://:443/x", "has no host"),
    (f"https://user:pw@push.example/{SECRET}", "user name or password"),
    ("https://push.example@127.0.0.1/x", "user name or password"),
    ("https://push.example/" + "a" * 980, "longer than 1000 characters"),
    ("https://push.example:0/x", "port must not be 0"),
    ("https://push.example:99999/x", "not a valid URL"),
    ("https://[::1/x", "not a valid URL"),
    ("https://[v1.fe]/x", "not a valid IPv6 address"),
    ("https://push.example/a b", "spaces, control or non-ASCII"),
    ("https://push.ex\tample/x", "spaces, control or non-ASCII"),
    ("https://push.example/x\n", "spaces, control or non-ASCII"),
    ("https://push.éxample/x", "spaces, control or non-ASCII"),
    ("https://push.example\\@127.0.0.1/x", "spaces, control or non-ASCII"),
    ("https://-push.example/x", "not a valid host name"),
    ("https://push..example/x", "not a valid host name"),
    ("https://push%2eexample/x", "not a valid host name"),
    ("https://example.123/x", "neither a host name nor an IPv4 address"),
    ("https://1.2.3.4.5/x", "neither a host name nor an IPv4 address"),
    ("https://256.1.1.1/x", "neither a host name nor an IPv4 address"),
    ("https://08.1.1.1/x", "neither a host name nor an IPv4 address"),
    # IPv4 literals
    ("https://127.0.0.1/x", "a loopback address (127.0.0.1)"),
    ("https://127.8.9.10:8443/x", "a loopback address"),
    ("https://10.1.2.3/x", "a private address"),
    ("https://172.16.0.1/x", "a private address"),
    ("https://192.168.1.1/x", "a private address"),
    ("https://169.254.169.254/latest/meta-data", "a link-local address"),
    ("https://0.0.0.0/x", "the unspecified address"),
    ("https://224.0.0.1/x", "a multicast address"),
    ("https://240.0.0.1/x", "a reserved address"),
    ("https://255.255.255.255/x", "a reserved address"),
    ("https://100.64.0.1/x", "not globally reachable"),  # carrier-grade NAT
    ("https://192.0.0.8/x", "192.0.0.8"),
    ("https://192.0.2.1/x", "192.0.2.1"),  # documentation
    # IPv4 in the spellings inet_aton and browsers accept
    ("https://2130706433/x", "spells the IPv4 address 127.0.0.1 in an unusual form"),
    ("https://0x7f000001/x", "spells the IPv4 address 127.0.0.1"),
    ("https://0x7F.1/x", "spells the IPv4 address 127.0.0.1"),
    ("https://0177.0.0.1/x", "spells the IPv4 address 127.0.0.1"),
    ("https://017700000001/x", "spells the IPv4 address 127.0.0.1"),
    ("https://127.1/x", "spells the IPv4 address 127.0.0.1"),
    ("https://127.0.0.1./x", "a loopback address (127.0.0.1)"),
    ("https://134744072/x", "spells the IPv4 address 8.8.8.8"),  # public, still ambiguous
    ("https://010.8.8.8/x", "spells the IPv4 address 8.8.8.8"),
    # IPv6 literals, and IPv4 reached through them
    ("https://[::1]/x", "a loopback address (::1)"),
    ("https://[::]/x", "the unspecified address"),
    ("https://[fe80::1]/x", "a link-local address"),
    ("https://[fe80::1%25eth0]/x", "a link-local address"),
    ("https://[fc00::1]/x", "a private address"),
    ("https://[fd12:3456::1]:443/x", "a private address"),
    ("https://[ff02::1]/x", "a multicast address"),
    ("https://[2001:db8::1]/x", "2001:db8::1"),
    ("https://[fec0::1]/x", "fec0::1"),  # site-local
    ("https://[::ffff:127.0.0.1]/x", "a loopback address (127.0.0.1)"),
    ("https://[::ffff:7f00:1]/x", "a loopback address (127.0.0.1)"),
    ("https://[0:0:0:0:0:ffff:a00:1]/x", "a private address (10.0.0.1)"),
    ("https://[::127.0.0.1]/x", "::7f00:1"),  # IPv4-compatible, deprecated
    ("https://[2002:7f00:1::]/x", "a loopback address (127.0.0.1)"),  # 6to4
    ("https://[64:ff9b::a9fe:a9fe]/x", "a link-local address (169.254.169.254)"),  # NAT64
    ("https://[64:ff9b:1::8.8.8.8]/x", "64:ff9b:1::808:808"),  # local-use NAT64
    # local names
    ("https://localhost/x", "is a local name"),
    ("https://LOCALHOST./x", "is a local name"),
    ("https://app.localhost:8443/x", "is a local name"),
    ("https://printer.local/x", "is a local name"),
    ("https://metadata.google.internal/computeMetadata/v1/", "is a local name"),
    ("https://router.home.arpa/x", "is a local name"),
    ("https://intranet/x", "not a fully qualified name"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_an_endpoint_off_the_public_internet_is_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match="push endpoint") as info:
        check_push_endpoint(url, allow_private=False)
    assert reason in str(info.value)
    assert SECRET not in str(info.value)


PRIVATE_BUT_ALLOWED = [
    "http://127.0.0.1:8000/push/abc",
    "http://localhost:8080/push/abc",
    "https://printer.local/x",
    "http://10.0.0.5/x",
    "http://[::1]:9000/x",
    "https://[fe80::1%25eth0]/x",
    "http://intranet/x",
    "http://push.example/x",
]


@pytest.mark.parametrize("url", PRIVATE_BUT_ALLOWED)
def test_private_hosts_and_http_are_accepted_when_allowed(url: str) -> None:
    assert check_push_endpoint(url, allow_private=True) == url
    with pytest.raises(InvalidInput):
        check_push_endpoint(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/x", "must be an https URL"),
        ("http:///x", "has no host"),
        ("http://u:p@127.0.0.1/x", "user name or password"),
        ("http://127.0.0.1/" + "a" * 1000, "longer than 1000"),
        ("http://2130706433/x", "unusual form"),
        ("http://[::1/x", "not a valid URL"),
        ("http://127.0.0.1/a b", "spaces"),
    ],
)
def test_allowing_private_hosts_does_not_allow_malformed_endpoints(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        check_push_endpoint(url, allow_private=True)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("ff0e::1", False),  # global-scope multicast is still not a push service
        ("::ffff:127.0.0.1", False),
        ("2002:7f00:1::", False),
        ("64:ff9b::7f00:1", False),
        ("not an address", False),
        ("", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public
