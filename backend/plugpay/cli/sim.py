"""``plugpay sim``: a virtual charger that connects to a server over real OCPP."""

from __future__ import annotations

import argparse
import asyncio
import logging

from plugpay.sim.charger import VirtualCharger


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("sim", help="run a virtual charger")
    parser.add_argument("id")
    parser.add_argument("--url", required=True, help="e.g. ws://127.0.0.1:8000/ocpp")
    parser.add_argument("--password", required=True)
    parser.add_argument("--ocpp", choices=("1.6", "2.0.1"), default="1.6")
    parser.add_argument("--power-kw", type=float, default=11.0)
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument(
        "--meter-interval", type=float, default=10.0, help="seconds between MeterValues"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.url.startswith(("ws://", "wss://")):
        raise ValueError("--url must start with ws:// or wss://")
    if args.power_kw <= 0:
        raise ValueError("--power-kw must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sim %(levelname)s %(message)s")
    charger = VirtualCharger(
        args.id,
        args.url,
        args.password,
        args.ocpp,
        args.power_kw,
        args.connectors,
        args.meter_interval,
    )
    asyncio.run(charger.run())
    return 0
