"""Live-page benchmark (issue 4): meter reading to the driver's screen, and Stripe calls.

(1) Latency. plugpay (``server.py``: uvicorn, the app from ``create_app``, a
    temporary SQLite file, demo payments) with ``--sessions`` chargers of one
    connector each on one site. Charger processes (``chargers.py``, raw
    ``websockets`` OCPP 1.6 clients) connect them; phone processes
    (``phones.py``, aiohttp) start and pay a session on each over HTTP, as a
    browser does, and keep its ``/s/{id}/events`` stream open; each charger
    answers the server's RemoteStartTransaction and sends StartTransaction.
    With every session CHARGING and watched, each charger sends a MeterValues
    every ``--interval`` seconds for ``--seconds`` (staggered), its register
    10 Wh higher each time, so every reading has its own 0.01 kWh figure on the
    live page. The latency of a reading is from ``time.monotonic_ns()`` in the
    charger process just before its frame goes to the socket to
    ``time.monotonic_ns()`` in the phone process when the SSE ``update`` event
    showing that figure in ``#energy`` has arrived. Both read CLOCK_MONOTONIC,
    which on Linux is one clock for the whole machine, so stamps taken in
    different processes compare. Readings of the first ``--warmup`` seconds
    are left out; a reading whose event has not arrived ``--grace`` seconds
    after the last answer counts as lost. A charger waits for the answer to
    one MeterValues before it sends the next (OCPP-J), so a server that falls
    behind gets fewer readings than scheduled: both counts are printed, and
    the target also needs every scheduled reading sent.

    The reference, measured first in the same run: a bare ``websockets``
    server (``ocpp_ingest/servers.py echo``, answers each frame with
    ``[3, id, {}]``) and the same charger processes, ``--sessions``
    connections sending the same frames on the same schedule; its round-trip
    p99. Target: plugpay's p99 <= echo p99 + 20 ms.

(2) Stripe API calls from the server per completed session (``stripe_calls.py``):
    ``--stripe-sessions`` sessions paid by card against localstripe, counted
    by a recording proxy between the app and localstripe. Target <= 3.

Every process runs on 127.0.0.1, each server in its own process, the load in
others; everything is stopped and the temporary directory removed on exit or
Ctrl-C. ``--parts`` picks what to measure (e: the echo reference, l: plugpay's
latency, s: Stripe calls); ``--profile FILE`` writes a cProfile of the server's
main thread over the measured window; ``--raw FILE`` every reading's latency.

Run: ``python bench/run.py live_latency`` (or ``make bench``); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from ocpp_ingest import (
    BenchError,
    Processes,
    cpu_seconds,
    note,
    read_json_line,
    settle,
    split,
    verdict,
)

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.py"
CHARGERS = HERE / "chargers.py"
PHONES = HERE / "phones.py"
STRIPE = HERE / "stripe_calls.py"
ECHO = HERE.parent / "ocpp_ingest" / "servers.py"
PASSWORD = "bench-password-0123456789"

TARGET_MARGIN_MS = 20.0
TARGET_STRIPE_CALLS = 3.0


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def spread(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else float("nan"),
    }


def tell(children: list[Any], line: str) -> None:
    for child in children:
        with contextlib.suppress(OSError):
            child.stdin.write(line + "\n")
            child.stdin.flush()


def start(procs: Processes, script: Path, what: str, *args: str) -> tuple[Any, int]:
    child = procs.spawn(script, *args)
    ready = read_json_line(child, 180, what)
    return child, int(ready["port"])


def charger_procs(procs: Processes, opts: argparse.Namespace, mode: str, port: int) -> list[Any]:
    return [
        procs.spawn(
            CHARGERS,
            mode,
            f"--port={port}",
            f"--first={first}",
            f"--count={count}",
            f"--total={opts.sessions}",
            f"--interval={opts.interval}",
            f"--password={PASSWORD}",
            stdin=True,
        )
        for first, count in split(0, opts.sessions, opts.charger_procs)
    ]


def connected(children: list[Any], what: str) -> dict[str, Any]:
    reports = [read_json_line(c, 300, what) for c in children]
    result = {
        "connected": sum(r["connected"] for r in reports),
        "failed": sum(r["failed"] for r in reports),
        "failures": [f for r in reports for f in r["failures"]][:5],
        "seconds": max(r["seconds"] for r in reports),
    }
    if result["connected"] == 0:
        raise BenchError(f"{what}: none connected: {result['failures']}")
    return result


def run_window(
    opts: argparse.Namespace, chargers: list[Any], server_pid: int
) -> tuple[int, list[dict[str, Any]], dict[str, float]]:
    """Send ``go``; wait for the chargers' reports; (T0, the reports, server CPU figures)."""
    t0 = time.monotonic_ns() + 1_000_000_000
    tell(chargers, f"go {t0} {opts.seconds}")
    cpu0, wall0 = cpu_seconds(server_pid), time.monotonic()
    reports = [read_json_line(c, opts.seconds + 120, "chargers' readings") for c in chargers]
    cpu1, wall1 = cpu_seconds(server_pid), time.monotonic()
    return t0, reports, {"server_cpu_share": (cpu1 - cpu0) / max(wall1 - wall0, 1e-9)}


