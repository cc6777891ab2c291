"""Load generator for the OCPP 2.0.1 session mix: chargers on loopback, in their own process.

    python load201.py --port P --server-pid PID --conns 50 [--rate CALLS_PER_S] ...

Each charger boots, then runs charging sessions back to back, one CALL
outstanding at a time (OCPP-J): Authorize, TransactionEvent Started (idToken,
EVSE, a Transaction.Begin register reading), ``--updates`` x TransactionEvent
Updated (an Energy.Active.Import.Register reading, +10 Wh each), TransactionEvent
Ended (a Transaction.End reading). Every transaction id is new (``--tx-prefix``
keeps rounds apart), so every session starts and ends a real transaction.

Closed loop (no ``--rate``): each charger sends its next CALL as soon as the
last one is answered. Open loop (``--rate R``): the chargers together are due
to send R CALLs a second, each on its own fixed schedule (a random phase, then
every ``conns / R`` seconds); a charger whose last CALL is still unanswered
when the next one is due sends it as soon as the answer comes (OCPP-J allows
no more), so load beyond what the server answers waits in the chargers.

After ``--warmup`` s it counts answers for ``--seconds`` s and reads the
server's CPU time (user + system, all threads) at both ends; latency is from
just before a frame is written to the socket to its answer, per kind of CALL.
Then every charger ends its open transaction (not measured) and closes.
One JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from load import (
    ID_TAG,
    busy,
    call,
    die_with_parent,
    machine_busy,
    open_charger,
    raise_nofile,
    stamp,
)

dumps, loads = json.dumps, json.loads
KINDS = ("Authorize", "Started", "Updated", "Ended")
TOKEN = {"idToken": ID_TAG, "type": "ISO14443"}
BOOT = {"chargingStation": {"model": "Load-201", "vendorName": "Bench"}, "reason": "PowerUp"}


def meter_value(at: datetime, wh: int, context: str) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": stamp(at),
            "sampledValue": [
                {
                    "value": wh,
                    "context": context,
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh"},
                }
            ],
        }
    ]


def session_frames(tx_id: str, at: datetime, updates: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, action, payload) of one session, in order; simulated seconds apart."""
    frames: list[tuple[str, str, dict[str, Any]]] = [("Authorize", "Authorize", {"idToken": TOKEN})]
    frames.append(
        (
            "Started",
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": stamp(at),
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": tx_id, "chargingState": "Charging"},
                "evse": {"id": 1, "connectorId": 1},
                "idToken": TOKEN,
                "meterValue": meter_value(at, 0, "Transaction.Begin"),
            },
        )
    )
    for n in range(1, updates + 1):
        when = at + timedelta(seconds=n)
        frames.append(
            (
                "Updated",
                "TransactionEvent",
                {
                    "eventType": "Updated",
                    "timestamp": stamp(when),
                    "triggerReason": "MeterValuePeriodic",
                    "seqNo": n,
                    "transactionInfo": {"transactionId": tx_id, "chargingState": "Charging"},
                    "meterValue": meter_value(when, n * 10, "Sample.Periodic"),
                },
            )
        )
    frames.append(end_frame(tx_id, at + timedelta(seconds=updates + 1), updates + 1, updates * 10))
    return frames


def end_frame(tx_id: str, at: datetime, seq_no: int, wh: int) -> tuple[str, str, dict[str, Any]]:
    return (
        "Ended",
        "TransactionEvent",
        {
            "eventType": "Ended",
            "timestamp": stamp(at),
            "triggerReason": "EVCommunicationLost",
            "seqNo": seq_no,
            "transactionInfo": {
                "transactionId": tx_id,
                "chargingState": "Idle",
                "stoppedReason": "EVDisconnected",
            },
            "meterValue": meter_value(at, wh, "Transaction.End"),
        },
    )


class Tally:
    """Answers and latencies counted while ``measuring``."""

    def __init__(self) -> None:
        self.measuring = False
        self.answered = 0
        self.by_kind = dict.fromkeys(KINDS, 0)
        self.latency: dict[str, list[float]] = {k: [] for k in KINDS}
        self.rejected: list[str] = []
        self.late = 0  # open loop: CALLs sent after their due time

    def add(self, kind: str, seconds: float) -> None:
        if self.measuring:
            self.answered += 1
            self.by_kind[kind] += 1
            self.latency[kind].append(seconds)


