"""JSON-schema validation of OCPP payloads, compiled once per action.

The ``ocpp`` package ships the official schemas; its own routing validates
with ``jsonschema`` at about a millisecond per message. Here each schema is
compiled to Python code by ``fastjsonschema`` the first time it is needed,
which checks exactly the same rules at a small fraction of the cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

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

# Date-times as OCPP sends them (RFC 3339 with optional fraction and zone).
_DATE_TIME = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"


def _load(version: str, name: str) -> dict[str, Any] | None:
    package = resources.files(_PACKAGES[version]) / "schemas" / f"{name}.json"
    try:
        text = package.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    schema: dict[str, Any] = json.loads(text)
    # The 1.6 schemas put additionalProperties on string enums, where it means
    # nothing; drop the $schema/$id keys fastjsonschema would try to resolve.
    schema.pop("$id", None)
    return schema


@cache
def validator(version: str, name: str) -> Callable[[Any], Any] | None:
    """The compiled validator for ``name`` (e.g. ``MeterValues`` or ``MeterValuesResponse``)."""
    schema = _load(version, name)
    if schema is None:
        return None
    return fastjsonschema.compile(schema, formats={"date-time": _DATE_TIME}, use_default=False)


def schema_name(version: str, action: str, *, response: bool) -> str:
    if response:
        return f"{action}Response"
    return action if version == "1.6" else f"{action}Request"


def known_action(version: str, action: str) -> bool:
    return validator(version, schema_name(version, action, response=False)) is not None


def validate(
    version: str, action: str, payload: dict[str, Any], unique_id: str, *, response: bool = False
) -> None:
    """Raise FrameError with the OCPP-J kind when ``payload`` breaks the schema."""
    check = validator(version, schema_name(version, action, response=response))
    if check is None:
        raise FrameError("not_implemented", f"Unknown action {action}", unique_id)
    try:
        check(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        kind = _RULE_KIND.get(str(exc.rule), "format")
        raise FrameError(kind, str(exc.message), unique_id) from None
