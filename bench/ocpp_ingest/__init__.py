"""OCPP ingest benchmark (issue 2): server CPU per call, idle memory, reconnect storm.

One run measures, each server in its own process (``servers.py``) and the
chargers in separate client processes (``load.py``, ``load201.py``), all on
127.0.0.1:

(a) plugpay's gateway with persistence (uvicorn configured as by ``plugpay
    serve``, SQLite file migrated with alembic, MeterValues attached to a
    transaction started with StartTransaction, so every reading and frame is
    stored);
(p) the same on PostgreSQL (a fresh database on ``--pg-url``, created and
    dropped by the run; target: throughput >= 70 % of (a)'s);
(b) the stock ``ocpp`` 1.6 ``ChargePoint`` with its default jsonschema
    validation and no persistence, behind ``websockets.serve``;
(c) a bare ``websockets.serve`` that answers each frame with ``[3, id, {}]``
    (it parses the frame with ``json.loads`` to take the id: not a pure echo).

Load: ``--conns`` chargers each send 1.6 MeterValues as fast as they are
answered, one CALL outstanding per connection. After a warm-up, the server
process's CPU time (user + system, all threads) over the measured window is
divided by the messages answered in it. Targets: a <= 0.3 x b, a <= 4 x c.

(m) the OCPP 2.0.1 session mix on the same four kinds of server, and
(o) open-loop load at 1x, 2x and 3x plugpay's capacity: see ``mix.py``.

(d) memory per idle connection: RSS of the plugpay server process before
    and after ``--idle`` chargers connected, booted and left idle, divided by
    their number (target <= 40 KiB). The "before" is taken after a warm-up
    batch of connections, so one-off costs (imports, compiled statements,
    the argon2 worker threads) are not charged to the idle connections.
(e) reconnect storm: ``--storm`` chargers connect, boot and send a
    StatusNotification at the same instant; the client gives up on a
    handshake or a call after 30 s (target: none gives up). It runs on the
    server of (d) once its chargers have left: the chargers reconnect to a
    server that has seen them before, as after a network outage.

Run: ``python bench/run.py ocpp_ingest`` (or ``make bench``); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .idle import idle_and_storm, print_idle_and_storm
from .mix import mix_all, print_mix
from .postgres import DEFAULT_URL, available, fresh_database
from .postgres import counts as pg_counts
from .processes import (
    LOAD,
    PASSWORD,
    BenchError,
    Processes,
    attempt,
    cpu_seconds,
    note,
    read_json_line,
    settle,
    split,
    start_server,
    verdict,
)

__all__ = [
    "BenchError",
    "Processes",
    "cpu_seconds",
    "main",
    "note",
    "read_json_line",
    "settle",
    "split",
    "verdict",
]

TARGET_A_OVER_B = 0.3
TARGET_A_OVER_C = 4.0
TARGET_PG_SHARE = 0.7


# -- (a), (b), (c) ---------------------------------------------------------------

ROLES = {"a": "plugpay", "p": "plugpay", "b": "stock", "c": "echo"}


def ingest_all(
    procs: Processes, opts: argparse.Namespace, pg_url: str | None
) -> dict[str, dict[str, Any]]:
    """All servers up at once (idle ones cost nothing); rounds alternate between them.

    Interleaving the servers in every round spreads the drift of a shared
    machine over them alike; each server's figure is its median round.
    """
    keys = [k for k in "apbc" if k in opts.parts and (k != "p" or pg_url)]
    servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
    rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    stored: dict[str, dict[str, int]] = {}
    try:
        for key in keys:
            args = ["--loop", opts.loop]
            if key in "ap":  # fresh chargers every round: each starts a new transaction
                chargers = opts.conns * opts.rounds
                where = (
                    ["--db", str(procs.workdir / "ingest.db")]
                    if key == "a"
                    else ["--database-url", pg_url or ""]
                )
                args = [*where, f"--chargers={chargers}", f"--password={PASSWORD}"]
            servers[key] = start_server(procs, ROLES[key], *args)
        for n in range(opts.rounds):
            for key in keys:
                note(f"round {n + 1}/{opts.rounds}: ({key}) {ROLES[key]}")
                server, port = servers[key]
                rounds[key].append(ingest_round(procs, opts, key, server.pid, port, n))
        if "a" in keys:
            stored["a"] = stored_counts(procs.workdir / "ingest.db")
        if "p" in keys:
            stored["p"] = pg_counts(pg_url or "", _STORED)
    finally:
        for server, _port in servers.values():
            procs.stop(server)
    runs = {k: summarise(v) for k, v in rounds.items()}
    for key, counted in stored.items():
        runs[key]["stored"] = counted
    return runs


def ingest_round(
    procs: Processes, opts: argparse.Namespace, key: str, pid: int, port: int, n: int
) -> dict[str, Any]:
    client_args = [
        "ingest",
        f"--port={port}",
        f"--server-pid={pid}",
        f"--conns={opts.conns}",
        f"--warmup={opts.warmup}",
        f"--seconds={opts.seconds}",
        f"--password={PASSWORD}",
    ]
    if key in "ap":
        client_args += ["--start-transaction", f"--first={n * opts.conns}"]
    client = procs.spawn(LOAD, *client_args)
    try:
        result = read_json_line(client, opts.warmup + opts.seconds + 90, f"({key}) load")
    finally:
        procs.stop(client)
    answered = max(result["answered"], 1)
    result["us_per_msg"] = result["server_cpu"] / answered * 1e6
    result["client_us_per_msg"] = result["client_cpu"] / answered * 1e6
    result["rate"] = result["answered"] / result["wall"]
    return result


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    per_msg = [r["us_per_msg"] for r in rounds]
    return {
        "rounds": rounds,
        "answered": sum(r["answered"] for r in rounds),
        "rejected": sum(r["rejected"] for r in rounds),
        "rejected_sample": [x for r in rounds for x in r["rejected_sample"]][:3],
        "us_per_msg": statistics.median(per_msg),
        "us_min": min(per_msg),
        "us_max": max(per_msg),
        "client_us_per_msg": statistics.median(r["client_us_per_msg"] for r in rounds),
        "rate": statistics.median(r["rate"] for r in rounds),
        "others": statistics.mean(r["others_share"] for r in rounds),
    }


_STORED = {
    "readings": "SELECT count(*) FROM meter_readings",
    "attached": "SELECT count(transaction_id) FROM meter_readings",
    "flagged": "SELECT count(*) FROM meter_readings WHERE flag != ''",
    "frames": "SELECT count(*) FROM ocpp_messages",
}


def stored_counts(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {k: int(conn.execute(q).fetchone()[0]) for k, q in _STORED.items()}


# -- report ---------------------------------------------------------------------

NAMES = {
    "a": "(a) plugpay gateway, SQLite persistence",
    "p": "(p) plugpay gateway, PostgreSQL persistence",
    "b": "(b) ocpp ChargePoint, jsonschema, no storage",
    "c": "(c) websockets, json.loads id -> [3,id,{}]",
}


def print_ingest(opts: argparse.Namespace, runs: dict[str, dict[str, Any]]) -> None:
    print(
        f"OCPP ingest: {opts.conns} chargers on loopback send OCPP 1.6 MeterValues (energy, "
        "power, SoC),\none CALL outstanding per connection. "
        f"{opts.rounds} rounds alternating the servers, each {opts.warmup:g} s warm-up + "
        f"{opts.seconds:g} s measured;\nserver CPU = user + system of the server process "
        "(all threads), median round [min-max]."
    )
    print(
        f"{'server':<46}{'answered':>9}{'msg/s':>8}{'CPU µs/msg':>12}{'[min-max]':>12}"
        f"{'client µs':>10}{'others':>8}"
    )
    for key, run in runs.items():
        spread = f"[{run['us_min']:.0f}-{run['us_max']:.0f}]"
        print(
            f"{NAMES[key]:<46}{run['answered']:>9,}{run['rate']:>8,.0f}"
            f"{run['us_per_msg']:>12.0f}{spread:>12}{run['client_us_per_msg']:>10.0f}"
            f"{run['others'] * 100:>7.0f}%"
        )
        if run["rejected"]:
            print(
                f"    {run['rejected']:,} answers were not CALLRESULTs, e.g. "
                f"{run['rejected_sample'][:1]}: the figure above is not valid"
            )
    print(
        "    (msg/s: wall-clock throughput, median round; client µs: the load generator's "
        "CPU per message;\n     others: CPU the rest of the machine used meanwhile, share "
        "of all cores)"
    )
    for key in (k for k in "ap" if k in runs and "stored" in runs[k]):
        s = runs[key]["stored"]
        print(
            f"    ({key}) stored {s['readings']:,} readings ({s['attached']:,} attached to "
            f"their transaction, {s['flagged']:,} flagged) and {s['frames']:,} logged frames"
        )
    a = runs.get("a", {}).get("us_per_msg")
    for key, target in (("b", TARGET_A_OVER_B), ("c", TARGET_A_OVER_C)):
        if a is not None and key in runs:
            ratio = a / runs[key]["us_per_msg"]
            print(f"a/{key} = {ratio:.2f}   target <= {target:g}   {verdict(ratio <= target)}")
            record(
                f"a/{key} 1.6 MeterValues: {a:.0f} vs {runs[key]['us_per_msg']:.0f} µs = "
                f"{ratio:.2f}x",
                f"<= {target:g}x",
                ratio <= target,
            )
    if "a" in runs and "p" in runs:
        share = runs["p"]["rate"] / runs["a"]["rate"]
        ok = share >= TARGET_PG_SHARE
        print(
            f"p/a = PostgreSQL {runs['p']['rate']:,.0f} msg/s = {share:.0%} of SQLite's "
            f"{runs['a']['rate']:,.0f}   target >= {TARGET_PG_SHARE:.0%}   {verdict(ok)}"
        )
        record(
            f"p/a 1.6 throughput: {runs['p']['rate']:,.0f} vs {runs['a']['rate']:,.0f} msg/s "
            f"= {share:.0%}",
            f">= {TARGET_PG_SHARE:.0%}",
            ok,
        )


def record(figure: str, target: str, ok: bool | None) -> None:
    """A line of the closing table of ``bench/run.py`` (nothing when run on its own)."""
    with contextlib.suppress(ImportError):
        import _summary

        _summary.record("ocpp_ingest", figure, target, ok)


def record_mix(runs: dict[str, dict[str, Any]], checks: dict[str, Any]) -> None:
    for key, target in (("b", 0.3), ("c", 4.0)):
        ratio = checks.get(f"a/{key}")
        if ratio is not None:
            record(
                f"a/{key} 2.0.1 mix: {runs['a']['us_per_call']:.0f} vs "
                f"{runs[key]['us_per_call']:.0f} µs/call = {ratio:.2f}x",
                f"<= {target:g}x",
                ratio <= target,
            )
    share = checks.get("p/a rate")
    if share is not None:
        record(
            f"p/a 2.0.1 throughput: {runs['p']['rate']:,.0f} vs {runs['a']['rate']:,.0f} "
            f"calls/s = {share:.0%}",
            f">= {TARGET_PG_SHARE:.0%}",
            share >= TARGET_PG_SHARE,
        )
    for key in (k for k in "ap" if k in runs and "overload_ok" in runs[k]):
        top = runs[key]["overload"][-1]
        holds, bounded = runs[key]["overload_ok"]
        record(
            f"({key}) 2.0.1 at {top['load']:g}x capacity: {top['rate'] / runs[key]['rate']:.0%} "
            f"of peak, p99 {top['latency']['all']['p99']:.0f} ms",
            "holds, bounded",
            holds and bounded,
        )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ocpp_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=50, help="charger connections for a/p/b/c")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per server")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per round")
    parser.add_argument("--updates", type=int, default=20, help="(m) Updated events per session")
    parser.add_argument(
        "--open-conns", type=int, default=150, help="(o) chargers of the open-loop load"
    )
    parser.add_argument("--idle", type=int, default=5000, help="idle chargers for (d)")
    parser.add_argument("--storm", type=int, default=2000, help="chargers in the storm (e)")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes for d/e")
    parser.add_argument(
        "--idle-limit",
        type=float,
        default=180.0,
        help="(d) starts no connection after this many seconds (bounds the run)",
    )
    parser.add_argument(
        "--loop", choices=["uvloop", "asyncio"], default="uvloop", help="loop of servers b and c"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("PLUGPAY_BENCH_PG_URL", DEFAULT_URL),
        help="(p) PostgreSQL server the fresh databases are made on",
    )
    parser.add_argument(
        "--parts",
        default="1apbcmode",
        help="what to measure: the servers a/p/b/c of 1 (1.6 MeterValues), m (the 2.0.1 "
        "mix) and o (past capacity), d/e idle memory and storm; e.g. 'ac' = '1ac'",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)

    def terminated(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    load_before = os.getloadavg()[0]
    errors: list[str] = []
    runs: dict[str, dict[str, Any]] = {}
    mixed: dict[str, dict[str, Any]] = {}
    rest: dict[str, Any] = {}
    servers = set("apbc") & set(opts.parts)
    # Without 1, m or o the letters of the servers ask for the 1.6 figures (``--parts ac``).
    meter_values = "1" in opts.parts or not set("mo") & set(opts.parts)
    try:
        with tempfile.TemporaryDirectory(prefix="plugpay-bench-") as tmp:
            procs = Processes(Path(tmp))
            try:
                with contextlib.ExitStack() as databases:
                    pg_ingest = pg_mix = None
                    if "p" in opts.parts:
                        down = available(opts.pg_url)
                        if down is not None:
                            errors.append(f"(p) PostgreSQL at {opts.pg_url}: {down}")
                        else:
                            if meter_values:
                                pg_ingest = databases.enter_context(
                                    fresh_database(opts.pg_url, "ingest")
                                )
                            if set("mo") & set(opts.parts):
                                pg_mix = databases.enter_context(fresh_database(opts.pg_url, "mix"))
                    if servers and meter_values:
                        runs = attempt("1.6 ingest", errors, ingest_all, procs, opts, pg_ingest)
                    if servers and set("mo") & set(opts.parts):
                        mixed = attempt("2.0.1 mix", errors, mix_all, procs, opts, pg_mix)
                    runs, mixed = runs or {}, mixed or {}
                if set("de") & set(opts.parts):
                    rest = attempt("d/e", errors, idle_and_storm, procs, opts, errors) or {}
            finally:
                procs.stop_all()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other work on the machine skews every figure)"
    )
    if runs:
        print_ingest(opts, runs)
    if mixed:
        record_mix(mixed, print_mix(opts, mixed))
    print_idle_and_storm(rest, record)
    for error in errors:
        print(f"NOT MEASURED: {error}")
        record(f"NOT MEASURED: {error.splitlines()[0][:80]}", "", False)
    return 1 if errors else 0
