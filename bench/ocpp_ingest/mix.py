"""Ingest benchmark (m) and (o): the OCPP 2.0.1 session mix, and load past capacity.

(m) ``--conns`` chargers run OCPP 2.0.1 sessions back to back
    (``load201.py``): Authorize, TransactionEvent Started, ``--updates`` x
    Updated with an energy register reading, Ended; one CALL outstanding per
    connection. Servers, all up at once and alternating by round: plugpay on
    SQLite (a) and on PostgreSQL (p), the stock ``ocpp`` 2.0.1 ChargePoint
    (b) and a bare ``websockets`` server (c). Figure: server CPU per CALL over
    the whole mix (the transaction jobs the worker runs meanwhile included),
    with the targets of the 1.6 MeterValues figure: a <= 0.3 x b, a <= 4 x c.
(o) Past capacity: ``--open-conns`` chargers on open-loop schedules
    (``load201.py --rate``) offer 1x, 2x and 3x the CALLs per second plugpay
    answered in (m) with ``--conns`` chargers; throughput and latency (p50,
    p99, from the frame written to its answer) per load. A charger sends no
    CALL before its last one is answered (OCPP-J), so what the server cannot
    take waits in the chargers: throughput should hold at its peak and
    latency stay bounded by the chargers in flight, not grow with the excess.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import subprocess
from pathlib import Path
from typing import Any

from .postgres import counts as pg_counts
from .processes import LOAD201, PASSWORD, Processes, note, read_json_line, start_server, verdict

MIX_ROLES = {"a": "plugpay", "p": "plugpay", "b": "stock201", "c": "echo"}
MIX_NAMES = {
    "a": "(a) plugpay gateway, SQLite persistence",
    "p": "(p) plugpay gateway, PostgreSQL persistence",
    "b": "(b) ocpp 2.0.1 ChargePoint, jsonschema, none",
    "c": "(c) websockets, json.loads id -> [3,id,{}]",
}
KINDS = ("Authorize", "Started", "Updated", "Ended")
LOADS = (1.0, 2.0, 3.0)

# Transaction jobs not yet run (the driver's session has not heard yet).
_BEHIND = {
    "behind": "SELECT count(*) FROM jobs WHERE kind LIKE 'transaction.%' AND state != 'done'"
}
_STORED = {
    "transactions": "SELECT count(*) FROM transactions",
    "ended": "SELECT count(*) FROM transactions WHERE status = 'ended'",
    "readings": "SELECT count(*) FROM meter_readings",
    "events": "SELECT count(*) FROM transaction_messages",
    "jobs": "SELECT count(*) FROM jobs WHERE kind LIKE 'transaction.%'",
    "jobs_done": "SELECT count(*) FROM jobs WHERE kind LIKE 'transaction.%' AND state = 'done'",
}


def mix_all(
    procs: Processes, opts: argparse.Namespace, pg_url: str | None
) -> dict[str, dict[str, Any]]:
    keys = [k for k in "apbc" if k in opts.parts and (k != "p" or pg_url)]
    chargers = max(opts.conns, opts.open_conns)
    servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
    sqlite_path = procs.workdir / "mix.db"
    runs: dict[str, dict[str, Any]] = {}
    try:
        for key in keys:
            args = ["--loop", opts.loop]
            if key in "ap":
                where = ["--db", str(sqlite_path)] if key == "a" else ["--database-url", pg_url]
                args = [*where, f"--chargers={chargers}", f"--password={PASSWORD}"]
            servers[key] = start_server(procs, MIX_ROLES[key], *args)  # type: ignore[arg-type]

        def counted(key: str, queries: dict[str, str]) -> dict[str, int]:
            if key == "a":
                return sqlite_counts(sqlite_path, queries)
            return pg_counts(pg_url or "", queries)

        rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        for n in range(opts.rounds):
            for key in keys:
                note(f"(m) 2.0.1 mix, round {n + 1}/{opts.rounds}: ({key}) {MIX_ROLES[key]}")
                server, port = servers[key]
                rounds[key].append(mix_round(procs, opts, server.pid, port, f"m{n}-"))
                if key in "ap":
                    rounds[key][-1]["jobs_behind"] = counted(key, _BEHIND)["behind"]
        runs = {k: summarise(v) for k, v in rounds.items()}
        for key in (k for k in "ap" if k in runs):
            runs[key]["stored"] = counted(key, _STORED)
        if "o" in opts.parts:
            for key in (k for k in "ap" if k in runs):
                server, port = servers[key]
                capacity = runs[key]["rate"]
                runs[key]["overload"] = []
                for i, load in enumerate(LOADS):
                    result = overload_round(procs, opts, server.pid, port, load, capacity, f"o{i}-")
                    result["jobs_behind"] = counted(key, _BEHIND)["behind"]
                    runs[key]["overload"].append(result)
    finally:
        for server, _port in servers.values():
            procs.stop(server)
    return runs


def mix_round(
    procs: Processes, opts: argparse.Namespace, pid: int, port: int, prefix: str
) -> dict[str, Any]:
    client = procs.spawn(
        LOAD201,
        f"--port={port}",
        f"--server-pid={pid}",
        f"--conns={opts.conns}",
        f"--updates={opts.updates}",
        f"--warmup={opts.warmup}",
        f"--seconds={opts.seconds}",
        f"--password={PASSWORD}",
        f"--tx-prefix={prefix}",
    )
    try:
        result = read_json_line(client, opts.warmup + opts.seconds + 150, "2.0.1 load")
    finally:
        procs.stop(client)
    answered = max(result["answered"], 1)
    result["us_per_call"] = result["server_cpu"] / answered * 1e6
    result["client_us_per_call"] = result["client_cpu"] / answered * 1e6
    result["rate"] = result["answered"] / result["wall"]
    return result


def overload_round(
    procs: Processes,
    opts: argparse.Namespace,
    pid: int,
    port: int,
    load: float,
    capacity: float,
    prefix: str,
) -> dict[str, Any]:
    rate = load * capacity
    note(f"(o) open loop: {opts.open_conns} chargers offer {load:g}x = {rate:,.0f} CALLs/s")
    client = procs.spawn(
        LOAD201,
        f"--port={port}",
        f"--server-pid={pid}",
        f"--conns={opts.open_conns}",
        f"--updates={opts.updates}",
        f"--warmup={opts.warmup}",
        f"--seconds={opts.seconds}",
        f"--password={PASSWORD}",
        f"--tx-prefix={prefix}",
        f"--rate={rate}",
    )
    try:
        result = read_json_line(client, opts.warmup + opts.seconds + 150, "open-loop load")
    finally:
        procs.stop(client)
    result["load"] = load
    result["rate_offered"] = rate
    result["rate"] = result["answered"] / result["wall"]
    result["us_per_call"] = result["server_cpu"] / max(result["answered"], 1) * 1e6
    return result


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    per_call = [r["us_per_call"] for r in rounds]

    def latency(kind: str, q: str) -> float:
        return statistics.median(r["latency"][kind][q] for r in rounds)

    return {
        "rounds": rounds,
        "answered": sum(r["answered"] for r in rounds),
        "by_kind": {k: sum(r["by_kind"][k] for r in rounds) for k in KINDS},
        "rejected": sum(r["rejected"] for r in rounds),
        "rejected_sample": [x for r in rounds for x in r["rejected_sample"]][:3],
        "us_per_call": statistics.median(per_call),
        "us_min": min(per_call),
        "us_max": max(per_call),
        "client_us_per_call": statistics.median(r["client_us_per_call"] for r in rounds),
        "rate": statistics.median(r["rate"] for r in rounds),
        "others": statistics.mean(r["others_share"] for r in rounds),
        "latency": {k: (latency(k, "p50"), latency(k, "p99")) for k in ("all", *KINDS)},
    }


def sqlite_counts(path: Path, queries: dict[str, str]) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {k: int(conn.execute(q).fetchone()[0]) for k, q in queries.items()}


# -- report ---------------------------------------------------------------------


def print_mix(opts: argparse.Namespace, runs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Print (m) and (o); the ratios checked against targets."""
    print(
        f"(m) OCPP 2.0.1 session mix: {opts.conns} chargers, each in a loop: Authorize, "
        f"TransactionEvent Started,\n    {opts.updates} x Updated (energy register), Ended; "
        f"one CALL outstanding per connection. {opts.rounds} rounds alternating the\n    "
        f"servers, each {opts.warmup:g} s warm-up + {opts.seconds:g} s measured; server CPU "
        "per CALL over the whole mix (jobs included), median round [min-max]."
    )
    print(
        f"{'server':<46}{'answered':>9}{'calls/s':>9}{'CPU µs/call':>13}{'[min-max]':>12}"
        f"{'client µs':>10}{'others':>8}"
    )
    for key, run in runs.items():
        spread = f"[{run['us_min']:.0f}-{run['us_max']:.0f}]"
        print(
            f"{MIX_NAMES[key]:<46}{run['answered']:>9,}{run['rate']:>9,.0f}"
            f"{run['us_per_call']:>13.0f}{spread:>12}{run['client_us_per_call']:>10.0f}"
            f"{run['others'] * 100:>7.0f}%"
        )
        if run["rejected"]:
            print(
                f"    {run['rejected']:,} answers were not CALLRESULTs, e.g. "
                f"{run['rejected_sample'][:1]}: the figure above is not valid"
            )
    print("    latency ms, p50 / p99 (median round), by CALL:")
    print(f"    {'':<44}" + "".join(f"{k:>14}" for k in ("all", *KINDS)))
    for key, run in runs.items():
        cells = "".join(
            f"{run['latency'][k][0]:>7.1f} /{run['latency'][k][1]:>5.0f}" for k in ("all", *KINDS)
        )
        print(f"    {MIX_NAMES[key]:<44}{cells}")
    for key in (k for k in "ap" if k in runs and "stored" in runs[k]):
        s = runs[key]["stored"]
        behind = [r["jobs_behind"] for r in runs[key]["rounds"]]
        print(
            f"    ({key}) stored {s['transactions']:,} transactions ({s['ended']:,} ended), "
            f"{s['events']:,} events, {s['readings']:,} readings; transaction jobs "
            f"{s['jobs_done']:,} of {s['jobs']:,} done, not yet run after each round: "
            + ", ".join(f"{b:,}" for b in behind)
        )
    ratios: dict[str, float] = {}
    a = runs.get("a", {}).get("us_per_call")
    for key, target in (("b", 0.3), ("c", 4.0)):
        if a is not None and key in runs:
            ratio = a / runs[key]["us_per_call"]
            ratios[f"a/{key}"] = ratio
            print(f"(m) a/{key} = {ratio:.2f}   target <= {target:g}   {verdict(ratio <= target)}")
    if "a" in runs and "p" in runs:
        share = runs["p"]["rate"] / runs["a"]["rate"]
        ratios["p/a rate"] = share
        print(
            f"(m) PostgreSQL throughput {runs['p']['rate']:,.0f} = {share:.0%} of SQLite's "
            f"{runs['a']['rate']:,.0f} calls/s   target >= 70%   {verdict(share >= 0.7)}"
        )
    for key in (k for k in "ap" if k in runs and "overload" in runs[k]):
        print_overload(opts, key, runs[key])
    return ratios


