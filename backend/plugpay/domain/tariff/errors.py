"""Errors of the tariff engine; each message is fit to show the person who caused it."""

from __future__ import annotations

from plugpay.domain.errors import InvalidInput


class TariffError(InvalidInput):
    """A tariff that cannot be accepted; the message starts with the field path.

    Example: ``elements[1].price_components[0].price: must be >= 0``.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class SessionTraceError(InvalidInput):
    """Meter samples or quote periods the pricing engine cannot use."""


class PricerStateError(InvalidInput):
    """A saved pricer state that does not belong to this tariff or is damaged."""


class PromotionError(InvalidInput):
    """A promotion definition that cannot be accepted."""
