"""What Tool.validate holds a call's arguments to besides their JSON Schema, and what the
handler then receives.

- Text is Unicode a database can store: a lone surrogate (JSON allows the escape "\\ud800")
  or a NUL, in a key or a value, is refused as VALIDATION_ERROR naming the field, before the
  schema is checked, so that no message or audit row ever carries it.
- An integral number (2.0, or Decimal("2.0") as the HTTP API parses it) is an integer, as
  JSON Schema counts it; where the schema expects an integer the handler receives an int.
- Messages show numbers as JSON writes them (1.5), never as Python does (Decimal('1.5')).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import best_match

from core.db import printable
from core.errors import ToolError

# The digits of the longest integer the JSON parser accepts (Python's int limit); an integral
# Decimal beyond (1e999999999) is no integer, rather than a billion-digit int.
MAX_INTEGER_DIGITS = 4300
_COMBINATORS = ("allOf", "anyOf", "oneOf")


def check_arguments(validator: Any, schema: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """The arguments as the handler receives them, or ToolError VALIDATION_ERROR."""
    if not isinstance(arguments, dict):
        raise ToolError("VALIDATION_ERROR", "arguments must be a JSON object")
    bad = bad_text(arguments)
    if bad is not None:
        path, problem = bad
        raise ToolError("VALIDATION_ERROR", f"{path or 'arguments'}: {problem}"[:500], field=path or None)
    arguments = integers(schema, arguments)
    if next(validator.iter_errors(arguments), None) is None:
        return arguments
    # Once more on a copy whose Decimals print like JSON numbers, for the message.
    error = best_match(validator.iter_errors(_shown(arguments)))
    path = ".".join(str(p) for p in error.absolute_path)
    where = f"{path}: " if path else ""
    raise ToolError("VALIDATION_ERROR", f"{where}{_message(schema, error)}"[:500], field=path or None)


def _message(schema: dict[str, Any], error: Any) -> str:
    """jsonschema's message, or the "x-message" of the schema holding the keyword that failed
    (a `not` has no message people can read: e.g. arguments that exclude each other)."""
    node: Any = schema
    try:
        for step in list(error.absolute_schema_path)[:-1]:
            node = node[step]
    except (KeyError, IndexError, TypeError):
        return error.message
    return node.get("x-message", error.message) if isinstance(node, dict) else error.message


# --- integers ------------------------------------------------------------------------------


def is_integral(value: Any) -> bool:
    """A number with no fraction that is not an int already: 2.0, Decimal("2.0"), Decimal("2E+3")."""
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, Decimal):
        return value.is_finite() and value.adjusted() < MAX_INTEGER_DIGITS and value == value.to_integral_value()
    return False


def _is_integer(checker: Any, instance: Any) -> bool:
    return (isinstance(instance, int) and not isinstance(instance, bool)) or is_integral(instance)


@cache
def counting_integral_numbers(base: type) -> type:
    """The validator class `base` with 2.0 and Decimal("2.0") of type integer, as JSON Schema says."""
    return validators.extend(base, type_checker=base.TYPE_CHECKER.redefine("integer", _is_integer))


def _expects_integer(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


def integers(schema: Any, value: Any) -> Any:
    """value with every integral number that schema expects as an integer made an int.

    Follows properties, additionalProperties, items, prefixItems and allOf/anyOf/oneOf; a
    container is copied only if something in it changes. JSON Schema does not tell 2.0 from 2,
    so this changes no validation result, only what the handler receives."""
    if not isinstance(schema, dict):
        return value
    for key in _COMBINATORS:
        for branch in schema.get(key, ()):
            value = integers(branch, value)
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        changed = {}
        for name, item in value.items():
            new = integers(properties[name] if name in properties else extra, item)
            if new is not item:
                changed[name] = new
        return {**value, **changed} if changed else value
    if isinstance(value, list):
        prefix = schema.get("prefixItems") or []
        rest = schema.get("items")
        items = [integers(prefix[n] if n < len(prefix) else rest, item) for n, item in enumerate(value)]
        return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
    if is_integral(value) and _expects_integer(schema):
        return int(value)
    return value


# --- text ----------------------------------------------------------------------------------


def _text_problem(text: str) -> str | None:
    if text.isascii():
        return "text must not contain NUL characters" if "\x00" in text else None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"text must be valid Unicode: {printable(exc.object[exc.start])} is a lone surrogate, "
                "not a character")
    return "text must not contain NUL characters" if "\x00" in text else None


def bad_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """(path, problem) of the first string, key or value, that holds text no database stores."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{printable(str(key))}" if path else printable(str(key))
            problem = _text_problem(str(key))
            if problem:
                return inner, problem
            found = bad_text(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found = bad_text(item, f"{path}.{n}" if path else str(n))
            if found is not None:
                return found
    return None


# --- messages ------------------------------------------------------------------------------


class _ShownNumber(Decimal):
    """A Decimal whose repr is the number as the client wrote it, for jsonschema's messages."""

    def __repr__(self) -> str:
        return str(self)


def _shown(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shown(item) for item in value]
    if isinstance(value, Decimal):
        return _ShownNumber(value)
    return value
