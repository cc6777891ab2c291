"""JSON-schema validation of OCPP payloads, compiled once per action.

The ``ocpp`` package ships the official schemas; its own routing validates
with ``jsonschema`` at about a millisecond per message. Here each schema is
compiled to Python code by ``fastjsonschema`` the first time it is needed,
which checks exactly the same rules at a small fraction of the cost, and to
msgspec types (``fastcheck``), which accept the valid payloads faster still;
only a payload msgspec refuses meets the compiled schema, which names the rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from plugpay.ocpp.fastcheck import compile_schema
from plugpay.ocpp.framing import FrameError

_PACKAGES = {"1.6": "ocpp.v16", "2.0.1": "ocpp.v201"}

# fastjsonschema's failing rule -> OCPP-J error kind.
_RULE_KIND = {
    "type": "type",
    "required": "occurrence",
    "minItems": "occurrence",
    "maxItems": "occurrence",
    "additionalProperties": "format",
    "enum": "property",
    "maxLength": "property",
    "minLength": "property",
    "minimum": "property",
    "maximum": "property",
    "multipleOf": "property",
    "format": "property",
    "pattern": "property",
}

# Date-times as OCPP sends them (RFC 3339 with optional fraction and zone)...
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def _is_date_time(value: str) -> bool:
    # ... that are also real instants: "2024-13-45T99:00:00Z" is refused here,
    # so no handler ever meets a timestamp it cannot parse.
    if not _DATE_TIME.match(value):
        return False
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@cache
def actions(version: str) -> frozenset[str]:
    """The CALL actions OCPP ``version`` defines (from its request schemas)."""
    names = {
        entry.name[: -len(".json")]
        for entry in (resources.files(_PACKAGES[version]) / "schemas").iterdir()
        if entry.name.endswith(".json")
    }
    if version == "1.6":
        return frozenset(n for n in names if not n.endswith("Response"))
    return frozenset(n[: -len("Request")] for n in names if n.endswith("Request"))


def _load(version: str, name: str) -> dict[str, Any]:
    text = (resources.files(_PACKAGES[version]) / "schemas" / f"{name}.json").read_text(
        encoding="utf-8"
    )
    schema: dict[str, Any] = json.loads(text)
    # Drop the $id key fastjsonschema would try to resolve.
    schema.pop("$id", None)
    return schema


@cache
def _fast(version: str, name: str) -> Callable[[Any], bool] | None:
    return compile_schema(_load(version, name))


@cache
def _validator(version: str, name: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(
        _load(version, name), formats={"date-time": _is_date_time}, use_default=False
    )


def schema_name(version: str, action: str, *, response: bool) -> str:
    if response:
        return f"{action}Response"
    return action if version == "1.6" else f"{action}Request"


def known_action(version: str, action: str) -> bool:
    return action in actions(version)


def validator(version: str, action: str, *, response: bool = False) -> Callable[[Any], Any]:
    """The compiled validator of ``action``'s request (or response); the action must be known."""
    if action not in actions(version):
        raise KeyError(action)  # never build a file name from an unknown string
    return _validator(version, schema_name(version, action, response=response))


def validate(
    version: str, action: str, payload: dict[str, Any], unique_id: str, *, response: bool = False
) -> None:
    """Raise FrameError with the OCPP-J kind when ``payload`` breaks the schema."""
    if action not in actions(version):
        raise FrameError("not_implemented", f"Unknown action {action[:64]}", unique_id)
    name = schema_name(version, action, response=response)
    fast = _fast(version, name)
    if fast is not None and fast(payload):
        return
    try:
        _validator(version, name)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        kind = _RULE_KIND.get(str(exc.rule), "format")
        raise FrameError(kind, str(exc.message), unique_id) from None
