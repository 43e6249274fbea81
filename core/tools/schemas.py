"""JSON Schema building blocks for the tools' inputs and outputs.

An input schema is the contract a generated client and a fuzzer see, so it says what the
server checks wherever JSON Schema can: lengths, patterns, two-decimal money, dates. Patterns
are written so that Python's `re` (the server's validator) and ECMA 262 (clients) read them
alike: explicit character classes, `\\u` escapes, no Unicode-dependent `\\d` or `\\w`.
"""

from __future__ import annotations

from typing import Any

from core.tools.registry import obj

# Every string argument is refused when it holds a NUL character (no database stores one).
NO_NUL = r"^[^\u0000]*$"
# ... and a required text is refused when it is blank once stripped.
NOT_BLANK = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
# A key (account, item id): a letter or digit, then letters, digits, '.', '_', '-' or '/'.
KEY = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
# RFC 3339 full-date with Python's date.fromisoformat's digits; a day the calendar lacks
# (2026-02-30) passes the pattern and is refused by the handler, as `format: date` says.
MONTH_DAY = r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
# RFC 3339 date-time with a time zone, years 1900-2999 (converting an edge-of-calendar time to
# UTC would overflow), seconds 00-59 (Python has no leap second).
DATE_TIME = (r"^(19|2[0-9])[0-9]{2}" + MONTH_DAY + r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
             r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def text(max_length: int, *, required: bool = False, min_length: int | None = None,
         description: str | None = None) -> dict[str, Any]:
    """A free text argument: at most max_length characters, no NUL; `required` texts must not be blank."""
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "pattern": NO_NUL}
    if required:  # values.text strips and refuses a blank text as MISSING_FIELD
        schema.update(pattern=NOT_BLANK, minLength=1)
        schema["x-error-code"] = "MISSING_FIELD"
    elif min_length:
        schema["minLength"] = min_length
    if description:
        schema["description"] = description
    return schema


def _example(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    return {**schema, "examples": [example]} if example is not None else schema


def key(max_length: int, description: str, example: str | None = None) -> dict[str, Any]:
    """An identifier the caller chooses (a new customer account or item id)."""
    return _example({"type": "string", "minLength": 1, "maxLength": max_length, "pattern": KEY,
                     "description": description}, example)


def ref(max_length: int, description: str, example: str | None = None) -> dict[str, Any]:
    """An identifier of an existing record: any text; one that names nothing is a *_NOT_FOUND (404)."""
    return _example({"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NO_NUL,
                     "description": description}, example)


def money(description: str, *, positive: bool = False) -> dict[str, Any]:
    """A non-negative amount with at most two decimals, below 10^16 (core/erp/values.money).

    values.money refuses more decimals or a larger amount as INVALID_NUMBER; multipleOf is meant
    in decimal arithmetic (99.95 passes, 99.955 fails), as the hub's validator reads it.
    """
    bound = {"exclusiveMinimum": 0} if positive else {"minimum": 0}
    return {"type": "number", **bound, "exclusiveMaximum": 10**16, "multipleOf": 0.01, "description": description,
            "examples": [99.95], "x-error-code": "INVALID_NUMBER"}


def currency(description: str) -> dict[str, Any]:
    """An ISO 4217 code in any case (core/erp/values.currency); an unknown one is INVALID_CURRENCY."""
    return {"type": "string", "minLength": 3, "maxLength": 3, "pattern": "^[A-Za-z]{3}$", "description": description,
            "examples": ["EUR"], "x-error-code": "INVALID_CURRENCY"}


def date_input(description: str, years: str) -> dict[str, Any]:
    """A YYYY-MM-DD date whose year matches the `years` pattern (e.g. 19[7-9][0-9]|2[0-9]{3})."""
    return {"type": "string", "format": "date", "pattern": f"^({years}){MONTH_DAY}$", "description": description}


def date_time_input(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", "pattern": DATE_TIME, "description": description}


# --- outputs --------------------------------------------------------------------------------

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
COUNT = {"type": "integer", "minimum": 0}
BOOLEAN = {"type": "boolean"}
TIMESTAMP = {"type": "string", "format": "date-time"}
DAY = {"type": "string", "format": "date"}
# Money leaves the hub as a JSON number (Decimal -> float; exact for two-place amounts below 1e13).
AMOUNT = {"type": "number", "description": "amount with at most two decimals"}
CURRENCY_CODE = {"type": "string", "pattern": "^[A-Z]{3}$"}
JSON_OBJECT = {"type": "object"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema or null (the type list keeps `format` and friends applying to the value)."""
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*types, "null"]}


def record(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed output object whose properties are all present except those named `optional`."""
    return obj(properties, [name for name in properties if name not in optional])


def listing(name: str, item: dict[str, Any], **more: Any) -> dict[str, Any]:
    """{name: [item, ...], **more}, every property present."""
    return record({name: {"type": "array", "items": item}, **more})
