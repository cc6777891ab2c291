"""Chargers for the live-latency benchmark: cheap OCPP 1.6 clients on raw ``websockets``.

Run as a script in its own process (so its CPU is not the server's)::

    python chargers.py plugpay --port P --first 0 --count 250 --total 500 --interval 3
    python chargers.py echo    --port P --first 0 --count 250 --total 500 --interval 3

Both modes connect ``--count`` chargers ``{prefix}{first}..`` (the client of
``ocpp_ingest/load.py``: no compression, no keep-alive pings), print one JSON
line when they are connected, and wait for a line ``go T0 SECONDS`` on stdin:
``T0`` is a ``time.monotonic_ns()`` value (CLOCK_MONOTONIC, one clock for every
process on a Linux machine, so the orchestrator's and every client's readings
compare). From T0 on, for SECONDS, each charger sends a 1.6 MeterValues
(energy register, power, SoC) every ``--interval`` seconds, the chargers
evenly staggered over the interval by their place in ``--total``; a charger
waits for the answer to one before it sends the next, as OCPP-J requires, so
a slow server gets fewer readings (none is sent after T0 + SECONDS).
Then one JSON line with every reading sent: its register in Wh, the
``monotonic_ns`` taken just before the frame went to the socket, and the
round trip of its answer in ns (-1: none); a line on stdin closes the
connections.

- ``plugpay``: each charger boots, reports its connector Available, and
  answers RemoteStartTransaction with Accepted, then sends StartTransaction
  with the idTag it was given and a first MeterValues at 0 Wh (so the live
  pricing of the session is set up before the measurement). Reading k of a
  charger has the register k x ``--step`` Wh: at 10 Wh every reading shows
  its own figure at the live page's 0.01 kWh resolution, which is how the
  orchestrator matches readings to events.
- ``echo``: the same frames to a bare ``websockets`` echo server, which
  answers each with ``[3, id, {}]``; the round trips are the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for ocpp_ingest

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ocpp_ingest.load import BOOT, die_with_parent, open_charger, raise_nofile

loads, dumps = json.loads, json.dumps
monotonic_ns = time.monotonic_ns


class CallFailed(Exception):
    pass


def stamp(at: datetime) -> str:
    """RFC 3339 with milliseconds: readings a few seconds apart never share an instant."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def meter_frame(unique_id: str, transaction_id: int, energy_wh: int, power_w: int) -> str:
    """A typical periodic 1.6 MeterValues: energy register, power and SoC, stamped now."""
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
                        "timestamp": stamp(datetime.now(UTC)),
                        "sampledValue": [
                            {
                                "value": str(energy_wh),
                                "context": "Sample.Periodic",
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                            },
                            {
                                "value": str(power_w),
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


class Charger:
    """One connection: a reader task matches answers to calls and answers the server's CALLs."""

    def __init__(self, ws: ClientConnection, charger_id: str, timeout: float) -> None:
        self.ws = ws
        self.id = charger_id
        self.timeout = timeout
        self.pending: dict[str, asyncio.Future[tuple[list[Any], int]]] = {}
        self.counter = 0
        self.started = asyncio.Event()
        self.transaction_id = 0
        # Per reading: [register Wh, monotonic_ns at send, round trip of its answer in ns or -1]
        self.sent: list[list[int]] = []
        self.errors: list[str] = []
        self.background: set[asyncio.Task[None]] = set()
        self.reader = asyncio.get_running_loop().create_task(self.read())

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                now = monotonic_ns()
                frame = loads(raw)
                if frame[0] == 2:
                    await self.on_call(frame)
                    continue
                future = self.pending.pop(frame[1], None)
                if future is not None and not future.done():
                    future.set_result((frame, now))
        except ConnectionClosed:
            pass
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(CallFailed("connection closed"))

    async def on_call(self, frame: list[Any]) -> None:
        action, payload = frame[2], frame[3]
        if action == "RemoteStartTransaction":
            await self.ws.send(dumps([3, frame[1], {"status": "Accepted"}]))
            self.spawn(self.start(str(payload["idTag"])))
        elif action in ("RemoteStopTransaction", "ChangeAvailability", "TriggerMessage"):
            await self.ws.send(dumps([3, frame[1], {"status": "Accepted"}]))
        else:
            await self.ws.send(dumps([3, frame[1], {}]))

    def spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def send_call(self, unique_id: str, text: str) -> tuple[int, list[Any], int]:
        """Send one CALL frame; (monotonic_ns at send, the answer, monotonic_ns at answer)."""
        future: asyncio.Future[tuple[list[Any], int]] = asyncio.get_running_loop().create_future()
        self.pending[unique_id] = future
        sent = monotonic_ns()
        await self.ws.send(text)
        try:
            answer, received = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self.pending.pop(unique_id, None)
            raise CallFailed(f"no answer in {self.timeout:g} s") from None
        if answer[0] != 3:
            raise CallFailed(str(answer)[:200])
        return sent, answer, received

    def next_id(self) -> str:
        self.counter += 1
        return str(self.counter)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        unique_id = self.next_id()
        _, answer, _ = await self.send_call(unique_id, dumps([2, unique_id, action, payload]))
        return answer[2]  # type: ignore[no-any-return]

    async def boot(self) -> None:
        await self.call("BootNotification", BOOT)
        await self.status("Available")

    async def status(self, status: str) -> None:
        await self.call(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": status,
                "timestamp": stamp(datetime.now(UTC)),
            },
        )

    async def start(self, id_tag: str) -> None:
        try:
            answer = await self.call(
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": id_tag,
                    "meterStart": 0,
                    "timestamp": stamp(datetime.now(UTC)),
                },
            )
            self.transaction_id = int(answer["transactionId"])
            await self.status("Charging")
            await asyncio.sleep(0.01)  # the first reading after the start, not at its instant
            unique_id = self.next_id()
            await self.send_call(unique_id, meter_frame(unique_id, self.transaction_id, 0, 0))
            self.started.set()
        except Exception as exc:
            self.errors.append(f"{self.id} start: {type(exc).__name__} {exc}"[:200])

    async def pump(
        self, t0: int, seconds: float, offset: float, interval: float, step: int, power: int
    ) -> None:
        """MeterValues on the clock from T0 + offset, every ``interval``, until T0 + seconds."""
        end = t0 + int(seconds * 1e9)
        k = 0
        register = 0
        while True:
            due = t0 + int((offset + k * interval) * 1e9)
            if due >= end:
                return
            delay = (due - monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            elif monotonic_ns() >= end:
                return  # behind schedule (slow answers): the window is over all the same
            k += 1
            register += step
            unique_id = self.next_id()
            text = meter_frame(unique_id, self.transaction_id, register, power)
            future: asyncio.Future[tuple[list[Any], int]] = (
                asyncio.get_running_loop().create_future()
            )
            self.pending[unique_id] = future
            sent = monotonic_ns()
            reading = [register, sent, -1]
            self.sent.append(reading)
            try:
                await self.ws.send(text)
                answer, received = await asyncio.wait_for(future, self.timeout)
            except (TimeoutError, CallFailed, ConnectionClosed) as exc:
                self.pending.pop(unique_id, None)
                self.errors.append(f"{self.id} MeterValues: {type(exc).__name__} {exc}"[:200])
                if isinstance(exc, ConnectionClosed | CallFailed):
                    return
                continue
            if answer[0] != 3:
                self.errors.append(f"{self.id} MeterValues: {str(answer)[:200]}")
            reading[2] = received - sent


async def run(args: argparse.Namespace) -> None:
    ids = [f"{args.prefix}{n}" for n in range(args.first, args.first + args.count)]
    gate = asyncio.Semaphore(args.parallel)
    failures: list[str] = []
    began = time.monotonic()

    async def connect(charger_id: str) -> Charger | None:
        async with gate:
            try:
                ws = await open_charger(args, charger_id)
                charger = Charger(ws, charger_id, args.timeout)
                if args.mode == "plugpay":
                    await charger.boot()
                else:
                    charger.started.set()
                return charger
            except Exception as exc:
                failures.append(f"{charger_id}: {type(exc).__name__} {exc}"[:200])
                return None

    chargers = [c for c in await asyncio.gather(*(connect(c) for c in ids)) if c is not None]
    print(
        json.dumps(
            {
                "connected": len(chargers),
                "failed": len(failures),
                "failures": failures[:5],
                "seconds": time.monotonic() - began,
            }
        ),
        flush=True,
    )

    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    word, t0, seconds = line.split()
    assert word == "go", line

    async def one(n: int, charger: Charger) -> None:
        if not charger.started.is_set():
            return  # never asked to start a transaction: nothing to meter
        offset = (args.first + n) / args.total * args.interval
        await charger.pump(int(t0), float(seconds), offset, args.interval, args.step, args.power)

    await asyncio.gather(*(one(n, c) for n, c in enumerate(chargers)))
    errors = [e for c in chargers for e in c.errors]
    print(
        json.dumps(
            {
                "started": sum(c.started.is_set() for c in chargers),
                "sent": {c.id: c.sent for c in chargers if c.sent},
                "errors": len(errors),
                "error_sample": errors[:5],
            }
        ),
        flush=True,
    )
    await loop.run_in_executor(None, sys.stdin.readline)
    for charger in chargers:
        charger.reader.cancel()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(c.ws.close() for c in chargers), return_exceptions=True), 10
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["plugpay", "echo"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="LV")
    parser.add_argument("--password", default="bench-password-0123456789")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=250)
    parser.add_argument("--total", type=int, default=500, help="chargers over all processes")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between readings")
    parser.add_argument("--step", type=int, default=10, help="Wh added per reading")
    parser.add_argument("--power", type=int, default=12000, help="W reported with each reading")
    parser.add_argument("--parallel", type=int, default=32, help="handshakes at a time")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    die_with_parent()
    raise_nofile()
    try:  # the cheaper loop keeps more of the machine for the server
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run(args))


if __name__ == "__main__":
    main()
