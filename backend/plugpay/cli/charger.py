"""``plugpay charger add``, ``plugpay charger list`` and ``plugpay charger log``."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from plugpay.cli.common import CliError, with_runtime
from plugpay.services.ports import ChargerView, LoggedMessage

if TYPE_CHECKING:
    from plugpay.runtime import Runtime

T = TypeVar("T")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("charger", help="register and list chargers")
    sub = parser.add_subparsers(dest="charger_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="register a charger and its connectors")
    add.add_argument("id")
    add.add_argument("--password", required=True, help="16-40 characters (OCPP Basic auth)")
    add.add_argument("--connectors", type=int, default=1)
    add.add_argument("--tariff", default=None, help="tariff id for its connectors")
    add.add_argument("--site", default=None)
    add.add_argument("--time-zone", default="UTC", help="the site's time zone (for new sites)")
    add.add_argument("--connector-type", default=None, help="OCPI ConnectorType, e.g. IEC_62196_T2")
    add.add_argument("--power-kw", type=Decimal, default=None, help="most power per connector")
    add.set_defaults(run=run_add)
    listing = sub.add_parser("list", help="chargers with connection state and connector status")
    listing.set_defaults(run=run_list)
    frames = sub.add_parser("log", help="the OCPP frames a charger sent and got, oldest first")
    frames.add_argument("id")
    frames.add_argument("--limit", type=int, default=50, help="how many frames (default 50)")
    frames.set_defaults(run=run_log)


def run_add(args: argparse.Namespace) -> int:
    async def action(runtime: Runtime) -> None:
        if args.tariff:
            await runtime.services.tariffs.get(args.tariff)  # refuse before adding anything
        await runtime.services.chargers.add_charger(
            args.id,
            args.password,
            args.connectors,
            args.site,
            args.time_zone,
            args.connector_type,
            args.power_kw,
        )
        if args.tariff:
            await runtime.services.tariffs.assign(args.tariff, charger_id=args.id)

    asyncio.run(with_runtime(action))
    print(f"charger {args.id} added with {args.connectors} connector(s)")
    return 0


def _ago(at: datetime | None) -> str:
    if at is None:
        return "never"
    seconds = int((datetime.now(UTC) - at).total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return at.strftime("%Y-%m-%d %H:%M UTC")


def format_table(views: list[ChargerView]) -> str:
    if not views:
        return "no chargers registered (add one with: plugpay charger add ID --password PW)"
    header = ("CHARGER", "STATE", "OCPP", "LAST HEARTBEAT", "FIRMWARE", "CONNECTORS")
    rows = [header]
    for v in views:
        connectors = ", ".join(
            f"{c.connector_id}:{c.status}" + (f"({c.error_code})" if c.error_code else "")
            for c in v.connectors
        )
        firmware = v.firmware_version or "-"
        if v.firmware_status:
            firmware += f" [{v.firmware_status}]"
        state = "connected" if v.connected else "offline"
        if v.connected and v.boot_status:
            state += f"/{v.boot_status.lower()}"
        rows.append(
            (
                v.id,
                state,
                v.ocpp_version or "-",
                _ago(v.last_heartbeat_at),
                firmware,
                connectors or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows
    )


def run_list(args: argparse.Namespace) -> int:
    async def action(runtime: Runtime) -> list[ChargerView]:
        return await runtime.services.chargers.list_chargers()

    print(format_table(asyncio.run(with_runtime(action))))
    return 0


def format_log(messages: list[LoggedMessage]) -> str:
    if not messages:
        return "no frames logged yet"
    return "\n".join(
        f"{m.at.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}  {m.direction:<3}  {m.frame}"
        for m in messages
    )


def run_log(args: argparse.Namespace) -> int:

    if args.limit < 1:
        raise CliError("--limit must be at least 1")

    async def action(runtime: Runtime) -> list[LoggedMessage] | None:
        if await runtime.charger_store.get(args.id) is None:
            return None
        return await runtime.message_log.recent(args.id, args.limit)

    messages = asyncio.run(with_runtime(action))
    if messages is None:
        raise CliError(f"no charger {args.id!r} (see: plugpay charger list)")
    print(format_log(messages))
    return 0
