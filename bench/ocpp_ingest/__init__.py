"""OCPP ingest benchmark (issue 2): server CPU per MeterValues, idle memory, reconnect storm.

One run measures, each server in its own process (``servers.py``) and the
chargers in separate client processes (``load.py``), all on 127.0.0.1:

(a) plugpay's gateway with persistence (uvicorn configured as by ``plugpay
    serve``, SQLite file migrated with alembic, MeterValues attached to a
    transaction started with StartTransaction, so every reading and frame is
    stored);
(b) the stock ``ocpp`` 1.6 ``ChargePoint`` with its default jsonschema
    validation and no persistence, behind ``websockets.serve``;
(c) a bare ``websockets.serve`` that answers each frame with ``[3, id, {}]``
    (it parses the frame with ``json.loads`` to take the id: not a pure echo).

Load: ``--conns`` chargers each send 1.6 MeterValues as fast as they are
answered, one CALL outstanding per connection. After a warm-up, the server
process's CPU time (user + system, all threads) over the measured window is
divided by the messages answered in it. Targets: a <= 0.3 x b, a <= 4 x c.

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
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psutil

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "servers.py"
LOAD = HERE / "load.py"
PASSWORD = "bench-password-0123456789"  # 25 characters: OCPP allows 16-40

TARGET_A_OVER_B = 0.3
TARGET_A_OVER_C = 4.0
TARGET_IDLE_KIB = 40.0


class BenchError(RuntimeError):
    pass


class Processes:
    """Every child started by this run; all are stopped on exit, error or Ctrl-C."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[subprocess.Popen[str]] = []
        self._logs = 0

    def spawn(self, script: Path, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
        self._logs += 1
        log = self.workdir / f"{script.stem}-{self._logs}.log"
        with log.open("w") as err:
            child = subprocess.Popen(
                [sys.executable, str(script), *args],
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=self.workdir,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        child.log_path = log  # type: ignore[attr-defined]
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen[str], grace: float = 10.0) -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self.stop(child, grace=5.0)
        self.children.clear()


def log_tail(child: subprocess.Popen[str], lines: int = 15) -> str:
    path: Path = child.log_path  # type: ignore[attr-defined]
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def read_json_line(child: subprocess.Popen[str], timeout: float, what: str) -> dict[str, Any]:
    """The next JSON line the child prints, or BenchError with its log."""
    stream: IO[str] = child.stdout  # type: ignore[assignment]
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"{what}: no answer in {timeout:.0f} s\n{log_tail(child)}")
        ready, _, _ = select.select([stream], [], [], min(remaining, 1.0))
        if ready:
            line = stream.readline()
            if not line:
                child.wait(5)
                raise BenchError(
                    f"{what}: exited with {child.returncode}\n{log_tail(child)}"
                ) from None
            line = line.strip()
            if line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
                return result
        elif child.poll() is not None:
            raise BenchError(f"{what}: exited with {child.returncode}\n{log_tail(child)}")


