"""Cell parsing for imports: text, numbers (decimal comma aware) and whole numbers.

Each parser returns the clean value or raises ToolError with the row-level code.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import ToolError


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores an account like 1001 as 1001.0
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def as_decimal(value: Any, decimal_comma: bool, column: str) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ToolError("INVALID_NUMBER", f"{column} must be a number", field=column)
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    if decimal_comma:
        text = text.replace(".", "").replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ToolError("INVALID_NUMBER", f"{column} must be a number, got {value!r}", field=column) from None
    if not number.is_finite():
        raise ToolError("INVALID_NUMBER", f"{column} must be a finite number", field=column)
    return number


def as_int(value: Any, decimal_comma: bool, column: str, *, minimum: int = 0,
           maximum: int = 1_000_000_000) -> int | None:
    number = as_decimal(value, decimal_comma, column)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ToolError("INVALID_NUMBER", f"{column} must be a whole number, got {value!r}", field=column)
    result = int(number)
    if not minimum <= result <= maximum:
        raise ToolError("INVALID_NUMBER", f"{column} must be between {minimum} and {maximum}", field=column)
    return result
