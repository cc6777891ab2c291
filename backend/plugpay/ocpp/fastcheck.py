"""A fast first check of OCPP payloads: each JSON schema turned into msgspec types.

The JSON schemas stay the authority (``schemas.py``). msgspec checks a payload
against types in C, many times faster than the compiled schema, so every
payload meets msgspec first:

- accepted by msgspec: valid. The types are never looser than the schema
  (tests hold them against each other), so nothing the schema refuses gets
  through;
- refused by msgspec: the schema checks it again and decides, naming the rule
  and so the CALLERROR code. Where msgspec is stricter than the schema (1.0 for
  an integer, a date-time msgspec cannot read) the schema may still accept it.

Only the schema keywords the OCPP schemas use are translated; a schema with
anything else gets no fast check (``compile_schema`` returns None) and is
checked by the schema alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, Union

import msgspec

# Keywords that describe and never constrain ("default" too: the schemas are
# compiled with use_default=False, and nothing fills in defaults).
_NOTES = frozenset(
    {"$schema", "$id", "id", "title", "description", "comment", "javaType", "default"}
)


class Unsupported(Exception):
    """The schema uses something this translation does not cover."""


def _keys(node: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(node) - _NOTES - allowed
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))


def _meta(**bounds: Any) -> msgspec.Meta | None:
    given = {k: v for k, v in bounds.items() if v is not None}
    return msgspec.Meta(**given) if given else None


def _bounded(base: Any, meta: msgspec.Meta | None) -> Any:
    return Annotated[base, meta] if meta is not None else base


class _Translator:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.definitions: dict[str, Any] = schema.get("definitions", {})
        self.built: dict[str, Any] = {}
        self.count = 0

    def type_of(self, node: dict[str, Any]) -> Any:
        if "$ref" in node:
            _keys(node, {"$ref"})
            return self.reference(node["$ref"])
        kind = node.get("type")
        if kind == "object":
            return self.object(node)
        if kind == "array":
            # additionalItems only constrains an "items" list (tuples); with one
            # schema for every item it has no effect.
            _keys(node, {"type", "items", "minItems", "maxItems", "additionalItems"})
            if not isinstance(node.get("items"), dict):
                raise Unsupported("array without one schema for its items")
            meta = _meta(min_length=node.get("minItems"), max_length=node.get("maxItems"))
            return _bounded(list[self.type_of(node["items"])], meta)  # type: ignore[misc]
        if kind == "string":
            return self.string(node)
        if kind == "integer":
            _keys(node, {"type", "minimum", "maximum"})
            # msgspec wants whole bounds for an int ("minimum": 0.0 occurs).
            low, high = node.get("minimum"), node.get("maximum")
            return _bounded(
                int,
                _meta(
                    ge=math.ceil(low) if low is not None else None,
                    le=math.floor(high) if high is not None else None,
                ),
            )
        if kind == "number":
            _keys(node, {"type", "minimum", "maximum"})
            return _bounded(float, _meta(ge=node.get("minimum"), le=node.get("maximum")))
        if kind == "boolean":
            _keys(node, {"type"})
            return bool
        if kind is None:
            _keys(node, set())  # no rule at all: anything goes
            return Any
        raise Unsupported(f"type {kind!r}")

    def reference(self, ref: str) -> Any:
        prefix = "#/definitions/"
        if not ref.startswith(prefix) or ref[len(prefix) :] not in self.definitions:
            raise Unsupported(f"$ref {ref}")
        name = ref[len(prefix) :]
        if name not in self.built:
            self.built[name] = None  # a reference back to itself is not supported
            self.built[name] = self.type_of(self.definitions[name])
        elif self.built[name] is None:
            raise Unsupported(f"recursive $ref {ref}")
        return self.built[name]

    def string(self, node: dict[str, Any]) -> Any:
        # The 1.6 schemas put "additionalProperties": false on enum strings; it
        # constrains objects only.
        _keys(node, {"type", "enum", "maxLength", "minLength", "format", "additionalProperties"})
        if "enum" in node:
            values = node["enum"]
            if not values or not all(isinstance(v, str) for v in values):
                raise Unsupported("enum of non-strings")
            if "maxLength" in node or "minLength" in node or "format" in node:
                raise Unsupported("enum with more rules")
            return Literal[tuple(values)]
        if "format" in node:
            if node["format"] != "date-time" or "maxLength" in node or "minLength" in node:
                raise Unsupported(f"format {node['format']!r}")
            # msgspec reads RFC 3339 and refuses impossible instants (month 13),
            # as the schema's date-time check does.
            return datetime
        return _bounded(
            str, _meta(min_length=node.get("minLength"), max_length=node.get("maxLength"))
        )

    def object(self, node: dict[str, Any]) -> Any:
        _keys(node, {"type", "properties", "required", "additionalProperties", "definitions"})
        extra = node.get("additionalProperties", True)
        if not isinstance(extra, bool):
            raise Unsupported("additionalProperties with a schema")
        properties: dict[str, Any] = node.get("properties", {})
        required = set(node.get("required", ()))
        if not required <= set(properties):
            raise Unsupported("required property without a definition")
        fields: list[Any] = []
        rename: dict[str, str] = {}
        for index, (name, child) in enumerate(properties.items()):
            attribute = f"f{index}"
            rename[attribute] = name
            kind = self.type_of(child)
            if name in required:
                fields.append((attribute, kind))
            else:
                fields.append((attribute, Union[kind, msgspec.UnsetType], msgspec.UNSET))  # noqa: UP007
        self.count += 1
        return msgspec.defstruct(
            f"Payload{self.count}",
            fields,
            kw_only=True,
            forbid_unknown_fields=not extra,
            rename=rename,
        )


def compile_schema(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    """A function telling whether a payload surely meets ``schema``; None when the
    schema uses keywords this translation does not cover."""
    try:
        root = _Translator(schema).type_of(schema)
    except Unsupported:
        return None
    convert = msgspec.convert

    def surely_valid(payload: Any) -> bool:
        try:
            convert(payload, root)
        except Exception:  # refused, or something msgspec cannot judge: the schema decides
            return False
        return True

    return surely_valid
