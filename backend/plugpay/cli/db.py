"""``plugpay db upgrade``."""

from __future__ import annotations

import argparse

from plugpay.config import load_settings
from plugpay.store.migrate import upgrade


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("db", help="database migrations")
    sub = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = sub.add_parser("upgrade", help="apply migrations to PLUGPAY_DATABASE_URL")
    up.add_argument("--revision", default="head")
    up.set_defaults(run=run_upgrade)


def run_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    upgrade(settings.database_url, args.revision)
    print(f"database is at {args.revision}")
    return 0
