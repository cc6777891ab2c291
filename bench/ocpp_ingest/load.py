"""Load generator for the ingest benchmark: OCPP 1.6 chargers on loopback.

Run as a script in its own process (so its CPU is not the server's)::

    python load.py ingest --port P --server-pid PID [--start-transaction] ...
    python load.py idle   --port P --first 0 --count 2500 ...
    python load.py storm  --port P --first 0 --count 1000 --start-at EPOCH ...

It uses the raw ``websockets`` asyncio client without compression and
without keep-alive pings, so the client stays cheap and every server gets
the same frames. Results are one JSON line on stdout.

- ``ingest``: ``--conns`` connections each send MeterValues CALLs as fast as
  they are answered (one outstanding per connection, as OCPP-J requires).
  After ``--warmup`` seconds it reads the server's CPU time (user + system,
  all threads, via psutil), counts answers for ``--seconds``, and reads the
  CPU time again.
- ``idle``: connects ``--count`` chargers (at most ``--parallel`` handshakes
  at a time, none started after ``--limit`` seconds), sends BootNotification
  on each, prints the result and keeps every connection open and idle until
  a line arrives on stdin.
- ``storm``: at ``--start-at`` (a shared wall-clock time), all ``--count``
  chargers connect at once, boot and send a StatusNotification; each call
  and the handshake time out after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from websockets.asyncio.client import ClientConnection, connect

ID_TAG = "BENCH-TAG-1"

loads, dumps = json.loads, json.dumps


class CallTimeout(Exception):
    pass


class CallRejected(Exception):
    pass


def die_with_parent() -> None:
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        sys.exit(1)


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def open_charger(
    args: argparse.Namespace, charger_id: str, subprotocol: str = "ocpp1.6"
) -> ClientConnection:
    token = base64.b64encode(f"{charger_id}:{args.password}".encode()).decode()
    return await connect(
        f"ws://127.0.0.1:{args.port}/ocpp/{charger_id}",
        subprotocols=[subprotocol],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {token}"},
        compression=None,
        ping_interval=None,
        open_timeout=args.timeout,
        close_timeout=2,
        max_queue=4,
    )


async def call(
    ws: ClientConnection, unique_id: str, action: str, payload: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Send one CALL and wait for its answer; server CALLs in between get an empty result."""
    await ws.send(dumps([2, unique_id, action, payload]))
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CallTimeout(action)
        try:
            frame = loads(await asyncio.wait_for(ws.recv(), remaining))
        except TimeoutError:
            raise CallTimeout(action) from None
        if frame[0] == 2:
            await ws.send(dumps([3, frame[1], {}]))
        elif frame[1] == unique_id:
            if frame[0] == 3:
                return frame[2]  # type: ignore[no-any-return]
            raise CallRejected(f"{action}: {frame[2]} {frame[3]}")


BOOT = {"chargePointVendor": "Bench", "chargePointModel": "Load-1"}


# -- ingest -------------------------------------------------------------------


def meter_frame(unique_id: str, transaction_id: int, at: datetime, energy_wh: int) -> str:
    """A typical periodic 1.6 MeterValues: energy register, power and SoC."""
    return dumps(
        [
            2,
            unique_id,
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": transaction_id,
                "meterValue": [
                    {
                        "timestamp": stamp(at),
                        "sampledValue": [
                            {
                                "value": str(energy_wh),
                                "context": "Sample.Periodic",
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                            },
                            {
                                "value": "11000",
                                "context": "Sample.Periodic",
                                "measurand": "Power.Active.Import",
                                "unit": "W",
                            },
                            {
                                "value": "42",
                                "context": "Sample.Periodic",
                                "measurand": "SoC",
                                "unit": "Percent",
                            },
                        ],
                    }
                ],
            },
        ],
        separators=(",", ":"),
    )


