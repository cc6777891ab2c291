"""Ingest benchmark (d) and (e): memory per idle connection, and a reconnect storm."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import time
from typing import Any

from .processes import (
    LOAD,
    PASSWORD,
    BenchError,
    Processes,
    attempt,
    cpu_seconds,
    note,
    percentile,
    read_json_line,
    rss,
    settle,
    split,
    start_server,
    verdict,
)

TARGET_IDLE_KIB = 40.0


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


def print_idle_and_storm(rest: dict[str, Any], record: Any = None) -> None:
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
        if record is not None:
            record(
                f"(d) {idle['kib_per_connection']:.1f} KiB per idle connection "
                f"({idle['connected']:,} chargers)",
                f"<= {TARGET_IDLE_KIB:g} KiB",
                ok,
            )
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
        if record is not None:
            record(
                f"(e) storm of {storm['chargers']:,}: done in {storm['seconds']:.1f} s, "
                f"{gave_up} timed out",
                "no timeouts",
                ok,
            )
