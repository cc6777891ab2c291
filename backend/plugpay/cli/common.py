"""What the command groups share: the one-line error, and a runtime for one command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from plugpay.config import load_settings

if TYPE_CHECKING:
    from plugpay.runtime import Runtime

T = TypeVar("T")


class CliError(Exception):
    """Bad input on the command line: printed as one line, exit status 2."""


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