async def ingest(args: argparse.Namespace) -> dict[str, Any]:
    ids = [f"{args.prefix}{n}" for n in range(args.first, args.first + args.conns)]
    conns = await asyncio.gather(*(open_charger(args, cid) for cid in ids))
    # Readings one simulated second apart from two days ago, +10 Wh each
    # (36 kW): every reading is plausible and has its own timestamp.
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    transactions = list(range(1, args.conns + 1))
    if args.start_transaction:

        async def start(ws: ClientConnection) -> int:
            await call(ws, "boot", "BootNotification", BOOT, args.timeout)
            answer = await call(
                ws,
                "start",
                "StartTransaction",
                {"connectorId": 1, "idTag": ID_TAG, "meterStart": 0, "timestamp": stamp(base)},
                args.timeout,
            )
            return int(answer["transactionId"])

        transactions = list(await asyncio.gather(*(start(ws) for ws in conns)))

    answered = [0]
    rejected: list[str] = []
    stopping = asyncio.Event()

    async def pump(ws: ClientConnection, transaction_id: int) -> int:
        n = 0
        while not stopping.is_set():
            n += 1
            unique_id = str(n)
            await ws.send(
                meter_frame(unique_id, transaction_id, base + timedelta(seconds=n), n * 10)
            )
            while True:
                frame = loads(await ws.recv())
                if frame[0] == 2:  # a CALL from the server: answer and keep waiting
                    await ws.send(dumps([3, frame[1], {}]))
                    continue
                break
            if frame[0] == 3 and frame[1] == unique_id:
                answered[0] += 1
            elif len(rejected) < 5:
                rejected.append(str(frame)[:300])
            else:
                rejected.append("")
        return n

    tasks = [
        asyncio.ensure_future(pump(ws, tx)) for ws, tx in zip(conns, transactions, strict=True)
    ]
    server = psutil.Process(args.server_pid)
    me = psutil.Process()
    await asyncio.sleep(args.warmup)
    watched = Watched(args.watch_name)
    server0, mine0, machine0 = busy(server.cpu_times()), busy(me.cpu_times()), machine_busy()
    count0, wall0 = answered[0], time.perf_counter()
    await asyncio.sleep(args.seconds)
    server1, mine1, machine1 = busy(server.cpu_times()), busy(me.cpu_times()), machine_busy()
    count1, wall1 = answered[0], time.perf_counter()
    watched_cpu = watched.cpu()
    stopping.set()
    sent = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    if args.start_transaction:  # end each session as a charger would

        async def stop(ws: ClientConnection, transaction_id: int, n: int) -> None:
            await call(
                ws,
                "stop",
                "StopTransaction",
                {
                    "transactionId": transaction_id,
                    "meterStop": n * 10,
                    "timestamp": stamp(base + timedelta(seconds=n + 1)),
                    "reason": "Local",
                },
                args.timeout,
            )

        await asyncio.gather(*(stop(*x) for x in zip(conns, transactions, sent, strict=True)))
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    wall = wall1 - wall0
    return {
        "answered": count1 - count0,
        "wall": wall,
        "server_cpu": server1 - server0,
        "client_cpu": mine1 - mine0,
        # CPU the rest of the machine used meanwhile, as a share of all cores.
        "others_share": max(0.0, (machine1 - machine0) - (server1 - server0) - (mine1 - mine0))
        / (wall * (psutil.cpu_count() or 1)),
        "machine_busy": (machine1 - machine0) / (wall * (psutil.cpu_count() or 1)),
        "watched_cpu": watched_cpu,
        "total_answered": answered[0],
        "rejected": len(rejected),
        "rejected_sample": [r for r in rejected if r][:5],
    }


def busy(times: Any) -> float:
    return float(times.user + times.system)


class Watched:
    """CPU time of every process named ``name`` from now (e.g. the database's)."""

    def __init__(self, name: str | None) -> None:
        self.start: dict[int, tuple[psutil.Process, float]] = {}
        for process in psutil.process_iter(["name"]) if name else ():
            if process.info["name"] == name:
                with contextlib.suppress(psutil.Error):
                    self.start[process.pid] = (process, busy(process.cpu_times()))

    def cpu(self) -> float:
        total = 0.0
        for process, before in self.start.values():
            with contextlib.suppress(psutil.Error):
                total += busy(process.cpu_times()) - before
        return total