# -- (1) echo reference ------------------------------------------------------------


def echo_reference(procs: Processes, opts: argparse.Namespace) -> dict[str, Any]:
    note(f"(1) echo reference: {opts.sessions} connections, one frame every {opts.interval:g} s")
    server, port = start(procs, ECHO, "echo server", "echo", "--loop", "uvloop")
    try:
        chargers = charger_procs(procs, opts, "echo", port)
        try:
            setup = connected(chargers, "echo clients")
            t0, reports, cpu = run_window(opts, chargers, server.pid)
            tell(chargers, "close")
        finally:
            for child in chargers:
                procs.stop(child)
    finally:
        procs.stop(server)
    since = t0 + int(opts.warmup * 1e9)
    readings = [r for report in reports for sent in report["sent"].values() for r in sent]
    rtts = [rtt / 1e6 for _, at, rtt in readings if at >= since and rtt >= 0]
    return {
        **spread(rtts),
        "unanswered": sum(1 for _, at, rtt in readings if at >= since and rtt < 0),
        **cpu,
        "connected": setup["connected"],
        "errors": sum(r["errors"] for r in reports),
    }


# -- (1) plugpay --------------------------------------------------------------------


def plugpay_latency(procs: Processes, opts: argparse.Namespace) -> dict[str, Any]:
    note(f"(1) plugpay: {opts.sessions} chargers registered, server starting")
    args = [f"--db={procs.workdir / 'live.db'}", f"--chargers={opts.sessions}"]
    args.append(f"--password={PASSWORD}")
    if opts.profile:
        args.append(f"--profile={Path(opts.profile).resolve()}")
    server, port = start(procs, SERVER, "plugpay server", *args)
    chargers: list[Any] = []
    phones: list[Any] = []
    try:
        chargers = charger_procs(procs, opts, "plugpay", port)
        note(f"(1) {opts.sessions} chargers connect and boot (argon2 per connection)")
        setup = connected(chargers, "chargers")
        note(f"(1) {opts.sessions} phones start, pay and watch a session each")
        began = time.monotonic()
        phones = [
            procs.spawn(
                PHONES, f"--port={port}", f"--first={first}", f"--count={count}", stdin=True
            )
            for first, count in split(0, opts.sessions, opts.phone_procs)
        ]
        ready = [read_json_line(p, 600, "phones") for p in phones]
        sessions_seconds = time.monotonic() - began
        charging = sum(r["charging"] for r in ready)
        if charging == 0:
            raise BenchError(f"no session is CHARGING: {[r['failures'] for r in ready]}")
        settle(server.pid, limit=30)
        note(
            f"(1) {charging} sessions CHARGING and watched; "
            f"{opts.seconds:g} s of MeterValues every {opts.interval:g} s per charger"
        )
        if opts.profile:
            os.kill(server.pid, signal.SIGUSR1)
        t0, reports, cpu = run_window(opts, chargers, server.pid)
        time.sleep(opts.grace)
        if opts.profile:
            os.kill(server.pid, signal.SIGUSR2)
        tell(phones, "stop")
        seen = [read_json_line(p, 120, "phones' events") for p in phones]
        tell(chargers, "close")
    finally:
        for child in [*phones, *chargers]:
            procs.stop(child)
        procs.stop(server, grace=20.0)

    received: dict[str, dict[int, int]] = {}
    for report in seen:
        for charger_id, notes in report["received"].items():
            received[charger_id] = dict(notes)
    since = t0 + int(opts.warmup * 1e9)
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []  # (s after T0 when sent, latency ms)
    lost, unwatched = 0, 0
    for report in reports:
        for charger_id, sent in report["sent"].items():
            events = received.get(charger_id)
            for wh, at, _ in sent:
                if at < since:
                    continue
                if events is None:
                    unwatched += 1
                elif wh in events:
                    latencies.append((events[wh] - at) / 1e6)
                    timeline.append(((at - t0) / 1e9, (events[wh] - at) / 1e6))
                else:
                    lost += 1
    if opts.raw:
        Path(opts.raw).write_text(json.dumps(sorted(timeline)))
    sends = [at for r in reports for sent in r["sent"].values() for _, at, _ in sent]
    answers = sorted(
        rtt / 1e6
        for r in reports
        for sent in r["sent"].values()
        for _, at, rtt in sent
        if at >= since and rtt >= 0
    )
    return {
        **spread(latencies),
        **cpu,
        "lost": lost,
        "unwatched": unwatched,
        "connected": setup["connected"],
        "connect_seconds": setup["seconds"],
        "charging": charging,
        "session_failures": [f for r in ready for f in r["failures"]][:5],
        "session_failed": sum(r["failed"] for r in ready),
        "sessions_seconds": sessions_seconds,
        "started": sum(r["started"] for r in reports),
        "errors": sum(r["errors"] for r in reports),
        "error_sample": [e for r in reports for e in r["error_sample"]][:3],
        "events": sum(r["events"] for r in seen),
        "ended_early": sum(r["ended_early"] for r in seen),
        "sent": len(sends),
        "scheduled": scheduled(opts, [c for r in reports for c in r["sent"]]),
        "answer_p50": percentile(answers, 50),
        "answer_p99": percentile(answers, 99),
    }


