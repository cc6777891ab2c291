"""OCPP-J framing: decode a text frame into a CALL, CALLRESULT or CALLERROR.

Errors here carry the CALLERROR code that OCPP-J prescribes (1.6 §4.2.3,
2.0.1 part 4 §4.3); the codes differ slightly between versions, so each
version has its own table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import msgspec

CALL, CALLRESULT, CALLERROR = 2, 3, 4

# OCPP-J: "messageId: string, maximum of 36 characters".
MAX_MESSAGE_ID = 36
# A too-long id is still echoed in the CALLERROR so the charger can match it,
# up to this length; anything longer is answered with the id "-1".
MAX_ECHOED_ID = 128
# The OCPP schemas nest at most 14 levels, frame included (2.0.1
# ReportChargingProfiles); vendors' customData adds a few. Far below Python's
# recursion limit, so nothing that walks a payload (the decoder, the schema
# checks, a handler) can overflow on what gets through.
MAX_DEPTH = 64

# Logical error kinds -> the code each version spells.
_CODES = {
    "1.6": {
        "format": "FormationViolation",
        "protocol": "ProtocolError",
        "not_implemented": "NotImplemented",
        "not_supported": "NotSupported",
        "type": "TypeConstraintViolation",
        "property": "PropertyConstraintViolation",
        # The OCPP-J 1.6 PDF spells it with one "r"; its errata sheet lists the
        # typo among the known issues that will not be fixed, so 1.6 keeps it.
        "occurrence": "OccurenceConstraintViolation",
        "internal": "InternalError",
        "generic": "GenericError",
        "security": "SecurityError",
        # 1.6 has no code of its own for an unknown message type (§4.1.3 only
        # says to ignore the payload); ProtocolError is the nearest.
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
    """A frame that cannot be processed; answered with a CALLERROR.

    ``reply`` is False for a broken CALLRESULT or CALLERROR: an answer is never
    answered, it is only logged (and fails the command it belongs to, if any).
    """

    def __init__(
        self, kind: str, description: str, unique_id: str = "-1", *, reply: bool = True
    ) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.unique_id = unique_id
        self.reply = reply


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


def _echo_id(value: Any) -> str:
    if isinstance(value, str) and 0 < len(value) <= MAX_ECHOED_ID:
        return value
    return "-1"


def _payload(value: Any) -> dict[str, Any] | None:
    # OCPP-J §4.2.1/§4.2.2: "null or an empty object {}" both mean no payload.
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


def _may_hold_nul(text: str | bytes) -> bool:
    # A fast scan of the raw frame spares the walk through every payload.
    if isinstance(text, bytes):
        return b"\\u0000" in text or b"\x00" in text
    return "\\u0000" in text or "\x00" in text


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}.__getitem__
# The message type and id at the head of a frame, when they are plain.
_HEAD = re.compile(rf'\s*\[\s*(\d+)\s*,\s*(?:"([^"\\]{{1,{MAX_ECHOED_ID}}})")?')


def _too_deep(text: str | bytes) -> bool:
    # Nesting never exceeds the number of opening brackets: two C-speed counts
    # clear every ordinary frame.
    if isinstance(text, str):
        if text.count("[") + text.count("{") <= MAX_DEPTH:
            return False
        data = text.encode("utf-8", "surrogatepass")
    else:
        if text.count(b"[") + text.count(b"{") <= MAX_DEPTH:
            return False
        data = text
    return _nests_too_deep(data)


def _nests_too_deep(data: bytes) -> bool:
    """Whether the decoder could nest deeper than MAX_DEPTH reading ``data``."""
    if b"\\" in data:
        # Pairs of backslashes first: what is left before a quote escapes it.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Brackets inside strings do not nest; an unterminated string runs to the end.
    brackets = b"".join(data.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    # Peeling the innermost pairs takes off one or two levels at a time: quick
    # for a wide frame, and one that empties in MAX_DEPTH / 2 rounds is no
    # deeper than MAX_DEPTH. Anything else (a deep chain, mismatched brackets)
    # is counted bracket by bracket.
    peeled = brackets
    for _ in range(MAX_DEPTH // 2):
        shorter = peeled.replace(b"[]", b"").replace(b"{}", b"")
        if not shorter:
            return False
        if 2 * len(shorter) > len(peeled):
            break
        peeled = shorter
    return max(accumulate(map(_STEP, brackets)), default=0) > MAX_DEPTH


def _nested_too_deep(text: str | bytes) -> FrameError:
    head = text[:256] if isinstance(text, str) else text[:256].decode("utf-8", "replace")
    match = _HEAD.match(head)
    message_type, unique_id = match.groups() if match else (None, None)
    return FrameError(
        "format",
        f"Frame is nested deeper than {MAX_DEPTH} levels",
        unique_id or "-1",
        # An answer is never answered, however broken.
        reply=message_type not in (str(CALLRESULT), str(CALLERROR)),
    )


def parse_frame(text: str | bytes) -> Frame:
    """Decode one OCPP-J frame. Raises FrameError with the CALLERROR kind to answer."""
    if _too_deep(text):
        raise _nested_too_deep(text)
    try:
        frame = _decode(text)
    except msgspec.DecodeError:
        raise FrameError("format", "Frame is not a JSON array") from None
    if not frame or not isinstance(frame[0], int) or isinstance(frame[0], bool):
        raise FrameError("format", "First element must be the message type id")
    message_type = frame[0]
    unique_id = _echo_id(frame[1]) if len(frame) > 1 else "-1"
    if message_type == CALL:
        if len(frame) != 4:
            raise FrameError("format", "CALL must have 4 elements", unique_id)
        if not isinstance(frame[1], str) or not 0 < len(frame[1]) <= MAX_MESSAGE_ID:
            raise FrameError("format", "Message id must be a string of 1 to 36 chars", unique_id)
        if not isinstance(frame[2], str):
            raise FrameError("format", "Action must be a string", unique_id)
        payload = _payload(frame[3])
        if payload is None:
            raise FrameError("format", "Payload must be a JSON object", unique_id)
        if _may_hold_nul(text) and _holds_nul(payload):
            # Valid JSON, but no OCPP string holds NUL, and PostgreSQL text cannot.
            raise FrameError("property", "Strings must not contain NUL characters", unique_id)
        return Call(frame[1], frame[2], payload)
    if message_type == CALLRESULT:
        payload = _payload(frame[2]) if len(frame) == 3 else None
        if payload is None or not isinstance(frame[1], str):
            raise FrameError(
                "format", "CALLRESULT must be [3, id, {payload}]", unique_id, reply=False
            )
        return CallResult(frame[1], payload)
    if message_type == CALLERROR:
        if len(frame) not in (4, 5) or not isinstance(frame[1], str):
            raise FrameError("format", "CALLERROR must have 5 elements", unique_id, reply=False)
        details = frame[4] if len(frame) == 5 and isinstance(frame[4], dict) else {}
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
