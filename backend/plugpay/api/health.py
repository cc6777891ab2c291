"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from litestar import Request, get
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.response import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    """Ready when the database answers."""
    ready = await request.app.state.ready_check()
    return Response(
        {"status": "ready" if ready else "database unreachable"}, status_code=200 if ready else 503
    )


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text exposition: with ``PLUGPAY_METRICS_TOKEN`` set, for its bearer;
    without, for loopback clients only."""
    token: str | None = request.app.state.runtime.settings.metrics_token
    if token is not None:
        if not bearer_matches(request.headers.get("authorization"), token):
            raise NotAuthorizedException(headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    elif not is_loopback(request.client.host if request.client else None):
        # The same answer as for any unknown path: nothing says metrics live here.
        raise NotFoundException()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def bearer_matches(authorization: str | None, token: str) -> bool:
    scheme, _, offered = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant time: the comparison must not tell how much of a guess was right.
    return hmac.compare_digest(offered.strip().encode(), token.encode())


def is_loopback(host: str | None) -> bool:
    """The peer (or, behind a trusted proxy, the client it names) is this machine."""
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on dual-stack sockets
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


ROUTES = [healthz, readyz, metrics]