def scheduled(opts: argparse.Namespace, charger_ids: list[str]) -> int:
    """Readings the chargers that metered would have sent on time (as chargers.py plans them)."""
    count = 0
    for charger_id in charger_ids:
        offset = int(charger_id.removeprefix("LV")) / opts.sessions * opts.interval
        count += max(0, math.ceil((opts.seconds - offset) / opts.interval))
    return count


# -- (2) Stripe ----------------------------------------------------------------------


def stripe_calls(procs: Processes, opts: argparse.Namespace) -> dict[str, Any]:
    note(f"(2) {opts.stripe_sessions} sessions paid by card against localstripe")
    child = procs.spawn(STRIPE, f"--sessions={opts.stripe_sessions}", f"--workdir={procs.workdir}")
    try:
        result = read_json_line(child, 300, "Stripe sessions")
    finally:
        procs.stop(child)
    done = [s for s in result["sessions"] if s["completed"]]
    by_endpoint: Counter[str] = Counter()
    for session in done:
        by_endpoint.update(session["calls"])
    calls = sum(len(s["calls"]) for s in done)
    return {
        "played": len(result["sessions"]),
        "completed": len(done),
        "problems": [s["problem"] for s in result["sessions"] if not s["completed"]],
        "per_session": calls / len(done) if done else float("nan"),
        "each": [len(s["calls"]) for s in done],
        "by_endpoint": {k: v / len(done) for k, v in by_endpoint.items()} if done else {},
        "gateway_agrees": all(s["api_calls"] == len(s["calls"]) for s in done),
    }


# -- report --------------------------------------------------------------------------


