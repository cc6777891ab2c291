"""The three OCPP servers the ingest benchmark compares, one per process.

Run as a script (never imported by the orchestrator, so each server owns its
process and its CPU time can be read on its own)::

    python servers.py plugpay --db PATH --chargers N --prefix CP --password PW
    python servers.py plugpay --database-url postgresql+asyncpg://... [--redis-url ...]
    python servers.py seed --database-url ... --chargers N   (then exits)
    python servers.py stock | stock201 | echo

Each binds 127.0.0.1 on a free port and prints one JSON line
``{"port": ..., "pid": ...}`` on stdout once it accepts connections.

- ``plugpay``: plugpay's own gateway with persistence: the app from
  ``create_app`` served by uvicorn with ``uvicorn_config`` (as ``plugpay serve``),
  a migrated SQLite file (or the database at ``--database-url``), N registered
  chargers and one accepted id tag (``--no-seed``: another instance registered
  them). ``--redis-url`` makes it one of several instances, as in production.
- ``stock``: the ``ocpp`` package's ``ChargePoint`` (1.6) with an
  ``@on("MeterValues")`` handler, its default jsonschema validation and no
  persistence, behind a plain ``websockets.serve``.
- ``stock201``: the same for OCPP 2.0.1 (``ocpp.v201.ChargePoint``) with
  handlers for BootNotification, Authorize and TransactionEvent (an
  ``idTokenInfo`` when the event carries an idToken, as plugpay answers).
- ``echo``: a bare ``websockets.serve`` that answers every frame with the
  fixed CALLRESULT ``[3, <id>, {}]``, reading the id with ``json.loads``
  (for either OCPP version).

``--loop uvloop`` (the default) runs the two reference servers on the same
event loop uvicorn picks for plugpay, so the comparison is about the code
above the loop, not the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import resource
import signal
import socket
import sys
from datetime import UTC, datetime
from typing import Any

ID_TAG = "BENCH-TAG-1"


def die_with_parent() -> None:
    """Linux: get SIGTERM when the process that started us dies (no orphans)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        sys.exit(1)


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def listen_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock


def announce(port: int) -> None:
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)


def run_on(loop_name: str, coro: Any) -> None:
    factory = None
    if loop_name == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(coro)


# -- plugpay ------------------------------------------------------------------