def start_server(procs: Processes, role: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    child = procs.spawn(SERVERS, role, *args)
    ready = read_json_line(child, 120, f"{role} server")
    return child, int(ready["port"])


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def settle(pid: int, limit: float = 60.0) -> None:
    """Wait until the server is (nearly) idle: two half-second samples under 3 % CPU."""
    process = psutil.Process(pid)
    process.cpu_percent(None)
    calm = 0
    deadline = time.monotonic() + limit
    while calm < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        calm = calm + 1 if process.cpu_percent(None) < 3.0 else 0


def note(text: str) -> None:
    """Progress, on stderr, so the figures on stdout stay clean."""
    print(f"  .. {text}", file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# -- (a), (b), (c) ---------------------------------------------------------------

ROLES = {"a": "plugpay", "b": "stock", "c": "echo"}


def ingest_all(procs: Processes, opts: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """All servers up at once (idle ones cost nothing); rounds alternate between them.

    Interleaving a, b, c in every round spreads the drift of a shared machine
    over the three alike; each server's figure is its median round.
    """
    keys = [k for k in "abc" if k in opts.parts]
    servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
    for key in keys:
        args = ["--loop", opts.loop]
        if key == "a":  # fresh chargers every round: each starts a new transaction
            chargers = opts.conns * opts.rounds
            args = ["--db", str(procs.workdir / "ingest.db"), f"--chargers={chargers}"]
            args.append(f"--password={PASSWORD}")
        servers[key] = start_server(procs, ROLES[key], *args)
    rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    try:
        for n in range(opts.rounds):
            for key in keys:
                note(f"round {n + 1}/{opts.rounds}: ({key}) {ROLES[key]}")
                server, port = servers[key]
                rounds[key].append(ingest_round(procs, opts, key, server.pid, port, n))
        if "a" in keys:
            stored = stored_counts(procs.workdir / "ingest.db")
    finally:
        for server, _port in servers.values():
            procs.stop(server)
    runs = {k: summarise(v) for k, v in rounds.items()}
    if "a" in runs:
        runs["a"]["stored"] = stored
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
    if key == "a":
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


def stored_counts(db: Path) -> dict[str, int]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        readings, attached = conn.execute(
            "SELECT count(*), count(transaction_id) FROM meter_readings"
        ).fetchone()
        flagged = conn.execute("SELECT count(*) FROM meter_readings WHERE flag != ''").fetchone()[0]
        frames = conn.execute("SELECT count(*) FROM ocpp_messages").fetchone()[0]
    return {"readings": readings, "attached": attached, "flagged": flagged, "frames": frames}


# -- (d), (e) --------------------------------------------------------------------


def split(first: int, count: int, parts: int) -> Iterator[tuple[int, int]]:
    size, extra = divmod(count, parts)
    for n in range(parts):
        share = size + (1 if n < extra else 0)
        if share:
            yield first, share
            first += share


def idle_batch(
    procs: Processes, port: int, first: int, count: int, parts: int, limit: float
) -> tuple[list[subprocess.Popen[str]], list[dict[str, Any]]]:
    clients = [
        procs.spawn(
            LOAD,
            "idle",
            f"--port={port}",
            f"--first={start}",
            f"--count={share}",
            f"--password={PASSWORD}",
            f"--limit={limit}",
            stdin=True,
        )
        for start, share in split(first, count, parts)
    ]
    # In-flight handshakes and boots finish within their 30 s timeouts.
    reports = [read_json_line(c, limit + 90, "idle chargers") for c in clients]
    return clients, reports


def release(procs: Processes, clients: list[subprocess.Popen[str]]) -> None:
    for client in clients:
        with contextlib.suppress(OSError):
            client.stdin.write("close\n")  # type: ignore[union-attr]
            client.stdin.flush()  # type: ignore[union-attr]
    for client in clients:
        with contextlib.suppress(BenchError):
            read_json_line(client, 60, "closing idle chargers")
        procs.stop(client)


def idle_and_storm(procs: Processes, opts: argparse.Namespace, errors: list[str]) -> dict[str, Any]:
    warm = 100
    chargers = warm + max(opts.idle, opts.storm)
    server, port = start_server(
        procs,
        "plugpay",
        "--db",
        str(procs.workdir / "idle.db"),
        "--chargers",
        str(chargers),
        "--password",
        PASSWORD,
    )
    out: dict[str, Any] = {}
    try:
        if "d" in opts.parts:
            out["idle"] = attempt("d", errors, idle_memory, procs, opts, server.pid, port, warm)
            settle(server.pid)
        if "e" in opts.parts:
            out["storm"] = attempt("e", errors, reconnect_storm, procs, opts, port)
    finally:
        procs.stop(server, grace=20.0)
    return out


def idle_memory(
    procs: Processes, opts: argparse.Namespace, pid: int, port: int, warm: int
) -> dict[str, Any]:
    # Warm-up: one batch connects, boots and leaves, so one-off costs are paid.
    note(f"(d) warm-up: {warm} chargers connect, boot and leave")
    clients, _ = idle_batch(procs, port, opts.idle, warm, 1, 120)
    release(procs, clients)
    settle(pid)
    before = rss(pid)
    cpu0 = cpu_seconds(pid)
    note(f"(d) {opts.idle:,} chargers connect and boot")
    clients, reports = idle_batch(procs, port, 0, opts.idle, opts.client_procs, opts.idle_limit)
    try:
        cpu1 = cpu_seconds(pid)
        connected = sum(r["connected"] for r in reports)
        seconds = max(r["finished_at"] for r in reports) - min(r["started_at"] for r in reports)
        time.sleep(2)
        settle(pid)
        after = rss(pid)
    finally:
        release(procs, clients)
    return {
        "connected": connected,
        "failed": sum(r["failed"] for r in reports),
        "skipped": sum(r["skipped"] for r in reports),
        "wanted": opts.idle,
        "limit": opts.idle_limit,
        "failures": [f for r in reports for f in r["failures"]][:5],
        "seconds": seconds,
        "cpu_ms_per_connection": (cpu1 - cpu0) / max(connected, 1) * 1e3,
        "rss_before": before,
        "rss_after": after,
        "kib_per_connection": (after - before) / max(connected, 1) / 1024,
    }


def reconnect_storm(procs: Processes, opts: argparse.Namespace, port: int) -> dict[str, Any]:
    note(f"(e) reconnect storm: {opts.storm:,} chargers at once")
    start_at = time.time() + 3.0  # every client process is up and waiting by then
    clients = [
        procs.spawn(
            LOAD,
            "storm",
            f"--port={port}",
            f"--first={start}",
            f"--count={share}",
            f"--password={PASSWORD}",
            f"--start-at={start_at}",
            "--timeout=30",
        )
        for start, share in split(0, opts.storm, opts.client_procs)
    ]
    reports = [read_json_line(c, 200, "storm chargers") for c in clients]
    for client in clients:
        procs.stop(client)
    durations = sorted(d for r in reports for d in r["durations"])
    calls = sorted(d for r in reports for d in r["calls"])
    keys = ("connect_timeouts", "connect_errors", "call_timeouts", "call_errors")
    result: dict[str, Any] = {k: sum(r[k] for r in reports) for k in keys}
    result.update(
        chargers=opts.storm,
        seen_before="d" in opts.parts,
        completed=len(durations),
        seconds=max(r["finished_at"] for r in reports) - start_at,
        p50=percentile(durations, 50),
        p99=percentile(durations, 99),
        calls_p50=percentile(calls, 50),
        calls_p99=percentile(calls, 99),
        errors=[e for r in reports for e in r["errors"]][:5],
    )
    return result


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


# -- report ---------------------------------------------------------------------


def report(opts: argparse.Namespace, runs: dict[str, dict[str, Any]], rest: dict[str, Any]) -> None:
    if runs:
        print_ingest(opts, runs)
    print_idle_and_storm(rest)


def print_ingest(opts: argparse.Namespace, runs: dict[str, dict[str, Any]]) -> None:
    print(
        f"OCPP ingest: {opts.conns} chargers on loopback send OCPP 1.6 MeterValues (energy, "
        "power, SoC),\none CALL outstanding per connection. "
        f"{opts.rounds} rounds alternating the servers, each {opts.warmup:g} s warm-up + "
        f"{opts.seconds:g} s measured;\nserver CPU = user + system of the server process "
        "(all threads), median round [min-max]."
    )
    names = {
        "a": "(a) plugpay gateway, SQLite persistence",
        "b": "(b) ocpp ChargePoint, jsonschema, no storage",
        "c": "(c) websockets, json.loads id -> [3,id,{}]",
    }
    print(
        f"{'server':<45}{'answered':>9}{'msg/s':>8}{'CPU µs/msg':>12}{'[min-max]':>12}"
        f"{'client µs':>10}{'others':>8}"
    )
    for key, run in runs.items():
        spread = f"[{run['us_min']:.0f}-{run['us_max']:.0f}]"
        print(
            f"{names[key]:<45}{run['answered']:>9,}{run['rate']:>8,.0f}"
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
    if "a" in runs and "stored" in runs["a"]:
        s = runs["a"]["stored"]
        print(
            f"    (a) stored {s['readings']:,} readings ({s['attached']:,} attached to their "
            f"transaction, {s['flagged']:,} flagged) and {s['frames']:,} logged frames"
        )
    a = runs.get("a", {}).get("us_per_msg")
    for key, target in (("b", TARGET_A_OVER_B), ("c", TARGET_A_OVER_C)):
        if a is not None and key in runs:
            ratio = a / runs[key]["us_per_msg"]
            print(f"a/{key} = {ratio:.2f}   target <= {target:g}   {verdict(ratio <= target)}")


def print_idle_and_storm(rest: dict[str, Any]) -> None:
    idle = rest.get("idle")
    if idle:
        ok = idle["failed"] == 0 and idle["kib_per_connection"] <= TARGET_IDLE_KIB
        print(
            f"(d) idle memory: {idle['connected']:,} chargers connected and booted in "
            f"{idle['seconds']:.1f} s ({idle['cpu_ms_per_connection']:.1f} ms server CPU each, "
            f"mostly argon2), {idle['failed']} failed;\n"
            f"    server RSS {idle['rss_before'] / 2**20:.1f} -> "
            f"{idle['rss_after'] / 2**20:.1f} MiB = {idle['kib_per_connection']:.1f} KiB "
            f"per idle connection   target <= {TARGET_IDLE_KIB:g} KiB   {verdict(ok)}"
            + (" (measured on fewer chargers)" if idle["skipped"] else "")
        )
        if idle["skipped"]:
            print(
                f"    only {idle['connected']:,} of {idle['wanted']:,}: the machine was too slow "
                f"to connect the other {idle['skipped']:,} in the {idle['limit']:g} s limit "
                "(--idle-limit)"
            )
        for failure in idle["failures"]:
            print(f"    failure: {failure}")
    storm = rest.get("storm")
    if storm:
        gave_up = storm["connect_timeouts"] + storm["call_timeouts"]
        ok = gave_up == 0 and storm["connect_errors"] == 0 and storm["call_errors"] == 0
        print(
            f"(e) reconnect storm: {storm['chargers']:,} chargers "
            + ("this server has seen before " if storm["seen_before"] else "")
            + "connect + BootNotification +\n    StatusNotification at once: "
            f"{storm['completed']:,} done in "
            f"{storm['seconds']:.1f} s;\n"
            f"    per charger done: p50 {storm['p50']:.1f} s, p99 {storm['p99']:.1f} s "
            f"(boot + status once connected: p50 {storm['calls_p50']:.1f} s, "
            f"p99 {storm['calls_p99']:.1f} s);\n    "
            f"timed out (30 s): {storm['call_timeouts']} calls, "
            f"{storm['connect_timeouts']} handshakes; errors: {storm['call_errors']} calls, "
            f"{storm['connect_errors']} handshakes   target: no timeouts   {verdict(ok)}"
        )
        for error in storm["errors"]:
            print(f"    error: {error}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ocpp_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=50, help="charger connections for a/b/c")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per server")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per round")
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
    parser.add_argument("--parts", default="abcde", help="which figures to measure, e.g. 'ac'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)

    def terminated(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    load_before = os.getloadavg()[0]
    errors: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="plugpay-bench-") as tmp:
            procs = Processes(Path(tmp))
            try:
                runs: dict[str, dict[str, Any]] = {}
                rest: dict[str, Any] = {}
                if set("abc") & set(opts.parts):
                    runs = attempt("a/b/c", errors, ingest_all, procs, opts) or {}
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
    report(opts, runs, rest)
    for error in errors:
        print(f"NOT MEASURED: {error}")
    return 1 if errors else 0


def attempt(what: str, errors: list[str], phase: Any, *args: Any) -> Any:
    """Run one phase; a failure is reported with the figures of the others."""
    try:
        return phase(*args)
    except (BenchError, OSError, ValueError, KeyError, psutil.Error) as exc:
        errors.append(f"({what}) {type(exc).__name__}: {exc}")
        return None
