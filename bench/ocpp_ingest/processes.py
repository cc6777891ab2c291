"""What every ingest benchmark phase needs: child processes, their JSON lines, CPU time."""

from __future__ import annotations

import contextlib
import json
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psutil

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "servers.py"
LOAD = HERE / "load.py"
LOAD201 = HERE / "load201.py"
PASSWORD = "bench-password-0123456789"  # 25 characters: OCPP allows 16-40


class BenchError(RuntimeError):
    pass


class Processes:
    """Every child started by this run; all are stopped on exit, error or Ctrl-C."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[subprocess.Popen[str]] = []
        self._logs = 0

    def spawn(
        self,
        script: Path,
        *args: str,
        stdin: bool = False,
        env: dict[str, str] | None = None,
        module: str | None = None,
    ) -> subprocess.Popen[str]:
        """Run ``script`` (or ``python -m module``, logged under ``script``'s name)."""
        self._logs += 1
        log = self.workdir / f"{script.stem}-{self._logs}.log"
        target = ["-m", module] if module else [str(script)]
        with log.open("w") as err:
            child = subprocess.Popen(
                [sys.executable, *target, *args],
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=self.workdir,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
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


def split(first: int, count: int, parts: int) -> Iterator[tuple[int, int]]:
    size, extra = divmod(count, parts)
    for n in range(parts):
        share = size + (1 if n < extra else 0)
        if share:
            yield first, share
            first += share


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def attempt(what: str, errors: list[str], phase: Any, *args: Any) -> Any:
    """Run one phase; a failure is reported with the figures of the others."""
    try:
        return phase(*args)
    except (BenchError, OSError, ValueError, KeyError, psutil.Error) as exc:
        errors.append(f"({what}) {type(exc).__name__}: {exc}")
        return None
