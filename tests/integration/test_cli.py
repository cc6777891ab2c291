"""The `plugpay` command as an operator runs it: real processes, a real SQLite file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "examples"
PLUGPAY = [sys.executable, "-m", "plugpay.cli"]


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "PLUGPAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "PLUGPAY_SECRET_FILE": str(tmp_path / "secret"),
    }

    def plugpay(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PLUGPAY, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    return plugpay


def test_charger_add_and_list(run) -> None:  # type: ignore[no-untyped-def]
    added = run(
        "charger",
        "add",
        "CP-7",
        "--password",
        "a-long-charger-password",
        "--connectors",
        "2",
        "--site",
        "Depot",
    )
    assert added.returncode == 0, added.stderr
    listed = run("charger", "list")
    assert listed.returncode == 0
    assert (
        "CP-7" in listed.stdout
        and "offline" in listed.stdout
        and "1:Unknown, 2:Unknown" in listed.stdout
    )
    again = run("charger", "add", "CP-7", "--password", "a-long-charger-password")
    assert (
        again.returncode == 2 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("charger", "add", "CP 1", "--password", "a-long-charger-password"), "charger id"),
        (("charger", "add", "CP-1", "--password", "short"), "password"),
        (
            (
                "charger",
                "add",
                "CP-1",
                "--password",
                "a-long-charger-password",
                "--connectors",
                "0",
            ),
            "connectors",
        ),
        (
            ("charger", "add", "CP-1", "--password", "a-long-charger-password", "--tariff", "NOPE"),
            "no tariff",
        ),
        (("tariff", "quote", "NOPE", "--kwh", "1", "--minutes", "1"), "no tariff"),
        (("tariff", "import", "/does/not/exist.json"), "cannot read"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(run, args: tuple[str, ...], reason: str) -> None:  # type: ignore[no-untyped-def]
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("plugpay: ") and result.stderr.count("\n") == 1
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def test_tariff_import_refuses_a_bad_tariff_and_stores_nothing(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "id": "X",
                "currency": "EUR",
                "elements": [
                    {"price_components": [{"type": "ENERGY", "price": -1, "step_size": 1}]}
                ],
            }
        )
    )
    result = run("tariff", "import", str(bad))
    assert result.returncode == 2 and "price" in result.stderr
    assert "no tariffs" in run("tariff", "list").stdout


def test_tariff_import_quote_and_new_versions(run) -> None:  # type: ignore[no-untyped-def]
    imported = run("tariff", "import", str(EXAMPLES / "time-of-use-idle-fee.json"))
    assert imported.returncode == 0 and imported.stdout.strip() == "TOU-IDLE"
    quoted = run(
        "tariff",
        "quote",
        "TOU-IDLE",
        "--kwh",
        "20",
        "--minutes",
        "40",
        "--parking-minutes",
        "30",
        "--start",
        "2026-11-23T18:30",
        "--time-zone",
        "Europe/Berlin",
        "--json",
    )
    assert quoted.returncode == 0, quoted.stderr
    document = json.loads(quoted.stdout)
    assert document["currency"] == "EUR"
    assert document["total_incl_vat"] == "16.07"
    assert {line["dimension"] for line in document["lines"]} == {"ENERGY", "PARKING_TIME", "FLAT"}
    # Importing again makes a new version; the old one stays for running sessions.
    run("tariff", "import", str(EXAMPLES / "time-of-use-idle-fee.json"))
    assert "TOU-IDLE\tv2" in run("tariff", "list").stdout
    table = run("tariff", "quote", "TOU-IDLE", "--kwh", "20", "--minutes", "40")
    assert table.returncode == 0 and "TOTAL" in table.stdout


def test_a_restarted_single_server_does_not_report_chargers_left_connected_by_a_crash(
    run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    assert run("charger", "add", "CP-9", "--password", "a-long-charger-password").returncode == 0
    with sqlite3.connect(tmp_path / "cli.db") as db:  # what a crash leaves behind
        db.execute("UPDATE chargers SET connected = 1")
    code = (
        "import asyncio\n"
        "from plugpay.runtime import build_runtime\n"
        "from plugpay.config import load_settings\n"
        "async def main():\n"
        "    runtime = build_runtime(load_settings())\n"
        "    await runtime.start()\n"
        "    await runtime.close()\n"
        "asyncio.run(main())\n"
    )
    env = {
        **os.environ,
        "PLUGPAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "PLUGPAY_SECRET_FILE": str(tmp_path / "secret"),
    }
    started = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    assert "offline" in run("charger", "list").stdout


def test_charger_log_shows_each_call_with_its_answer(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    assert run("charger", "add", "CP-5", "--password", "a-long-charger-password").returncode == 0
    assert run("charger", "log", "CP-5").stdout.strip() == "no frames logged yet"
    with sqlite3.connect(tmp_path / "cli.db") as db:  # what the gateway writes for one exchange
        db.execute(
            "INSERT INTO ocpp_messages (charger_id, direction, message_type, unique_id, action,"
            " frame, at, answer, answered_at) VALUES ('CP-5', 'in', 2, 'm1', 'Heartbeat',"
            " '[2,\"m1\",\"Heartbeat\",{}]', '2026-11-22 10:00:00.000000',"
            " '[3,\"m1\",{}]', '2026-11-22 10:00:00.004000')"
        )
    shown = run("charger", "log", "CP-5").stdout.splitlines()
    assert shown == [
        '2026-11-22 10:00:00.000  in   [2,"m1","Heartbeat",{}]',
        '2026-11-22 10:00:00.004  out  [3,"m1",{}]',
    ]
    unknown = run("charger", "log", "CP-404")
    assert unknown.returncode == 2 and "no charger 'CP-404'" in unknown.stderr


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_is_one_clear_line(run, command: str) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(command, "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line, no traceback
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    if command == "demo":
        assert "make run PORT=" in result.stderr
    assert result.stdout == ""


def test_make_run_takes_a_port() -> None:
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text(encoding="utf-8")
    dry = subprocess.run(
        ["make", "-n", "run", "PORT=8001"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "PORT ?=" in makefile
    assert "plugpay demo --host 127.0.0.1 --port 8001" in dry.stdout
