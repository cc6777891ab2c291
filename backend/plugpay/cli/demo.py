"""``plugpay demo``: what ``make run`` runs — server, demo site, virtual charger, QR code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import segno
import uvicorn

from plugpay.app import create_app
from plugpay.cli.common import check_port
from plugpay.cli.serve import uvicorn_config
from plugpay.config import OidcProvider, load_settings
from plugpay.domain.errors import AlreadyExists
from plugpay.runtime import Runtime
from plugpay.sim.charger import VirtualCharger
from plugpay.sim.identity import DemoIdentityProvider
from plugpay.store.migrate import upgrade_async

DEMO_CHARGER = "DEMO-1"
DEMO_SITE = "plugpay demo site"
DEMO_TARIFF = (
    Path(__file__).resolve().parents[3] / "infra" / "examples" / "time-of-use-idle-fee.json"
)
PASSWORD_FILE = Path(".plugpay-demo-charger")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="server + demo site + virtual charger (make run)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--ocpp", choices=("1.6", "2.0.1"), default="1.6")
    parser.add_argument("--power-kw", type=float, default=22.0)
    parser.set_defaults(run=run)


def demo_password() -> str:
    if PASSWORD_FILE.is_file():
        return PASSWORD_FILE.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(18)
    PASSWORD_FILE.write_text(password + "\n", encoding="utf-8")
    os.chmod(PASSWORD_FILE, 0o600)
    return password


async def seed(runtime: Runtime, password: str) -> None:
    """The demo site: one charger with two connectors and a time-of-use tariff (idempotent)."""
    tariffs = runtime.services.tariffs
    stored = await runtime.tariff_store.latest("TOU-IDLE")
    if stored is None:
        await tariffs.import_tariff(DEMO_TARIFF.read_bytes())
    with contextlib.suppress(AlreadyExists):  # seeded on an earlier run
        await runtime.services.chargers.add_charger(
            DEMO_CHARGER,
            password,
            connectors=2,
            site=DEMO_SITE,
            time_zone="Europe/Berlin",
            standard="IEC_62196_T2",
            max_power_kw=Decimal(22),
        )
    await tariffs.assign("TOU-IDLE", charger_id=DEMO_CHARGER)


def banner(public_url: str) -> str:
    url = f"{public_url}/c/{DEMO_CHARGER}/1"
    qr = segno.make(url, error="m")
    lines = [
        "",
        "plugpay demo is running.",
        f"  Driver page (connector 1): {url}",
        f"  Connector 2:               {public_url}/c/{DEMO_CHARGER}/2",
        f"  Sign in (Demo ID):         {public_url}/me",
        "  Payments: demo provider (no real card is charged). Ctrl-C stops everything.",
        "",
        _qr_text(qr),
    ]
    return "\n".join(lines)


def _qr_text(qr: segno.QRCode) -> str:
    import io

    buffer = io.StringIO()
    qr.terminal(out=buffer, compact=True)
    return buffer.getvalue()


async def main(args: argparse.Namespace) -> None:
    settings = load_settings()
    if not os.environ.get("PLUGPAY_PUBLIC_URL"):
        settings = replace(settings, public_url=f"http://{args.host}:{args.port}")
    if settings.database_url.startswith("sqlite"):
        await upgrade_async(settings.database_url)
    password = demo_password()
    # A stand-in sign-in provider on this server, beside any configured ones.
    identity = DemoIdentityProvider(settings.public_url)
    demo_id = OidcProvider(
        "demo", identity.issuer, identity.client_id, identity.client_secret, "Demo ID"
    )
    settings = replace(settings, oidc_providers=(*settings.oidc_providers, demo_id))
    app = create_app(settings, extra_routes=[identity.router()])
    runtime: Runtime = app.state.runtime
    server = uvicorn.Server(
        uvicorn_config(settings, args.host, args.port, app, log_level="warning")
    )
    await seed(runtime, password)
    serving = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.05)
    charger = VirtualCharger(
        DEMO_CHARGER,
        f"ws://{args.host}:{args.port}/ocpp",
        password,
        args.ocpp,
        power_kw=args.power_kw,
        connectors=2,
        meter_interval=2.0,
    )
    simulating = asyncio.get_running_loop().create_task(charger.run())
    print(banner(settings.public_url), flush=True)
    try:
        await serving
    finally:
        await charger.close()
        simulating.cancel()


def run(args: argparse.Namespace) -> int:
    check_port(args.host, args.port, "choose another: make run PORT=8001 (or --port 8001)")
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args))
    return 0