def print_overload(opts: argparse.Namespace, key: str, run: dict[str, Any]) -> None:
    print(
        f"(o) past capacity, ({key}) {MIX_ROLES[key]} "
        f"{'SQLite' if key == 'a' else 'PostgreSQL'}: {opts.open_conns} chargers on "
        f"open-loop schedules offer a multiple of the\n    {run['rate']:,.0f} calls/s answered "
        "in (m); latency from the frame written to its answer."
    )
    print(
        f"    {'offered':>8}{'calls/s':>10}{'answered/s':>12}{'of peak':>9}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}{'CPU µs/call':>13}{'sent late':>11}{'jobs behind':>13}"
    )
    for r in run["overload"]:
        lat = r["latency"]["all"]
        late = r["late"] / max(r["answered"], 1)
        print(
            f"    {r['load']:>7g}x{r['rate_offered']:>10,.0f}{r['rate']:>12,.0f}"
            f"{r['rate'] / run['rate']:>9.0%}{lat['p50']:>9.1f}{lat['p99']:>9.0f}"
            f"{lat['max']:>9.0f}{r['us_per_call']:>13.0f}{late:>11.0%}{r['jobs_behind']:>13,}"
        )
    peak = max(run["rate"], run["overload"][0]["rate"])
    top = run["overload"][-1]
    holds = top["rate"] >= 0.85 * peak
    base_p99 = max(run["overload"][0]["latency"]["all"]["p99"], 1.0)
    bounded = top["latency"]["all"]["p99"] <= 3 * base_p99
    print(
        f"    at {top['load']:g}x: throughput {top['rate'] / peak:.0%} of the peak "
        f"(target >= 85%) {verdict(holds)}; p99 {top['latency']['all']['p99']:.0f} ms vs "
        f"{run['overload'][0]['latency']['all']['p99']:.0f} ms at 1x (target <= 3x) "
        f"{verdict(bounded)}\n    (sent late: CALLs a charger sent after their due time, "
        "held back by OCPP-J's one CALL in flight)"
    )
    run["overload_ok"] = (holds, bounded)