def machine_busy() -> float:
    """CPU seconds all cores spent on anything but waiting, since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


# -- idle ---------------------------------------------------------------------


async def idle(args: argparse.Namespace) -> None:
    ids = [f"{args.prefix}{n}" for n in range(args.first, args.first + args.count)]
    gate = asyncio.Semaphore(args.parallel)
    failures: list[str] = []
    skipped = [0]
    started = time.time()
    deadline = started + args.limit

    async def one(charger_id: str) -> ClientConnection | None:
        async with gate:
            if time.time() > deadline:  # keep the run bounded on a slow machine
                skipped[0] += 1
                return None
            try:
                ws = await open_charger(args, charger_id)
                await call(ws, "boot", "BootNotification", BOOT, args.timeout)
            except Exception as exc:
                failures.append(f"{charger_id}: {type(exc).__name__} {exc}"[:200])
                return None
            return ws

    conns = [ws for ws in await asyncio.gather(*(one(c) for c in ids)) if ws is not None]
    report = {
        "connected": len(conns),
        "failed": len(failures),
        "skipped": skipped[0],
        "failures": failures[:5],
        "started_at": started,
        "finished_at": time.time(),
    }
    print(json.dumps(report), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    print(json.dumps({"closed": len(conns)}), flush=True)


# -- storm --------------------------------------------------------------------


async def storm(args: argparse.Namespace) -> dict[str, Any]:
    ids = [f"{args.prefix}{n}" for n in range(args.first, args.first + args.count)]
    outcome: dict[str, int] = {
        "connect_timeouts": 0,
        "connect_errors": 0,
        "call_timeouts": 0,
        "call_errors": 0,
    }
    durations: list[float] = []  # connect + boot + status, per charger
    calls: list[float] = []  # boot + status, once connected
    errors: list[str] = []
    conns: list[ClientConnection] = []
    now = datetime.now(UTC)

    async def one(charger_id: str) -> None:
        begin = time.time()
        try:
            ws = await open_charger(args, charger_id)
        except TimeoutError:
            outcome["connect_timeouts"] += 1
            return
        except Exception as exc:
            outcome["connect_errors"] += 1
            errors.append(f"{charger_id} connect: {type(exc).__name__} {exc}"[:200])
            return
        conns.append(ws)
        connected = time.time()
        try:
            await call(ws, "boot", "BootNotification", BOOT, args.timeout)
            await call(
                ws,
                "status",
                "StatusNotification",
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Available",
                    "timestamp": stamp(now),
                },
                args.timeout,
            )
        except CallTimeout:
            outcome["call_timeouts"] += 1
            return
        except Exception as exc:
            outcome["call_errors"] += 1
            errors.append(f"{charger_id} call: {type(exc).__name__} {exc}"[:200])
            return
        durations.append(time.time() - begin)
        calls.append(time.time() - connected)

    delay = args.start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    await asyncio.gather(*(one(c) for c in ids))
    finished = time.time()
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    return {
        **outcome,
        "durations": durations,
        "calls": calls,
        "finished_at": finished,
        "errors": errors[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["ingest", "idle", "storm"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="CP")
    parser.add_argument("--password", default="bench-password-0123456789")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--start-transaction", action="store_true")
    parser.add_argument("--watch-name", help="ingest: also report the CPU of processes so named")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--limit", type=float, default=1e9, help="idle: start no connection after")
    args = parser.parse_args()
    die_with_parent()
    raise_nofile()
    try:  # the cheaper loop keeps more of the machine for the server
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        if args.mode == "ingest":
            print(json.dumps(runner.run(ingest(args))), flush=True)
        elif args.mode == "idle":
            runner.run(idle(args))
        else:
            print(json.dumps(runner.run(storm(args))), flush=True)


if __name__ == "__main__":
    main()
