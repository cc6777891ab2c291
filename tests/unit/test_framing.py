"""OCPP-J frames: what is a CALL, a CALLRESULT, a CALLERROR, and what is refused."""

from __future__ import annotations

import pytest

from plugpay.ocpp import schemas
from plugpay.ocpp.framing import Call, CallError, CallResult, FrameError, error_code, parse_frame


def test_the_three_message_types_are_read() -> None:
    assert parse_frame('[2, "a", "Heartbeat", {}]') == Call("a", "Heartbeat", {})
    assert parse_frame(b'[3, "a", {"x": 1}]') == CallResult("a", {"x": 1})
    assert parse_frame('[4, "a", "NotSupported", "no", {"k": 1}]') == CallError(
        "a", "NotSupported", "no", {"k": 1}
    )


def test_null_payloads_are_empty() -> None:
    assert parse_frame('[2, "a", "Heartbeat", null]') == Call("a", "Heartbeat", {})
    assert parse_frame('[3, "a", null]') == CallResult("a", {})


@pytest.mark.parametrize(
    ("text", "kind", "unique_id", "reply"),
    [
        ("nope", "format", "-1", True),
        ('[2, "a", "Heartbeat"]', "format", "a", True),
        (f'[2, "{"x" * 37}", "Heartbeat", {{}}]', "format", "x" * 37, True),
        (f'[2, "{"x" * 500}", "Heartbeat", {{}}]', "format", "-1", True),
        ('[2, "a", "Heartbeat", {"s": "\\u0000"}]', "property", "a", True),
        ('[9, "a"]', "message_type", "a", True),
        ('[3, "a"]', "format", "a", False),
        ('[4, "a", "X"]', "format", "a", False),
    ],
)
def test_broken_frames_say_which_error_to_answer(
    text: str, kind: str, unique_id: str, reply: bool
) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(text)
    assert (caught.value.kind, caught.value.unique_id, caught.value.reply) == (
        kind,
        unique_id,
        reply,
    )


def test_each_version_spells_its_own_codes() -> None:
    assert error_code("1.6", "format") == "FormationViolation"
    assert error_code("2.0.1", "format") == "FormatViolation"
    assert error_code("1.6", "occurrence") == "OccurenceConstraintViolation"
    assert error_code("2.0.1", "occurrence") == "OccurrenceConstraintViolation"
    assert error_code("1.6", "message_type") == "ProtocolError"
    assert error_code("2.0.1", "message_type") == "MessageTypeNotSupported"


def test_actions_are_the_requests_each_version_defines() -> None:
    assert {"BootNotification", "StartTransaction", "RemoteStartTransaction"} <= schemas.actions(
        "1.6"
    )
    assert "BootNotificationResponse" not in schemas.actions("1.6")
    assert {"TransactionEvent", "RequestStartTransaction"} <= schemas.actions("2.0.1")
    assert "StartTransaction" not in schemas.actions("2.0.1")


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"connectorId": "1", "errorCode": "NoError", "status": "Available"}, "type"),
        ({"connectorId": 1, "errorCode": "NoError"}, "occurrence"),
        ({"connectorId": 1, "errorCode": "NoError", "status": "Gone"}, "property"),
        ({"connectorId": 1, "errorCode": "NoError", "status": "Available", "x": 1}, "format"),
        (
            {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "now"},
            "property",
        ),
    ],
)
def test_schema_breaks_map_to_ocpp_error_kinds(payload: dict[str, object], kind: str) -> None:
    with pytest.raises(FrameError) as caught:
        schemas.validate("1.6", "StatusNotification", payload, "id")
    assert caught.value.kind == kind
