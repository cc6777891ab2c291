"""Run the independent ocpp-rpc charger (tests/peers/ocpp_rpc/charger.mjs) from pytest.

ocpp-rpc runs in strictMode: every message both ways is checked against the
official OCPP JSON schemas. See tests/peers/README.md for the scenario and
output formats.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from peers.npm import npm_ci

PEER_DIR = Path(__file__).resolve().parent / "ocpp_rpc"
SCRIPT = PEER_DIR / "charger.mjs"
EXIT_OK = 0
EXIT_CONNECT_FAILED = 3  # output still has {"connected": false, "connect_error": {...}}

_installed_node: str | None = None


class OcppRpcPeerError(RuntimeError):
    """The peer could not be installed or run, or gave no usable output."""


def ensure_ocpp_rpc_installed() -> str:
    """Install the locked npm dependencies once; return the path of `node`."""
    global _installed_node
    if not _installed_node:
        _installed_node = npm_ci(PEER_DIR, "ocpp-rpc", OcppRpcPeerError, "the ocpp-rpc test peer")
    return _installed_node


def _command(
    node: str,
    url: str,
    charger_id: str,
    password: str | None,
    protocol: str,
    call_timeout_s: float | None,
    ping_interval_s: float | None,
) -> list[str]:
    if not protocol.startswith("ocpp"):
        protocol = "ocpp" + protocol  # "1.6" -> "ocpp1.6"
    cmd = [node, str(SCRIPT), "--url", url, "--id", charger_id, "--protocol", protocol]
    if password is not None:
        cmd += ["--password", password]
    if call_timeout_s is not None:
        cmd += ["--call-timeout-s", str(call_timeout_s)]
    if ping_interval_s is not None:
        cmd += ["--ping-interval-s", str(ping_interval_s)]
    return cmd


def _parse(returncode: int | None, stdout: bytes, stderr: bytes) -> dict[str, Any]:
    if returncode in (EXIT_OK, EXIT_CONNECT_FAILED):
        try:
            output: dict[str, Any] = json.loads(stdout)
        except ValueError:
            pass
        else:
            return output
    raise OcppRpcPeerError(
        f"ocpp-rpc charger exited {returncode}: {stderr.decode(errors='replace').strip()}\n"
        f"stdout: {stdout.decode(errors='replace')[:2000]}"
    )


async def run_ocpp_rpc_charger(
    url: str,
    charger_id: str,
    password: str | None,
    protocol: str,
    steps: list[dict[str, Any]],
    timeout: float = 30,
    *,
    call_timeout_s: float | None = None,
    ping_interval_s: float | None = None,
) -> dict[str, Any]:
    """Run one scenario; return the peer's output document.

    `url` is the OCPP endpoint without the charger id (ws://127.0.0.1:PORT/ocpp).
    A refused handshake is not an exception: the result has "connected": False and
    "connect_error": {"http_status": 401, "message": ...}.
    """
    node = await asyncio.to_thread(ensure_ocpp_rpc_installed)
    cmd = _command(node, url, charger_id, password, protocol, call_timeout_s, ping_interval_s)
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            proc.communicate(json.dumps(steps).encode()), timeout
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise OcppRpcPeerError(f"ocpp-rpc charger did not finish within {timeout} s") from None
    return _parse(proc.returncode, stdout, stderr)


def run_ocpp_rpc_charger_sync(
    url: str,
    charger_id: str,
    password: str | None,
    protocol: str,
    steps: list[dict[str, Any]],
    timeout: float = 30,
    *,
    call_timeout_s: float | None = None,
    ping_interval_s: float | None = None,
) -> dict[str, Any]:
    """Blocking variant of run_ocpp_rpc_charger (server must run in another thread/process)."""
    node = ensure_ocpp_rpc_installed()
    cmd = _command(node, url, charger_id, password, protocol, call_timeout_s, ping_interval_s)
    try:
        proc = subprocess.run(
            cmd, input=json.dumps(steps).encode(), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise OcppRpcPeerError(f"ocpp-rpc charger did not finish within {timeout} s") from None
    return _parse(proc.returncode, proc.stdout, proc.stderr)