async def exchange(ws: Any, unique_id: str, action: str, payload: dict[str, Any]) -> Any:
    """Send one CALL and return (answer frame, seconds); server CALLs get an empty result."""
    frame_text = dumps([2, unique_id, action, payload], separators=(",", ":"))
    sent = time.perf_counter()
    await ws.send(frame_text)
    while True:
        frame = loads(await ws.recv())
        if frame[0] == 2:
            await ws.send(dumps([3, frame[1], {}]))
            continue
        return frame, time.perf_counter() - sent


async def charger(
    args: argparse.Namespace, ws: Any, index: int, tally: Tally, stopping: asyncio.Event
) -> None:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    period = args.conns / args.rate if args.rate else 0.0
    due = time.perf_counter() + random.uniform(0, period)
    session = 0
    count = 0
    while not stopping.is_set():
        session += 1
        tx_id = f"{args.tx_prefix}{index}-{session}"
        at = base + timedelta(seconds=session * (args.updates + 10))
        frames = session_frames(tx_id, at, args.updates)
        for position, (kind, action, payload) in enumerate(frames):
            if stopping.is_set() and kind != "Ended":
                if position > 1:  # Started was sent: end the transaction, unmeasured
                    seq_no = position - 1
                    _, action, payload = end_frame(
                        tx_id, at + timedelta(seconds=seq_no), seq_no, (seq_no - 1) * 10
                    )
                    await exchange(ws, f"e{session}", action, payload)
                return
            if period:
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                elif wait < -0.001 and tally.measuring:
                    tally.late += 1
                due += period
            count += 1
            frame, seconds = await exchange(ws, str(count), action, payload)
            if frame[0] == 3 and frame[1] == str(count):
                tally.add(kind, seconds)
            elif len(tally.rejected) < 5:
                tally.rejected.append(str(frame)[:300])


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3

    return {"n": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": ordered[-1] * 1e3}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ids = [f"{args.prefix}{n}" for n in range(args.first, args.first + args.conns)]
    conns = await asyncio.gather(*(open_charger(args, cid, "ocpp2.0.1") for cid in ids))
    await asyncio.gather(
        *(call(ws, "boot", "BootNotification", BOOT, args.timeout) for ws in conns)
    )
    tally = Tally()
    stopping = asyncio.Event()
    tasks = [
        asyncio.ensure_future(charger(args, ws, args.first + i, tally, stopping))
        for i, ws in enumerate(conns)
    ]
    server = psutil.Process(args.server_pid)
    me = psutil.Process()
    await asyncio.sleep(args.warmup)
    tally.measuring = True
    server0, mine0, machine0 = busy(server.cpu_times()), busy(me.cpu_times()), machine_busy()
    wall0 = time.perf_counter()
    await asyncio.sleep(args.seconds)
    server1, mine1, machine1 = busy(server.cpu_times()), busy(me.cpu_times()), machine_busy()
    wall1 = time.perf_counter()
    tally.measuring = False
    stopping.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    wall = wall1 - wall0
    every = [s for k in KINDS for s in tally.latency[k]]
    return {
        "answered": tally.answered,
        "by_kind": tally.by_kind,
        "wall": wall,
        "server_cpu": server1 - server0,
        "client_cpu": mine1 - mine0,
        "others_share": max(0.0, (machine1 - machine0) - (server1 - server0) - (mine1 - mine0))
        / (wall * (psutil.cpu_count() or 1)),
        "latency": {"all": percentiles(every), **{k: percentiles(tally.latency[k]) for k in KINDS}},
        "offered": args.rate * wall if args.rate else None,
        "late": tally.late,
        "rejected": len(tally.rejected),
        "rejected_sample": tally.rejected[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--prefix", default="CP")
    parser.add_argument("--password", default="bench-password-0123456789")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--tx-prefix", default="T")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: CALLs per second")
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    die_with_parent()
    raise_nofile()
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        print(json.dumps(runner.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
