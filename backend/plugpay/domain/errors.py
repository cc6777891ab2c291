"""Errors every layer may raise and catch."""

from __future__ import annotations

from typing import Any


class PlugpayError(Exception):
    """Base of plugpay's own errors; the message is fit to show an operator."""


class NotFound(PlugpayError):
    pass


class AlreadyExists(PlugpayError):
    pass


class InvalidInput(PlugpayError):
    pass


class ChargerOffline(PlugpayError):
    """The charger has no live connection to any server instance."""


class CommandTimeout(PlugpayError):
    """The charger did not answer a command in time."""


class CommandFailed(PlugpayError):
    """The charger answered a command with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"charger answered {code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}