async def register_chargers(runtime: Any, prefix: str, count: int, password: str) -> None:
    """Register chargers ``{prefix}{0..count-1}`` with one connector each.

    The first goes through ``ChargerService.add_charger`` (validation and the
    argon2 hash); the others reuse its stored hash, because hashing 5,000
    passwords would take minutes and verifying them costs the same.
    """
    from sqlalchemy import insert, select

    from plugpay.store import tables

    chargers = runtime.services.chargers
    await chargers.add_charger(f"{prefix}0", password, connectors=1)
    await chargers.add_id_tag(ID_TAG)
    async with runtime.db.begin() as conn:
        password_hash = await conn.scalar(
            select(tables.chargers.c.password_hash).where(tables.chargers.c.id == f"{prefix}0")
        )
        created = datetime.now(UTC)
        for start in range(1, count, 1000):
            ids = [f"{prefix}{n}" for n in range(start, min(count, start + 1000))]
            await conn.execute(
                insert(tables.chargers),
                [
                    {
                        "id": charger_id,
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
                    {"charger_id": charger_id, "connector_id": 1, "status": "Unknown"}
                    for charger_id in ids
                ],
            )


def serve_plugpay(args: argparse.Namespace, prepare: Any = None) -> None:
    """plugpay under uvicorn on a fresh socket; ``prepare(runtime, prefix, count, password)``
    seeds the database first (default: register the chargers)."""
    import uvicorn

    from plugpay.cli.serve import settle_heap, uvicorn_config
    from plugpay.config import Settings
    from plugpay.store.migrate import upgrade

    # Launchers of other benchmarks pass only --db (and their own options).
    url = getattr(args, "database_url", None) or f"sqlite+aiosqlite:///{args.db}"
    seed = getattr(args, "seed", True)
    if seed:
        upgrade(url)  # alembic runs its own event loop: before ours starts
    settings = Settings(
        database_url=url,
        secret_key="bench-" + "k" * 40,
        redis_url=getattr(args, "redis_url", None),
    )
    sock = listen_socket()
    port = sock.getsockname()[1]
    app = None
    if not getattr(args, "jobs", True):  # diagnosis: what the job worker costs
        from plugpay.app import create_app

        app = create_app(settings, run_worker=False)
    config = uvicorn_config(settings, "127.0.0.1", port, app=app, log_level="warning")
    runtime = config.app.state.runtime

    async def main() -> None:
        if seed:
            await (prepare or register_chargers)(runtime, args.prefix, args.chargers, args.password)
        settle_heap()  # as ``plugpay serve`` does
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
                raise SystemExit("uvicorn did not start")
            await asyncio.sleep(0.02)
        announce(port)
        await task

    config.load()
    run_on_factory = config.get_loop_factory()
    with asyncio.Runner(loop_factory=run_on_factory) as runner:
        if args.profile:
            import cProfile
            import time

            # Main-thread CPU time: waiting (and the database thread) is not counted.
            profiler = cProfile.Profile(time.thread_time)

            def dump(*_: Any) -> None:
                profiler.disable()
                profiler.dump_stats(args.profile)

            signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
            signal.signal(signal.SIGUSR2, dump)
        runner.run(main())


def seed_only(args: argparse.Namespace) -> None:
    """Migrate the database and register the chargers, then exit (for instances started
    as ``plugpay serve``, which migrate nothing on PostgreSQL)."""
    from plugpay.config import Settings
    from plugpay.runtime import build_runtime
    from plugpay.store.migrate import upgrade

    url = args.database_url or f"sqlite+aiosqlite:///{args.db}"
    upgrade(url)

    async def main() -> None:
        runtime = build_runtime(
            Settings(database_url=url, secret_key="bench-" + "k" * 40), push=None
        )
        try:
            await register_chargers(runtime, args.prefix, args.chargers, args.password)
        finally:
            await runtime.close()

    asyncio.run(main())
    print(json.dumps({"seeded": args.chargers}), flush=True)


# -- the stock ocpp ChargePoint ------------------------------------------------


def serve_stock(args: argparse.Namespace) -> None:
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    class BenchChargePoint(ChargePoint):  # type: ignore[misc]
        @on("MeterValues")
        async def on_meter_values(
            self, connector_id: int, meter_value: list[Any], **kwargs: Any
        ) -> Any:
            return call_result.MeterValues()

        @on("BootNotification")
        async def on_boot_notification(
            self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
        ) -> Any:
            return call_result.BootNotification(
                current_time="2026-01-01T00:00:00Z", interval=300, status="Accepted"
            )

    async def handler(connection: Any) -> None:
        charger_id = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
        with contextlib.suppress(ConnectionClosed):
            await BenchChargePoint(charger_id, connection).start()

    async def main() -> None:
        sock = listen_socket()
        async with serve(handler, sock=sock, subprotocols=["ocpp1.6"]) as server:
            announce(sock.getsockname()[1])
            await stop_on_sigterm()
            server.close()

    run_on(args.loop, main())


def serve_stock201(args: argparse.Namespace) -> None:
    from ocpp.routing import on
    from ocpp.v201 import ChargePoint, call_result
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    accepted = {"status": "Accepted"}

    class BenchChargePoint201(ChargePoint):  # type: ignore[misc]
        @on("BootNotification")
        async def on_boot_notification(
            self, charging_station: dict[str, Any], reason: str, **kwargs: Any
        ) -> Any:
            return call_result.BootNotification(
                current_time="2026-01-01T00:00:00Z", interval=300, status="Accepted"
            )

        @on("Authorize")
        async def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
            return call_result.Authorize(id_token_info=accepted)

        @on("TransactionEvent")
        async def on_transaction_event(
            self,
            event_type: str,
            timestamp: str,
            trigger_reason: str,
            seq_no: int,
            transaction_info: dict[str, Any],
            **kwargs: Any,
        ) -> Any:
            if kwargs.get("id_token"):
                return call_result.TransactionEvent(id_token_info=accepted)
            return call_result.TransactionEvent()

    async def handler(connection: Any) -> None:
        charger_id = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
        with contextlib.suppress(ConnectionClosed):
            await BenchChargePoint201(charger_id, connection).start()

    async def main() -> None:
        sock = listen_socket()
        async with serve(handler, sock=sock, subprotocols=["ocpp2.0.1"]) as server:
            announce(sock.getsockname()[1])
            await stop_on_sigterm()
            server.close()

    run_on(args.loop, main())


# -- a bare websockets echo ------------------------------------------------------


def serve_echo(args: argparse.Namespace) -> None:
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    loads, dumps = json.loads, json.dumps

    async def handler(connection: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in connection:
                await connection.send("[3," + dumps(loads(frame)[1]) + ",{}]")

    async def main() -> None:
        sock = listen_socket()
        async with serve(handler, sock=sock, subprotocols=["ocpp1.6", "ocpp2.0.1"]) as server:
            announce(sock.getsockname()[1])
            await stop_on_sigterm()
            server.close()

    run_on(args.loop, main())


async def stop_on_sigterm() -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["plugpay", "seed", "stock", "stock201", "echo"])
    parser.add_argument("--db", help="plugpay: SQLite file")
    parser.add_argument("--database-url", help="plugpay: a database URL instead of --db")
    parser.add_argument("--redis-url", help="plugpay: one of several instances")
    parser.add_argument(
        "--no-jobs",
        dest="jobs",
        action="store_false",
        help="plugpay: no job worker (to see what the jobs cost; never for a figure)",
    )
    parser.add_argument(
        "--no-seed",
        dest="seed",
        action="store_false",
        help="plugpay: the database is migrated and seeded already",
    )
    parser.add_argument("--chargers", type=int, default=50)
    parser.add_argument("--prefix", default="CP")
    parser.add_argument("--password", default="bench-password-0123456789")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument(
        "--profile", help="plugpay: cProfile file (SIGUSR1 starts, SIGUSR2 writes it)"
    )
    args = parser.parse_args()
    die_with_parent()
    raise_nofile()
    roles = {
        "plugpay": serve_plugpay,
        "seed": seed_only,
        "stock": serve_stock,
        "stock201": serve_stock201,
        "echo": serve_echo,
    }
    roles[args.role](args)


if __name__ == "__main__":
    main()
