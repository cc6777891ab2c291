"""OCPP-J framing: decode a text frame into a CALL, CALLRESULT or CALLERROR.

Errors here carry the CALLERROR code that OCPP-J prescribes (1.6 §4.2.3,
2.0.1 part 4 §4.3); the codes differ slightly between versions, so each
version has its own table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

CALL, CALLRESULT, CALLERROR = 2, 3, 4

# Logical error kinds -> the code each version spells.
_CODES = {
    "1.6": {
        "format": "FormationViolation",
        "protocol": "ProtocolError",
        "not_implemented": "NotImplemented",
        "not_supported": "NotSupported",
        "type": "TypeConstraintViolation",
        "property": "PropertyConstraintViolation",
        "occurrence": "OccurenceConstraintViolation",  # sic, as in OCPP-J 1.6
        "internal": "InternalError",
        "generic": "GenericError",
        "security": "SecurityError",
        "message_type": "ProtocolError",
    },
    "2.0.1": {
        "format": "FormatViolation",
        "protocol": "ProtocolError",
        "not_implemented": "NotImplemented",
        "not_supported": "NotSupported",
        "type": "TypeConstraintViolation",
        "property": "PropertyConstraintViolation",
        "occurrence": "OccurrenceConstraintViolation",
        "internal": "InternalError",
        "generic": "GenericError",
        "security": "SecurityError",
        "message_type": "MessageTypeNotSupported",
    },
}


def error_code(version: str, kind: str) -> str:
    return _CODES[version][kind]


class FrameError(Exception):
    """A frame that cannot be processed; answered with a CALLERROR."""

    def __init__(self, kind: str, description: str, unique_id: str = "-1") -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.unique_id = unique_id


@dataclass(slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any]


Frame = Call | CallResult | CallError

_decode = msgspec.json.Decoder(list[Any]).decode
_encode = msgspec.json.Encoder().encode


def parse_frame(text: str | bytes) -> Frame:
    """Decode one OCPP-J frame. Raises FrameError with the CALLERROR kind to answer."""
    try:
        frame = _decode(text)
    except msgspec.DecodeError:
        raise FrameError("format", "Frame is not a JSON array") from None
    if not frame or not isinstance(frame[0], int) or isinstance(frame[0], bool):
        raise FrameError("format", "First element must be the message type id")
    message_type = frame[0]
    unique_id = frame[1] if len(frame) > 1 and isinstance(frame[1], str) else "-1"
    if message_type == CALL:
        if len(frame) != 4:
            raise FrameError("format", "CALL must have 4 elements", unique_id)
        if not isinstance(frame[1], str) or not 0 < len(frame[1]) <= 36:
            raise FrameError("format", "Message id must be a string of at most 36 chars")
        if not isinstance(frame[2], str):
            raise FrameError("format", "Action must be a string", unique_id)
        if not isinstance(frame[3], dict):
            raise FrameError("format", "Payload must be a JSON object", unique_id)
        return Call(frame[1], frame[2], frame[3])
    if message_type == CALLRESULT:
        if len(frame) != 3 or not isinstance(frame[1], str) or not isinstance(frame[2], dict):
            raise FrameError("format", "CALLRESULT must be [3, id, {payload}]", unique_id)
        return CallResult(frame[1], frame[2])
    if message_type == CALLERROR:
        if len(frame) != 5 or not isinstance(frame[1], str):
            raise FrameError("format", "CALLERROR must have 5 elements", unique_id)
        details = frame[4] if isinstance(frame[4], dict) else {}
        return CallError(frame[1], str(frame[2]), str(frame[3]), details)
    raise FrameError("message_type", f"Unknown message type id {message_type}", unique_id)


def call_frame(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return _encode([CALL, unique_id, action, payload]).decode()


def result_frame(unique_id: str, payload: dict[str, Any]) -> str:
    return _encode([CALLRESULT, unique_id, payload]).decode()


def error_frame(
    unique_id: str, code: str, description: str, details: dict[str, Any] | None = None
) -> str:
    return _encode([CALLERROR, unique_id, code, description[:255], details or {}]).decode()
