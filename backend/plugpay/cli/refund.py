"""``plugpay refund SESSION_ID [--amount A] --reason TEXT``."""

from __future__ import annotations

import argparse
import asyncio
import time
from decimal import Decimal, InvalidOperation

from plugpay.cli.common import CliError, with_runtime
from plugpay.domain.money import Money
from plugpay.runtime import Runtime
from plugpay.services.ports.ledger import RefundRecord
from plugpay.services.refunds import RefundAsked

WAIT_SECONDS = 30.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "refund", help="refund a captured session, fully or in part (asking twice refunds once)"
    )
    parser.add_argument("session_id", help="the session (an id that starts with - goes after --)")
    parser.add_argument(
        "--amount", default=None, help="in the session's currency, e.g. 2.50 (default: all)"
    )
    parser.add_argument("--reason", required=True, help="why; kept with the refund")
    parser.add_argument(
        "--wait", action="store_true", help="wait until the payment provider has refunded"
    )
    parser.set_defaults(run=run)


def _amount(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise CliError(f"--amount must be a number, got {text!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise CliError("--amount must be a positive amount")
    return amount


def describe(refund: RefundRecord, currency: str) -> str:
    return f"refund {refund.id}: {Money(refund.amount_minor, currency)} ({refund.state})"


def run(args: argparse.Namespace) -> int:
    amount = _amount(args.amount)

    async def action(runtime: Runtime) -> tuple[RefundAsked, str, RefundRecord]:
        asked = await runtime.services.refunds.refund(args.session_id, amount, args.reason)
        payment = await runtime.ledger.of_session(args.session_id)
        currency = payment.currency if payment else ""
        refund = asked.refund
        deadline = time.monotonic() + WAIT_SECONDS
        while args.wait and refund.state == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            refunds = await runtime.ledger.refunds_of_session(args.session_id)
            refund = next((r for r in refunds if r.id == refund.id), refund)
        return asked, currency, refund

    asked, currency, refund = asyncio.run(with_runtime(action))
    if not asked.new:
        print(f"asked before: {describe(refund, currency)}; nothing more is refunded")
    elif refund.state == "pending":
        print(f"{describe(refund, currency)}: queued; a running server sends it to the provider")
    else:
        print(describe(refund, currency))
    if args.wait and refund.state == "pending":
        raise CliError("the refund is still pending (is a server running? see: plugpay jobs list)")
    if refund.state == "failed":
        raise CliError(f"the payment provider refused refund {refund.id}")
    return 0
