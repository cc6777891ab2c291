"""plugpay for the live-latency benchmark, in its own process, with a site of chargers.

Run as a script (never imported by the orchestrator)::

    python server.py --db PATH --chargers 500 --prefix LV --password PW [--profile FILE]

It migrates the SQLite file, imports the example tariff ``simple-per-kwh.json``
(0.49 EUR per kWh), registers chargers ``{prefix}0 .. {prefix}N-1`` with one
Type 2 connector each on one site, assigns the tariff to the site (as
``plugpay demo`` seeds its demo site, at scale), and serves the app from
``create_app`` with ``uvicorn_config`` on 127.0.0.1 and a free port, payments by
the demo provider. Once it accepts connections it prints one JSON line
``{"port": ..., "pid": ...}``.

``--profile FILE``: SIGUSR1 starts a cProfile of the main thread's CPU time,
SIGUSR2 stops it and writes FILE (the orchestrator does both with ``--profile``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for ocpp_ingest

from ocpp_ingest.servers import die_with_parent, raise_nofile, serve_plugpay

TARIFF = Path(__file__).resolve().parents[2] / "infra" / "examples" / "simple-per-kwh.json"
SITE = "Live latency bench"
MAX_POWER_KW = Decimal(22)


async def seed(runtime: Any, prefix: str, count: int, password: str) -> None:
    """The site, its tariff and ``count`` chargers.

    The first charger goes through ``ChargerService.add_charger`` (validation,
    the site, the argon2 hash); the others copy its row, because hashing 500
    passwords would take a minute and verifying them costs the same.
    """
    from sqlalchemy import insert, select

    from plugpay.store import tables

    stored = await runtime.services.tariffs.import_tariff(TARIFF.read_bytes())
    await runtime.services.chargers.add_charger(
        f"{prefix}0",
        password,
        connectors=1,
        site=SITE,
        time_zone="Europe/Berlin",
        standard="IEC_62196_T2",
        max_power_kw=MAX_POWER_KW,
    )
    async with runtime.db.begin() as conn:
        row = (
            await conn.execute(
                select(tables.chargers.c.site_id, tables.chargers.c.password_hash).where(
                    tables.chargers.c.id == f"{prefix}0"
                )
            )
        ).one()
        site_id, password_hash = row
        created = datetime.now(UTC)
        ids = [f"{prefix}{n}" for n in range(1, count)]
        if ids:
            await conn.execute(
                insert(tables.chargers),
                [
                    {
                        "id": charger_id,
                        "site_id": site_id,
                        "password_hash": password_hash,
                        "connector_count": 1,
                        "connected": False,
                        "created_at": created,
                    }
                    for charger_id in ids
                ],
            )
            await conn.execute(
                insert(tables.connectors),
                [
                    {
                        "charger_id": charger_id,
                        "connector_id": 1,
                        "status": "Unknown",
                        "standard": "IEC_62196_T2",
                        "max_power_w": int(MAX_POWER_KW * 1000),
                    }
                    for charger_id in ids
                ],
            )
    await runtime.services.tariffs.assign(stored.tariff_id, site_id=site_id)


def serve(args: argparse.Namespace) -> None:
    # The ingest benchmark's launcher, seeded with chargers, a tariff and a site.
    serve_plugpay(args, prepare=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file")
    parser.add_argument("--chargers", type=int, default=500)
    parser.add_argument("--prefix", default="LV")
    parser.add_argument("--password", default="bench-password-0123456789")
    parser.add_argument("--profile", help="cProfile file (SIGUSR1 starts, SIGUSR2 writes it)")
    args = parser.parse_args()
    die_with_parent()
    raise_nofile()
    serve(args)


if __name__ == "__main__":
    main()
