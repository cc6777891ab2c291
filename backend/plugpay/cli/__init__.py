"""The ``plugpay`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from plugpay.cli import charger, db, demo, group, jobs, refund, rfid, serve, sim, tariff
from plugpay.cli.common import CliError
from plugpay.config import ConfigError
from plugpay.domain.errors import PlugpayError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plugpay", description="Pay-to-charge for electric vehicles."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, demo, db, charger, tariff, sim, jobs, refund, group, rfid):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.run(args)
    except (ConfigError, PlugpayError, CliError, ValueError) as exc:
        print(f"plugpay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
