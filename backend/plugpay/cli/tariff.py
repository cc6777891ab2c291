"""``plugpay tariff import|export|list|assign|quote``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugpay.cli.common import with_runtime
from plugpay.domain.tariff import (
    LocalTimeKind,
    PriceBreakdown,
    breakdown_to_json,
    local_time_kind,
    site_instant,
)

if TYPE_CHECKING:
    from plugpay.runtime import Runtime


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("tariff", help="OCPI 2.2.1 tariffs")
    sub = parser.add_subparsers(dest="tariff_command", required=True, metavar="ACTION")
    imp = sub.add_parser("import", help="import an OCPI Tariff (JSON); prints its id")
    imp.add_argument("file")
    imp.set_defaults(run=run_import)
    exp = sub.add_parser("export", help="print the latest version as OCPI JSON")
    exp.add_argument("tariff_id")
    exp.set_defaults(run=run_export)
    listing = sub.add_parser("list", help="tariffs with their latest version")
    listing.set_defaults(run=run_list)
    assign = sub.add_parser("assign", help="make a tariff apply to a charger/connector or a site")
    assign.add_argument("tariff_id")
    target = assign.add_mutually_exclusive_group(required=True)
    target.add_argument("--charger")
    target.add_argument("--site")
    assign.add_argument("--connector", type=int, default=None)
    assign.add_argument("--audience", default="*", help="*, guest, member:GROUP or contract:ID")
    assign.set_defaults(run=run_assign)
    q = sub.add_parser(
        "quote",
        help="price a session line by line",
        description="Price a session line by line. Minutes are elapsed time: a quote "
        "across a daylight saving change lasts exactly its minutes.",
    )
    q.add_argument("tariff_id")
    q.add_argument("--kwh", type=_decimal)
    q.add_argument("--minutes", type=_decimal)
    q.add_argument("--parking-minutes", type=_decimal, default=Decimal(0))
    q.add_argument(
        "--periods", help="JSON file: [{minutes, kwh, power_kw?, current_a?, charging?}]"
    )
    q.add_argument(
        "--start",
        help="ISO date-time, site-local unless it has an offset (default: now). A local "
        "time the clock shows twice (autumn) means the first one; one it skips (spring) "
        "moves forward by the gap (02:30 -> 03:30); either way a note says which instant "
        "was quoted. An offset picks the other, e.g. 2026-10-25T02:30+01:00",
    )
    q.add_argument("--time-zone", default=None, help="IANA zone (default: UTC)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(run=run_quote)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number: {text!r}")
    return value


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


def run_import(args: argparse.Namespace) -> int:
    data = _read(args.file)

    async def action(runtime: Any) -> Any:
        return await runtime.services.tariffs.import_tariff(data)

    stored = asyncio.run(with_runtime(action))
    print(stored.tariff_id)
    return 0


def run_export(args: argparse.Namespace) -> int:
    async def action(runtime: Any) -> Any:
        return await runtime.services.tariffs.get(args.tariff_id)

    stored, _ = asyncio.run(with_runtime(action))
    print(stored.ocpi_json)
    return 0


def run_list(args: argparse.Namespace) -> int:
    async def action(runtime: Any) -> Any:
        return await runtime.tariff_store.list_latest()

    rows = asyncio.run(with_runtime(action))
    if not rows:
        print("no tariffs (import one with: plugpay tariff import FILE.json)")
    for stored in rows:
        print(f"{stored.tariff_id}\tv{stored.version}")
    return 0


def run_assign(args: argparse.Namespace) -> int:
    async def action(runtime: Any) -> None:
        site_id = None
        if args.site:
            site_id = await runtime.tariff_store.site_id(args.site)
            if site_id is None:
                raise ValueError(f"no site named {args.site!r}")
        elif await runtime.charger_store.get(args.charger) is None:
            raise ValueError(f"no charger {args.charger!r}")
        await runtime.services.tariffs.assign(
            args.tariff_id,
            site_id=site_id,
            charger_id=args.charger,
            connector_id=args.connector,
            audience=args.audience,
        )

    asyncio.run(with_runtime(action))
    print(f"tariff {args.tariff_id} assigned")
    return 0


def _zone(name: str | None) -> str:
    zone = name or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r}") from None
    return zone


def quote_start(text: str | None, zone: str) -> tuple[datetime, str | None]:
    """``--start`` as a UTC instant, and a note when the site's clock repeats or skips it.

    Minutes are then added to the instant, not to the wall clock, so the quote
    lasts as long as the session it stands for.
    """
    if not text:
        return datetime.now(UTC), None
    try:
        given = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--start must be an ISO date-time, got {text!r}") from None
    start = site_instant(given, zone)
    if given.tzinfo is not None:
        return start, None
    kind = local_time_kind(given, zone)
    quoted = start.astimezone(ZoneInfo(zone)).isoformat()
    if kind is LocalTimeKind.REPEATED:
        other = given.replace(tzinfo=ZoneInfo(zone), fold=1).isoformat()
        return start, (
            f"{text} happens twice in {zone}: quoting from the first, {quoted} "
            f"(for the second, give --start {other})"
        )
    if kind is LocalTimeKind.SKIPPED:
        return start, f"{text} does not exist in {zone} (the clock skips it): quoting from {quoted}"
    return start, None


def run_quote(args: argparse.Namespace) -> int:
    zone = _zone(args.time_zone)
    start, note = quote_start(args.start, zone)
    periods = None
    if args.periods:
        try:
            periods = json.loads(_read(args.periods))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{args.periods} is not JSON: {exc.msg}") from None
        if not isinstance(periods, list):
            raise ValueError("--periods must hold a JSON list of periods")
    elif args.kwh is None or args.minutes is None:
        raise ValueError("give --kwh and --minutes, or --periods FILE")

    async def action(runtime: Runtime) -> PriceBreakdown:
        tariffs = runtime.services.tariffs
        if periods is not None:
            return await tariffs.quote_periods(
                args.tariff_id, periods, start_local=start, time_zone=zone
            )
        return await tariffs.quote(
            args.tariff_id,
            kwh=args.kwh,
            minutes=args.minutes,
            parking_minutes=args.parking_minutes,
            start_local=start,
            time_zone=zone,
        )

    breakdown = asyncio.run(with_runtime(action))
    if note is not None:
        print(f"note: {note}", file=sys.stderr)
    document = breakdown_to_json(breakdown)
    if args.json:
        print(json.dumps(document))
    else:
        print(format_quote(document))
    return 0


def format_quote(document: dict[str, Any]) -> str:
    currency = document["currency"]
    rows = [("DIMENSION", "QUANTITY", "EXCL. VAT", "VAT %", "INCL. VAT")]
    for line in document["lines"]:
        rows.append(
            (
                line["dimension"],
                f"{line['quantity']} {line['unit']}",
                line["amount_excl_vat"],
                line["vat_rate"] if line.get("vat_rate") is not None else "-",
                line["amount_incl_vat"] if line.get("amount_incl_vat") is not None else "-",
            )
        )
    total_incl = document["total_incl_vat"]
    rows.append(
        ("TOTAL", "", document["total_excl_vat"], "", total_incl if total_incl is not None else "-")
    )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    text = "\n".join(
        "  ".join(
            c.rjust(widths[i]) if i >= 2 else c.ljust(widths[i]) for i, c in enumerate(r)
        ).rstrip()
        for r in rows
    )
    return f"{text}\n(amounts in {currency})"
