"""Garbage from a charger gets the CALLERROR OCPP-J prescribes; the connection stays up
and nothing is stored (only the message log keeps the frame for operators)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import PASSWORD
from support.ocpp_client import OcppClient, counts
from support.server import RunningServer

VERSIONS = ["1.6", "2.0.1"]

# The error code each version spells for each kind of fault.
CODES = {
    "1.6": {
        "format": "FormationViolation",
        "message_type": "ProtocolError",
        "occurrence": "OccurenceConstraintViolation",  # sic: OCPP-J 1.6 table 7 / errata
    },
    "2.0.1": {
        "format": "FormatViolation",
        "message_type": "MessageTypeNotSupported",
        "occurrence": "OccurrenceConstraintViolation",
    },
}

NOW = "2025-03-01T10:00:00Z"


@pytest.fixture(params=VERSIONS)
async def client(
    request: pytest.FixtureRequest, server: RunningServer, charger_id: str
) -> AsyncIterator[OcppClient]:
    conn = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, request.param)
    yield conn
    await conn.close()


async def expect_error(client: OcppClient, code: str, unique_id: str | None = None) -> list[Any]:
    frame = await client.next_answer()
    assert frame[0] == 4, frame
    assert frame[2] == code, frame
    assert isinstance(frame[3], str) and isinstance(frame[4], dict)
    if unique_id is not None:
        assert frame[1] == unique_id
    return frame


async def still_serves_and_stored_nothing(
    server: RunningServer, client: OcppClient, before: dict[str, int]
) -> None:
    assert await counts(server.runtime) == before
    assert await client.heartbeat_works()


NOT_OCPP = [
    "this is not json [",
    "{}",
    "[]",
    '["2", "a1", "Heartbeat", {}]',
    '[2, "a1", "Heartbeat"]',
    '[2, 17, "Heartbeat", {}]',
    '[2, "a1", 5, {}]',
    '[2, "a1", "Heartbeat", [1]]',
    '[2, "a1", "Heartbeat", "x"]',
    '[2.0, "a1", "Heartbeat", {}]',
    '[true, "a1", "Heartbeat", {}]',
    b"\xff\xfe\x00garbage",
]


async def test_frames_that_are_not_ocpp_messages_are_format_violations(
    server: RunningServer, client: OcppClient
) -> None:
    before = await counts(server.runtime)
    for text in NOT_OCPP:
        await client.send_raw(text)
        await expect_error(client, CODES[client.version]["format"])
    long_id = "x" * 37  # OCPP-J: at most 36 characters; echoed so the charger can match
    await client.send_raw(json.dumps([2, long_id, "Heartbeat", {}]))
    await expect_error(client, CODES[client.version]["format"], long_id)
    await client.send_raw(json.dumps([2, "y" * 5000, "Heartbeat", {}]))
    await expect_error(client, CODES[client.version]["format"], "-1")
    await still_serves_and_stored_nothing(server, client, before)


async def test_unknown_message_types_are_refused_and_stray_answers_ignored(
    server: RunningServer, client: OcppClient
) -> None:
    before = await counts(server.runtime)
    await client.send_raw(json.dumps([5, "t-1", "Heartbeat", {}]))
    await expect_error(client, CODES[client.version]["message_type"], "t-1")
    # Answers to calls never made, well-formed or not, are not answered.
    await client.send_raw(json.dumps([3, "never-sent", {"status": "Accepted"}]))
    await client.send_raw(json.dumps([4, "never-sent", "GenericError", "", {}]))
    await client.send_raw(json.dumps([3, "never-sent"]))
    await client.send_raw(json.dumps([3, "z" * 5000, {}]))
    await client.no_answer()
    await still_serves_and_stored_nothing(server, client, before)


async def test_unknown_actions_are_not_implemented_and_foreign_ones_not_supported(
    server: RunningServer, client: OcppClient
) -> None:
    before = await counts(server.runtime)
    for action in ("MakeCoffee", "../../v16/schemas/Heartbeat", "HeartbeatResponse", "a" * 300, ""):
        frame = await client.call_frame(action, {"sugar": 2})
        assert frame[2] == "NotImplemented", (action, frame)
    # A message only a central system sends, sent by the charger: known, but not
    # ours to handle, whatever its payload.
    action = "RemoteStartTransaction" if client.version == "1.6" else "RequestStartTransaction"
    frame = await client.call_frame(action, {"nonsense": True})
    assert frame[2] == "NotSupported"
    await still_serves_and_stored_nothing(server, client, before)


def schema_cases(version: str) -> list[tuple[str, dict[str, Any], str]]:
    if version == "1.6":
        return [
            (
                "StatusNotification",
                {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
                "TypeConstraintViolation",
            ),
            (
                "StartTransaction",
                {"connectorId": 1, "idTag": "T", "meterStart": "12", "timestamp": NOW},
                "TypeConstraintViolation",
            ),
            ("BootNotification", {"chargePointVendor": "V"}, CODES[version]["occurrence"]),
            ("MeterValues", {"connectorId": 1, "meterValue": []}, CODES[version]["occurrence"]),
            (
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Flying"},
                "PropertyConstraintViolation",
            ),
            ("Authorize", {"idTag": "x" * 21}, "PropertyConstraintViolation"),
            (
                "StopTransaction",
                {"transactionId": 1, "meterStop": 5, "timestamp": "yesterday"},
                "PropertyConstraintViolation",
            ),
            ("Heartbeat", {"extra": 1}, CODES[version]["format"]),
        ]
    return [
        (
            "StatusNotification",
            {"timestamp": NOW, "connectorStatus": "Available", "evseId": "1", "connectorId": 1},
            "TypeConstraintViolation",
        ),
        (
            "BootNotification",
            {"chargingStation": {"model": "M", "vendorName": "V"}},
            CODES[version]["occurrence"],
        ),
        (
            "TransactionEvent",
            {"eventType": "Started", "timestamp": NOW, "triggerReason": "Authorized", "seqNo": 0},
            CODES[version]["occurrence"],
        ),
        (
            "StatusNotification",
            {"timestamp": NOW, "connectorStatus": "Flying", "evseId": 1, "connectorId": 1},
            "PropertyConstraintViolation",
        ),
        (
            "Authorize",
            {"idToken": {"idToken": "x" * 37, "type": "ISO14443"}},
            "PropertyConstraintViolation",
        ),
        ("Heartbeat", {"extra": 1}, CODES[version]["format"]),
    ]


def out_of_range_cases(version: str) -> list[tuple[str, dict[str, Any]]]:
    if version == "1.6":
        return [
            (
                "StatusNotification",
                {"connectorId": 2**40, "errorCode": "NoError", "status": "Available"},
            ),
            (
                "StartTransaction",
                {"connectorId": 0, "idTag": "T", "meterStart": 1, "timestamp": NOW},
            ),
            (
                "StartTransaction",
                {"connectorId": 1, "idTag": "T", "meterStart": -1, "timestamp": NOW},
            ),
            (
                "StartTransaction",
                {"connectorId": 1, "idTag": "T\u0000", "meterStart": 1, "timestamp": NOW},
            ),
            ("StopTransaction", {"transactionId": 1, "meterStop": 10**20, "timestamp": NOW}),
            (
                "MeterValues",
                {
                    "connectorId": -1,
                    "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "1"}]}],
                },
            ),
            (
                "StatusNotification",
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Available",
                    "timestamp": "2025-13-45T10:00:00Z",
                },
            ),
        ]
    tx = {"transactionId": "t-1"}
    return [
        (
            "StatusNotification",
            {"timestamp": NOW, "connectorStatus": "Available", "evseId": 2**40, "connectorId": 1},
        ),
        (
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": NOW,
                "triggerReason": "Authorized",
                "seqNo": -1,
                "transactionInfo": tx,
            },
        ),
        (
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": NOW,
                "triggerReason": "Authorized",
                "seqNo": 2**33,
                "transactionInfo": tx,
            },
        ),
        (
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": NOW,
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": "t\u0000"},
            },
        ),
        (
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": "2025-02-30T10:00:00Z",
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": tx,
            },
        ),
    ]


async def test_payloads_that_break_the_schema_or_reality_get_the_matching_error(
    server: RunningServer, client: OcppClient
) -> None:
    before = await counts(server.runtime)
    for action, payload, code in schema_cases(client.version):
        frame = await client.call_frame(action, payload)
        assert frame[0] == 4 and frame[2] == code, (action, payload, frame)
    # Schema-valid, but no charger could mean it: out of range, NUL, 30 February.
    for action, payload in out_of_range_cases(client.version):
        frame = await client.call_frame(action, payload)
        assert frame[0] == 4 and frame[2] == "PropertyConstraintViolation", (action, frame)
    await still_serves_and_stored_nothing(server, client, before)


async def test_null_payloads_and_binary_frames_are_accepted_and_everything_is_logged(
    server: RunningServer, client: OcppClient, charger_id: str
) -> None:
    # OCPP-J §4.2.1: "null or an empty object {}" both mean no payload.
    frame = await client.call_frame("Heartbeat", None)
    assert frame[0] == 3 and "currentTime" in frame[2]
    # Some chargers send binary frames: read as UTF-8 text.
    await client.send_raw(json.dumps([2, "bin-1", "Heartbeat", {}]).encode())
    frame = await client.next_answer()
    assert frame[0] == 3 and frame[1] == "bin-1"
    # Garbage is kept in the message log for operators, cut to fit.
    await client.send_raw("not json")
    await client.next_answer()
    await client.call_frame("X" * 200, {})
    log = await server.runtime.message_log.recent(charger_id, 10)
    assert "not json" in [m.frame for m in log if m.direction == "in"]
    assert [m.message_type for m in log if m.direction == "out"] == [3, 3, 4, 4]


async def test_a_charger_that_does_not_wait_for_answers_gets_each_one_in_order(
    server: RunningServer, client: OcppClient
) -> None:
    """OCPP-J allows one CALL in flight; a charger that sends 200 at once is read
    no faster than it is served (its socket pauses while its CALLs queue), and
    every CALL still gets its own answer, in the order sent."""
    ids = [f"burst-{n}" for n in range(200)]
    for unique_id in ids:
        await client.send_raw(json.dumps([2, unique_id, "Heartbeat", {}]))
    answers = [await client.next_answer(timeout=10) for _ in ids]
    assert [a[1] for a in answers] == ids
    assert all(a[0] == 3 and "currentTime" in a[2] for a in answers)
    assert await client.heartbeat_works()
