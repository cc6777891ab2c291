"""Scale-out benchmark: two ``plugpay serve`` instances on PostgreSQL and Redis, and the job queue.

(i) Ingest. A fresh PostgreSQL database (``--pg-url``; created and dropped by
    the run) is migrated and given chargers (``ocpp_ingest/servers.py seed``);
    two ``plugpay serve`` processes run on it with the same Redis
    (``--redis-url``), as production does behind a proxy. ``--conns``
    chargers (``ocpp_ingest/load.py ingest``: 1.6 MeterValues as fast as they
    are answered, one CALL outstanding each, each on a transaction it started)
    go all to the first instance, then half to each (two load processes at
    once); rounds alternate the two set-ups, fresh chargers each time. Figure:
    the throughput of two instances over one (target >= 1.8 on a machine with
    the cores for it), and where the machine's CPU went meanwhile (plugpay,
    PostgreSQL, the load, everything else), which says why a 2-core machine
    gives what it gives.
(ii) Jobs. ``--jobs`` trivial jobs (a handler that does nothing) are queued in
    one transaction, then worker processes (``jobs.py``: plugpay's
    ``JobWorker`` on ``SqlJobQueue``, as in every instance: claim with a lease,
    run, finish) start at the same instant; jobs per second from that instant
    until the database has every job done. One worker and two, on PostgreSQL
    (rounds alternating), and one on SQLite for reference.

Run: ``python bench/run.py scale_out`` (or ``make bench``); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from ocpp_ingest.postgres import DEFAULT_URL, available, fresh_database
from ocpp_ingest.postgres import counts as pg_counts
from ocpp_ingest.processes import (
    LOAD,
    PASSWORD,
    SERVERS,
    BenchError,
    Processes,
    attempt,
    note,
    read_json_line,
    verdict,
)

HERE = Path(__file__).resolve().parent
JOBS = HERE / "jobs.py"
TARGET_RATIO = 1.8
PREFIX = "SO"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_instance(procs: Processes, url: str, redis_url: str) -> tuple[Any, int]:
    """``plugpay serve`` on a free port; returns once /healthz answers."""
    port = free_port()
    env = {
        "PLUGPAY_DATABASE_URL": url,
        "PLUGPAY_REDIS_URL": redis_url,
        "PLUGPAY_SECRET_KEY": "bench-" + "k" * 40,
        "PLUGPAY_ENV": "development",
    }
    child = procs.spawn(
        Path("plugpay-serve"),
        "serve",
        "--host=127.0.0.1",
        f"--port={port}",
        env=env,
        module="plugpay.cli",
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchError(f"plugpay serve exited with {child.returncode}")
        health = f"http://127.0.0.1:{port}/healthz"
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as answer:
            if answer.status == 200:
                return child, port
        time.sleep(0.2)
    raise BenchError("plugpay serve did not answer /healthz in 90 s")


def ingest(procs: Processes, opts: argparse.Namespace, url: str) -> dict[str, Any]:
    chargers = opts.conns * opts.rounds * 2
    note(f"(i) migrating and registering {chargers} chargers on PostgreSQL")
    seeder = procs.spawn(
        SERVERS,
        "seed",
        f"--database-url={url}",
        f"--chargers={chargers}",
        f"--prefix={PREFIX}",
        f"--password={PASSWORD}",
    )
    read_json_line(seeder, 300, "seeding")
    procs.stop(seeder)
    instances = [start_instance(procs, url, opts.redis_url) for _ in range(2)]
    results: dict[str, list[dict[str, Any]]] = {"one": [], "two": []}
    try:
        first = 0
        for n in range(opts.rounds):
            for setup in ("one", "two"):
                note(f"(i) round {n + 1}/{opts.rounds}: {setup} instance(s)")
                used = instances[:1] if setup == "one" else instances
                results[setup].append(ingest_round(procs, opts, used, first))
                first += opts.conns
    finally:
        for child, _port in instances:
            procs.stop(child)
    return {k: summarise(v) for k, v in results.items()}


def ingest_round(
    procs: Processes, opts: argparse.Namespace, instances: list[tuple[Any, int]], first: int
) -> dict[str, Any]:
    share = opts.conns // len(instances)
    loads = []
    for i, (child, port) in enumerate(instances):
        args = [
            "ingest",
            f"--port={port}",
            f"--server-pid={child.pid}",
            f"--conns={share}",
            f"--first={first + i * share}",
            f"--prefix={PREFIX}",
            f"--warmup={opts.warmup}",
            f"--seconds={opts.seconds}",
            f"--password={PASSWORD}",
            "--start-transaction",
        ]
        if i == 0:
            args.append("--watch-name=postgres")
        loads.append(procs.spawn(LOAD, *args))
    try:
        reports = [read_json_line(c, opts.warmup + opts.seconds + 120, "load") for c in loads]
    finally:
        for child in loads:
            procs.stop(child)
    wall = statistics.mean(r["wall"] for r in reports)
    answered = sum(r["answered"] for r in reports)
    cores = psutil.cpu_count() or 1
    plugpay = sum(r["server_cpu"] for r in reports) / wall
    load = sum(r["client_cpu"] for r in reports) / wall
    postgres = reports[0]["watched_cpu"] / wall
    busy = statistics.mean(r["machine_busy"] for r in reports) * cores
    return {
        "rate": answered / wall,
        "us_per_msg": sum(r["server_cpu"] for r in reports) / max(answered, 1) * 1e6,
        "rejected": sum(r["rejected"] for r in reports),
        # cores' worth of CPU over the window
        "plugpay": plugpay,
        "postgres": postgres,
        "load": load,
        "others": max(0.0, busy - plugpay - postgres - load),
        "idle": max(0.0, cores - busy),
    }


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds, "rejected": sum(r["rejected"] for r in rounds)}
    for key in ("rate", "us_per_msg", "plugpay", "postgres", "load", "others", "idle"):
        out[key] = statistics.median(r[key] for r in rounds)
    out["rates"] = [r["rate"] for r in rounds]
    return out


# -- (ii) jobs ------------------------------------------------------------------


def job_queue(procs: Processes, opts: argparse.Namespace, url: str) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"pg1": [], "pg2": []}
    run_id = 0
    for n in range(opts.job_rounds):
        for key, workers in (("pg1", 1), ("pg2", 2)):
            note(f"(ii) jobs round {n + 1}/{opts.job_rounds}: {workers} worker(s) on PostgreSQL")
            run_id += 1
            runs[key].append(jobs_round(procs, opts, url, workers, str(run_id)))
    sqlite_url = f"sqlite+aiosqlite:///{procs.workdir / 'jobs.db'}"
    note("(ii) jobs: one worker on SQLite")
    seeder = procs.spawn(SERVERS, "seed", f"--db={procs.workdir / 'jobs.db'}", "--chargers=1")
    read_json_line(seeder, 120, "SQLite for the jobs")
    procs.stop(seeder)
    runs["sqlite1"] = [jobs_round(procs, opts, sqlite_url, 1, "s")]
    return {
        k: {
            "rate": statistics.median(r["rate"] for r in v),
            "rates": [r["rate"] for r in v],
            "us_per_job": statistics.median(r["us_per_job"] for r in v),
            "split": v[-1]["split"],
            "complete": all(r["complete"] for r in v),
        }
        for k, v in runs.items()
    }


def done_count(url: str, run: str) -> int:
    query = f"SELECT count(*) FROM jobs WHERE key LIKE 'bench:{run}:%' AND state = 'done'"
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
            return int(conn.execute(query).fetchone()[0])
    return pg_counts(url, {"done": query})["done"]


def jobs_round(
    procs: Processes, opts: argparse.Namespace, url: str, workers: int, run: str
) -> dict[str, Any]:
    inserter = procs.spawn(
        JOBS, "insert", f"--database-url={url}", f"--count={opts.jobs}", f"--run={run}"
    )
    read_json_line(inserter, 120, "queueing jobs")
    procs.stop(inserter)
    start_at = time.time() + 3.0  # every worker is up and waiting by then
    children = [
        procs.spawn(
            JOBS,
            "work",
            f"--database-url={url}",
            f"--start-at={start_at}",
            f"--limit={opts.job_limit}",
            stdin=True,
        )
        for _ in range(workers)
    ]
    done, finished = 0, time.time()
    try:
        while time.time() < start_at + opts.job_limit:
            time.sleep(0.05)
            done = done_count(url, run)
            finished = time.time()
            if done >= opts.jobs:
                break
        for child in children:
            with contextlib.suppress(OSError):
                child.stdin.write("stop\n")  # type: ignore[union-attr]
                child.stdin.flush()  # type: ignore[union-attr]
        reports = [read_json_line(c, 60, "job worker") for c in children]
    finally:
        for child in children:
            procs.stop(child)
    seconds = max(finished - start_at, 1e-6)
    return {
        "rate": done / seconds,
        "complete": done >= opts.jobs,
        "us_per_job": sum(r["cpu"] for r in reports) / max(done, 1) * 1e6,
        "split": [r["ran"] for r in reports],
    }


# -- report ---------------------------------------------------------------------


def record(figure: str, target: str, ok: bool | None) -> None:
    with contextlib.suppress(ImportError):
        import _summary

        _summary.record("scale_out", figure, target, ok)


def report(opts: argparse.Namespace, runs: dict[str, Any], jobs: dict[str, Any]) -> None:
    cores = psutil.cpu_count() or 1
    if runs:
        one, two = runs["one"], runs["two"]
        ratio = two["rate"] / one["rate"]
        print(
            f"(i) ingest: {opts.conns} chargers send 1.6 MeterValues (one CALL outstanding "
            f"each) to plugpay serve on PostgreSQL + Redis;\n    {opts.rounds} rounds "
            f"alternating one instance and two (half the chargers each), {opts.warmup:g} s "
            f"warm-up + {opts.seconds:g} s measured, median round."
        )
        print(
            f"    {'':<16}{'msg/s':>8}{'[rounds]':>20}{'CPU µs/msg':>12}   where the "
            f"{cores} cores went (cores' worth): plugpay, PostgreSQL, load, others, idle"
        )
        for name, run in (("one instance", one), ("two instances", two)):
            rates = "/".join(f"{r:,.0f}" for r in run["rates"])
            print(
                f"    {name:<16}{run['rate']:>8,.0f}{rates:>20}{run['us_per_msg']:>12.0f}   "
                f"{run['plugpay']:.2f}, {run['postgres']:.2f}, {run['load']:.2f}, "
                f"{run['others']:.2f}, {run['idle']:.2f}"
            )
            if run["rejected"]:
                print(f"    {run['rejected']} answers were not CALLRESULTs: not valid")
        ok = ratio >= TARGET_RATIO
        print(
            f"    two / one = {ratio:.2f}x   target >= {TARGET_RATIO:g}x on a machine with the "
            f"cores for it   {verdict(ok)} on this machine"
        )
        print(
            f"    Why: with one instance the machine had {one['idle']:.2f} of {cores} cores "
            "idle; a second instance can only use what is idle (plus what the first one "
            "then gives\n    up), and every message also costs PostgreSQL and the load "
            f"generator CPU on the same cores ({one['postgres']:.2f} + {one['load']:.2f} "
            "cores' worth with one instance).\n    Scaling out needs cores (or machines) "
            "for the second instance and its share of the database's work."
        )
        record(
            f"(i) two instances / one: {two['rate']:,.0f} / {one['rate']:,.0f} msg/s = "
            f"{ratio:.2f}x ({cores} cores)",
            f">= {TARGET_RATIO:g}x with the cores",
            ok,
        )
    if jobs:
        print(
            f"(ii) job queue: {opts.jobs:,} trivial jobs, each claimed with a lease, run and "
            "finished (JobWorker, concurrency 16 each); median of rounds."
        )
        names = {
            "sqlite1": "SQLite, one worker",
            "pg1": "PostgreSQL, one worker",
            "pg2": "PostgreSQL, two workers",
        }
        for key in ("sqlite1", "pg1", "pg2"):
            if key not in jobs:
                continue
            run = jobs[key]
            rates = "/".join(f"{r:,.0f}" for r in run["rates"])
            split = " + ".join(str(n) for n in run["split"])
            print(
                f"    {names[key]:<26}{run['rate']:>8,.0f} jobs/s  [{rates}]  "
                f"worker CPU {run['us_per_job']:.0f} µs/job  (last round ran {split})"
                + ("" if run["complete"] else "  (not all done in the time limit)")
            )
        if "pg1" in jobs and "pg2" in jobs:
            ratio = jobs["pg2"]["rate"] / jobs["pg1"]["rate"]
            print(f"    two workers / one = {ratio:.2f}x on PostgreSQL")
            record(
                f"(ii) jobs/s: PostgreSQL {jobs['pg1']['rate']:,.0f} (one worker), "
                f"{jobs['pg2']['rate']:,.0f} (two) = {ratio:.2f}x; "
                f"SQLite {jobs.get('sqlite1', {}).get('rate', float('nan')):,.0f}",
                "(measured)",
                None,
            )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scale_out", description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=50, help="(i) chargers in all")
    parser.add_argument("--rounds", type=int, default=3, help="(i) rounds per set-up")
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--jobs", type=int, default=2000, help="(ii) jobs per round")
    parser.add_argument("--job-rounds", type=int, default=2)
    parser.add_argument("--job-limit", type=float, default=90.0, help="(ii) seconds per round")
    parser.add_argument("--pg-url", default=os.environ.get("PLUGPAY_BENCH_PG_URL", DEFAULT_URL))
    parser.add_argument(
        "--redis-url", default=os.environ.get("PLUGPAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--parts", default="ij", help="i: ingest, j: jobs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)

    def terminated(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    errors: list[str] = []
    runs: dict[str, Any] = {}
    jobs: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    try:
        down = available(opts.pg_url)
        if down is not None:
            errors.append(f"PostgreSQL at {opts.pg_url}: {down}")
        else:
            with tempfile.TemporaryDirectory(prefix="plugpay-bench-") as tmp:
                procs = Processes(Path(tmp))
                try:
                    with fresh_database(opts.pg_url, "scale") as url:
                        if "i" in opts.parts:
                            runs = attempt("i", errors, ingest, procs, opts, url) or {}
                        if "j" in opts.parts:
                            jobs = attempt("ii", errors, job_queue, procs, opts, url) or {}
                finally:
                    procs.stop_all()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other work on the machine skews every figure)"
    )
    report(opts, runs, jobs)
    for error in errors:
        print(f"NOT MEASURED: {error}")
        record(f"NOT MEASURED: {error.splitlines()[0][:80]}", "", False)
    return 1 if errors else 0
