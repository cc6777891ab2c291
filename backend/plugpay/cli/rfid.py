"""``plugpay rfid add|list|block|unblock``: RFID cards a station owner issues.

An issued card belongs to a driver group (its member prices); it charges a
driver once the driver links it to an account with a saved card (``/me/rfid``).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from plugpay.cli.common import CliError, with_runtime
from plugpay.runtime import Runtime
from plugpay.services.ports.rfid import RfidCard


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("rfid", help="RFID cards issued to driver groups")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="issue a card to a group")
    add.add_argument("tag", help="the card's number as chargers read it (1-20 characters)")
    add.add_argument("--group", required=True, help="the driver group (member prices)")
    add.add_argument("--label", default=None, help="a name for the card")
    add.add_argument("--expires", default=None, help="last day it works, YYYY-MM-DD (UTC)")
    add.set_defaults(run=run)
    actions.add_parser("list", help="every card, newest first").set_defaults(run=run)
    for name, text in (("block", "refuse the card at every charger"), ("unblock", "accept it")):
        action = actions.add_parser(name, help=text)
        action.add_argument("tag")
        action.set_defaults(run=run)


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise CliError(f"--expires must be YYYY-MM-DD, got {text!r}") from None
    return day.replace(hour=23, minute=59, second=59)


def describe(card: RfidCard) -> str:
    owner = f"account {card.account_id}" if card.account_id else "not linked"
    expiry = f", until {card.expires_at:%Y-%m-%d}" if card.expires_at else ""
    group = card.group_name or "-"
    return f"{card.id_tag}\t{card.status}\tgroup {group}\t{owner}{expiry}\t{card.label or ''}"


def run(args: argparse.Namespace) -> int:
    expires = _expiry(getattr(args, "expires", None))

    async def action(runtime: Runtime) -> list[str]:
        rfid = runtime.services.rfid
        if args.action == "add":
            card = await rfid.issue(args.tag, args.group, label=args.label, expires_at=expires)
            return [f"issued {describe(card)}"]
        if args.action in ("block", "unblock"):
            await rfid.set_blocked(args.tag, args.action == "block")
            return [f"{args.tag} {'blocked' if args.action == 'block' else 'accepted'}"]
        return [describe(card) for card in await rfid.all()] or ["no cards"]

    for line in asyncio.run(with_runtime(action)):
        print(line)
    return 0
