"""Prometheus metrics of the charger gateway."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTED = Gauge("plugpay_chargers_connected", "Chargers with a live OCPP connection here")
MESSAGES = Counter(
    "plugpay_ocpp_messages_total",
    "OCPP CALLs received from chargers",
    ["version", "action", "outcome"],
)
CALL_ERRORS = Counter(
    "plugpay_ocpp_callerrors_total",
    "CALLERRORs sent to or received from chargers",
    ["direction", "code"],
)
HANDLER_SECONDS = Histogram(
    "plugpay_ocpp_handler_seconds",
    "Time to handle one OCPP CALL from a charger, persistence included",
    ["action"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
HANDSHAKES = Counter("plugpay_ocpp_handshakes_total", "OCPP WebSocket upgrades", ["outcome"])

# Error codes as labels: a charger can send any string, Prometheus must not
# grow a series per string.
_KNOWN_CODES = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "FormatViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
        "MessageTypeNotSupported",
        "RpcFrameworkError",
    }
)


def metric_code(code: str) -> str:
    return code if code in _KNOWN_CODES else "other"
