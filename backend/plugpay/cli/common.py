"""What the command groups share: the one-line error, the port check, and a runtime
for one command."""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from plugpay.config import load_settings

if TYPE_CHECKING:
    from plugpay.runtime import Runtime

T = TypeVar("T")


class CliError(Exception):
    """Bad input on the command line: printed as one line, exit status 2."""


def check_port(host: str, port: int, hint: str = "--port") -> None:
    """Refuse, in one line, a port another program listens on (before anything starts)."""
    if not 0 < port < 65536:
        raise CliError(f"port {port} is not a port (1 to 65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the server will bind: a port left in TIME_WAIT by a stopped server is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except PermissionError:
            raise CliError(f"port {port} needs privileges on this machine; {hint}") from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(
                    f"port {port} on {host} is already in use (another plugpay?); {hint}"
                ) from None
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


async def with_runtime(action: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run ``action`` against the configured database (SQLite migrates itself first)."""
    from plugpay.runtime import build_runtime
    from plugpay.store.migrate import upgrade_async

    settings = load_settings()
    if settings.database_url.startswith("sqlite"):
        await upgrade_async(settings.database_url)
    runtime = build_runtime(settings)
    try:
        return await action(runtime)
    finally:
        await runtime.close()
