"""Which Web Push endpoints the server may post to.

A push subscription's endpoint comes from the driver's browser, so anyone can
hand the server a URL and have it make a request there later. Real push
services (FCM, Mozilla autopush, WNS, Apple) sit on public https hosts; an
endpoint that names anything else is refused, so that the server cannot be
used to reach its own network. The same rule, :func:`is_public_address`, also
judges the addresses a name resolves to at send time, where the name may
point somewhere else than it did when the driver subscribed.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from plugpay.domain.errors import InvalidInput

__all__ = ["MAX_ENDPOINT_LENGTH", "check_push_endpoint", "is_public_address"]

MAX_ENDPOINT_LENGTH = 1000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that never leave the local network or site (RFC 6761, RFC 6762,
# RFC 8375, and the suffix ICANN keeps for private use).
_LOCAL_SUFFIXES = ("localhost", "local", "internal", "home.arpa")

# Not globally reachable (IANA special-purpose registry), yet is_global on
# Python 3.11: the IETF protocol block and local-use NAT64.
_NOT_PUBLIC = (
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_KINDS = (
    ("is_unspecified", "the unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_reserved", "a reserved address"),
    ("is_private", "a private address"),
)

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# What the WHATWG URL standard (and inet_aton behind getaddrinfo) reads as a
# number: the host is then an IPv4 address, however it is spelt.
_NUMBER = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a translated or tunnelled IPv6 address really reaches."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: str | IPAddress) -> bool:
    """True if *address* is globally reachable unicast: not private, loopback,
    link-local, multicast, reserved, unspecified or shared (carrier NAT)."""
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address)
        except ValueError:
            return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
        if address.scope_id is not None or address.is_site_local:
            return False
    if any(address in network for network in _NOT_PUBLIC):
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _parse_ipv4_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if not part.isdigit() or any(c in "89" for c in part):
            raise ValueError(part)
        return int(part, 8)
    return int(part)


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read *host* as the WHATWG URL parser and inet_aton do: one to four
    decimal, octal or hex parts (``2130706433``, ``0x7f.1``, ``0177.0.0.1``)."""
    parts = host.split(".")
    if len(parts) > 4 or not all(_NUMBER.fullmatch(part) for part in parts):
        return None
    try:
        numbers = [_parse_ipv4_number(part) for part in parts]
    except ValueError:
        return None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, n in enumerate(leading):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _refuse(host: str, why: str) -> InvalidInput:
    return InvalidInput(f"push endpoint host {host!r} {why}")


def _kind(address: IPAddress) -> str:
    """The reason a non-public address is not public, for people."""
    if isinstance(address, ipaddress.IPv6Address):
        address = _embedded_ipv4(address) or address
    for kind, phrase in _KINDS:
        if getattr(address, kind):
            return f"{phrase} ({address})"
    return f"an address that is not globally reachable ({address})"


def _check_address(host: str, address: IPAddress, allow_private: bool) -> None:
    if not allow_private and not is_public_address(address):
        raise _refuse(host, f"is {_kind(address)}")


def _check_name(host: str, allow_private: bool) -> None:
    name = host.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _refuse(host, "is not a valid host name")
    if _NUMBER.fullmatch(labels[-1]):
        address = _legacy_ipv4(name)
        if address is None:
            raise _refuse(host, "is neither a host name nor an IPv4 address")
        if str(address) != name:
            # Resolvers disagree on these spellings (octal or decimal "010"),
            # so what was checked may not be where a request would go.
            raise _refuse(host, f"spells the IPv4 address {address} in an unusual form")
        _check_address(host, address, allow_private)
        return
    if allow_private:
        return
    if any(name == suffix or name.endswith("." + suffix) for suffix in _LOCAL_SUFFIXES):
        raise _refuse(host, "is a local name")
    if len(labels) == 1:
        # resolved through the local search domains, never a push service
        raise _refuse(host, "is not a fully qualified name")


def check_push_endpoint(url: str, allow_private: bool) -> str:
    """Return *url* if the server may post Web Push messages to it; raise
    :class:`InvalidInput` naming the reason otherwise.

    Accepted: an ``https`` URL of at most 1000 characters, without user info,
    whose host is a public IP address or a fully qualified name outside the
    local-only domains. With *allow_private* (development and tests) ``http``
    and private, loopback or local hosts are accepted too. Messages name the
    host at most, never the path, which identifies the subscriber.
    """
    if len(url) > MAX_ENDPOINT_LENGTH:
        raise InvalidInput(f"push endpoint is longer than {MAX_ENDPOINT_LENGTH} characters")
    # urlsplit silently drops tabs and newlines, and parsers differ on
    # backslashes; a push service's URL has none of them.
    if not url.isascii() or any(c <= " " or c in "\\\x7f" for c in url):
        raise InvalidInput("push endpoint holds spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("push endpoint is not a valid URL") from None
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes:
        raise InvalidInput("push endpoint must be an https URL")
    host = parts.hostname
    if not host:
        raise InvalidInput("push endpoint has no host")
    if "@" in parts.netloc:
        raise InvalidInput("push endpoint must not hold a user name or password")
    if port == 0:
        raise InvalidInput("push endpoint port must not be 0")
    if "[" in parts.netloc:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse(host, "is not a valid IPv6 address") from None
        _check_address(host, address, allow_private)
    else:
        _check_name(host, allow_private)
    return url