def report(opts: argparse.Namespace, results: dict[str, Any]) -> None:
    echo, live = results.get("echo"), results.get("live")
    rate = opts.sessions / opts.interval
    if live:
        print(
            f"(1) live page: {live['charging']} sessions CHARGING, each watched over SSE "
            f"(chargers connected in {live['connect_seconds']:.0f} s, sessions started and "
            f"paid in {live['sessions_seconds']:.0f} s);\n"
            f"    one MeterValues per charger every {opts.interval:g} s (~{rate:.0f}/s), "
            f"{opts.seconds:g} s, the first {opts.warmup:g} s left out; a charger waits for "
            f"the answer before its next:\n    {live['sent']:,} sent of "
            f"{live['scheduled']:,} scheduled"
        )
        print(
            f"    MeterValues sent -> SSE event showing it received: "
            f"p50 {live['p50']:.1f} ms, p99 {live['p99']:.1f} ms, max {live['max']:.1f} ms "
            f"over {live['count']:,} readings; lost {live['lost']}"
            + (f", unwatched {live['unwatched']}" if live["unwatched"] else "")
        )
        print(
            f"    (the charger's answer to MeterValues: p50 {live['answer_p50']:.1f} ms, "
            f"p99 {live['answer_p99']:.1f} ms; server CPU {live['server_cpu_share']:.0%} of "
            f"one core while metering; {live['events']:,} update events in all)"
        )
        if live["session_failed"]:
            print(
                f"    {live['session_failed']} sessions did not start: {live['session_failures']}"
            )
        if live["errors"]:
            print(f"    {live['errors']} charger errors, e.g. {live['error_sample']}")
        if live["ended_early"]:
            print(f"    {live['ended_early']} event streams ended before the end")
    if echo:
        print(
            ("    " if live else "(1) ")
            + f"bare websockets echo, {echo['connected']} connections, same frames and "
            f"schedule: round trip p50 {echo['p50']:.1f} ms, p99 {echo['p99']:.1f} ms, "
            f"max {echo['max']:.1f} ms over {echo['count']:,} frames"
            + (f", {echo['unanswered']} unanswered" if echo["unanswered"] else "")
        )
    if echo and live:
        limit = echo["p99"] + TARGET_MARGIN_MS
        behind = live["sent"] < live["scheduled"]
        ok = live["p99"] <= limit and live["lost"] == 0 and live["count"] > 0 and not behind
        print(
            f"    p99 {live['p99']:.1f} ms   target <= echo p99 + {TARGET_MARGIN_MS:g} ms = "
            f"{limit:.1f} ms"
            + (" and none lost" if live["lost"] else "")
            + (" with every scheduled reading sent" if behind else "")
            + f"   {verdict(ok)}"
        )
    stripe = results.get("stripe")
    if stripe:
        ok = stripe["completed"] > 0 and stripe["per_session"] <= TARGET_STRIPE_CALLS
        print(
            f"(2) Stripe API calls from the server per completed session: "
            f"{stripe['per_session']:.1f} ({stripe['completed']} of {stripe['played']} sessions "
            f"completed, {'/'.join(map(str, stripe['each']))} calls)   "
            f"target <= {TARGET_STRIPE_CALLS:g}   {verdict(ok)}"
        )
        for name, count in stripe["by_endpoint"].items():
            print(f"    {count:4.1f}  {name}")
        if not stripe["gateway_agrees"]:
            print("    (StripeGateway.api_calls disagrees with the proxy's count)")
        for problem in stripe["problems"]:
            print(f"    not completed: {problem}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="live_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500, help="chargers, sessions, phones")
    parser.add_argument(
        "--interval", type=float, default=3.0, help="s between a charger's readings"
    )
    parser.add_argument("--seconds", type=float, default=45.0, help="s of readings measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="first s of readings left out")
    parser.add_argument("--grace", type=float, default=5.0, help="s an event may still arrive")
    parser.add_argument("--charger-procs", type=int, default=2, help="charger client processes")
    parser.add_argument("--phone-procs", type=int, default=2, help="phone client processes")
    parser.add_argument("--stripe-sessions", type=int, default=3, help="sessions for (2)")
    parser.add_argument(
        "--parts", default="els", help="e: echo reference, l: plugpay latency, s: Stripe calls"
    )
    parser.add_argument("--profile", help="cProfile of the server over the window, to FILE")
    parser.add_argument("--raw", help="write (s after start, latency ms) of every reading to FILE")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)

    def terminated(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {}
    errors: list[str] = []
    phases = []
    if "e" in opts.parts:
        phases.append(("echo", echo_reference))
    if "l" in opts.parts:
        phases.append(("live", plugpay_latency))
    if "s" in opts.parts:
        phases.append(("stripe", stripe_calls))
    try:
        with tempfile.TemporaryDirectory(prefix="plugpay-bench-") as tmp:
            procs = Processes(Path(tmp))
            try:
                for name, phase in phases:
                    try:
                        results[name] = phase(procs, opts)
                    except (BenchError, OSError, ValueError, KeyError, psutil.Error) as exc:
                        errors.append(f"({name}) {type(exc).__name__}: {exc}")
            finally:
                procs.stop_all()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other work on the machine skews every figure)"
    )
    print(
        "clock: time.monotonic_ns() in the sending and the receiving process "
        "(CLOCK_MONOTONIC, one clock for the whole machine on Linux)"
    )
    report(opts, results)
    for error in errors:
        print(f"NOT MEASURED: {error}")
    return 1 if errors else 0
