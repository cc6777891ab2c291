"""How often a stranger may start a guest session.

A guest start reserves a connector and places a payment hold, for anyone who
can reach the page. Two limits apply: per client address, so one client
cannot keep holding connectors or probing cards, and per connector, so that
many addresses together cannot keep one connector reserved.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from plugpay.services.ports.limits import Decision, RateLimiter

__all__ = [
    "GUEST_START",
    "GuestStartLimits",
    "Limit",
    "check_guest_start",
    "client_key",
    "most_restrictive",
]


@dataclass(frozen=True, slots=True)
class Limit:
    hits: int
    window_seconds: float


@dataclass(frozen=True, slots=True)
class GuestStartLimits:
    per_address: Limit = Limit(hits=5, window_seconds=600)
    per_connector: Limit = Limit(hits=10, window_seconds=600)


GUEST_START = GuestStartLimits()


def client_key(address: str) -> str:
    """The unit one client controls: an IPv4 address, or the /64 of an IPv6
    one (a single host picks freely among the 2**64 addresses of its network)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        # Not an address (no peer, a test client): all such share one limit.
        return "other"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def most_restrictive(*decisions: Decision) -> Decision:
    """The refusal that lasts longest if any; else the answer with the fewest hits left."""
    if not decisions:
        raise ValueError("most_restrictive needs at least one decision")
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.retry_after)
    return min(decisions, key=lambda d: d.remaining)


async def check_guest_start(
    limiter: RateLimiter,
    client_address: str,
    charger_id: str,
    connector_id: int,
    limits: GuestStartLimits = GUEST_START,
) -> Decision:
    """Count one guest start against both limits; the answer is the stricter one.

    The address is counted first and, if it is refused, the connector is not
    counted at all: one client that is already blocked cannot also use up the
    connector's allowance for everyone else.
    """
    by_address = await limiter.hit(
        f"guest-start:address:{client_key(client_address)}",
        limits.per_address.hits,
        limits.per_address.window_seconds,
    )
    if not by_address.allowed:
        return by_address
    by_connector = await limiter.hit(
        f"guest-start:connector:{connector_id}@{charger_id}",
        limits.per_connector.hits,
        limits.per_connector.window_seconds,
    )
    return most_restrictive(by_address, by_connector)
