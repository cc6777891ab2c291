"""``plugpay group add|remove|list``: driver groups, the tariff audience "member:GROUP".

A driver joins by account (``--account ID`` or ``--email ADDRESS`` of an account
that signed in once); everyone signing in with a provider can join its groups
automatically (``groups`` in PLUGPAY_OIDC_PROVIDERS). Prices for a group are
assigned with ``plugpay tariff assign ... --audience member:GROUP``.
"""

from __future__ import annotations

import argparse
import asyncio

from plugpay.cli.common import CliError, with_runtime
from plugpay.runtime import Runtime
from plugpay.services.ports.accounts import Account


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("group", help="driver groups (member prices)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("add", "add a driver to a group"), ("remove", "take one out")):
        action = actions.add_parser(name, help=text)
        action.add_argument("group", help="1-32 of a-z, 0-9 and -")
        who = action.add_mutually_exclusive_group(required=True)
        who.add_argument("--account", type=int, help="the account's id")
        who.add_argument("--email", help="the account's e-mail address")
        action.set_defaults(run=run)
    listing = actions.add_parser("list", help="the members of a group (of every group)")
    listing.add_argument("group", nargs="?", default=None)
    listing.set_defaults(run=run)


def _who(account: Account) -> str:
    return f"account {account.id} ({account.email or account.name or 'no e-mail'})"


def run(args: argparse.Namespace) -> int:
    async def action(runtime: Runtime) -> list[str]:
        groups = runtime.services.groups
        if args.action == "add":
            account = await groups.add(args.group, args.account, args.email)
            return [f"{_who(account)} is in group {args.group}"]
        if args.action == "remove":
            if not await groups.remove(args.group, args.account, args.email):
                raise CliError(f"that account is not in group {args.group}")
            return [f"removed from group {args.group}"]
        members = await groups.members(args.group)
        return [f"{group}\t{_who(account)}" for group, account in members] or ["no members"]

    for line in asyncio.run(with_runtime(action)):
        print(line)
    return 0
