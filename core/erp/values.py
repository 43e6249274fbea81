"""Parsing and checking of the values ERP services accept: money, currencies, identifiers."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

import pycountry

from core.errors import ToolError

CENT = Decimal("0.01")
MAX_MONEY = Decimal("9999999999999999.99")
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
# ISO 4217 codes that are not money anyone invoices in: no currency (XXX), testing (XTS),
# precious metals, bond-market and accounting units.
NOT_MONEY = frozenset({"XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA",
                       "XAD"})
# An address as mail systems accept it: a local part without spaces or '@', and a domain of
# dot-separated labels (letters of any script, digits, hyphens) ending in a top-level domain.
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}$")


@lru_cache(maxsize=1)
def iso_currencies() -> frozenset[str]:
    """The active ISO 4217 currencies (pycountry's list, which holds current codes only) that are money."""
    return frozenset(c.alpha_3 for c in pycountry.currencies) - NOT_MONEY


def currency(value: object, field: str = "currency") -> str:
    code = str(value or "").strip().upper()
    if code not in iso_currencies():
        raise ToolError("INVALID_CURRENCY", f"{value!r} is not an ISO 4217 currency code", field=field)
    return code


def email(value: object, field: str = "email") -> str:
    """An e-mail address, or "" for none."""
    address = text(value, field, 254, required=False)
    if address and not EMAIL_RE.match(address):
        raise ToolError("INVALID_EMAIL", f"{address!r} is not an e-mail address", field=field)
    return address


def money(value: object, field: str, *, allow_negative: bool = False, allow_zero: bool = True) -> Decimal:
    """A Decimal with at most two places. Floats are read through their shortest repr."""
    if isinstance(value, bool):
        raise ToolError("VALIDATION_ERROR", f"{field} must be a number", field=field)
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise ToolError("INVALID_NUMBER", f"{field} must be a number, got {value!r}", field=field) from None
    if not amount.is_finite():
        raise ToolError("INVALID_NUMBER", f"{field} must be a finite number", field=field)
    # Before quantize: quantizing a huge number (1e30) overflows the Decimal context and raises.
    if abs(amount) > MAX_MONEY:
        raise ToolError("INVALID_NUMBER", f"{field} is too large", field=field)
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise ToolError("INVALID_NUMBER", f"{field} has more than two decimal places: {value}", field=field)
    if amount < 0 and not allow_negative:
        raise ToolError("VALIDATION_ERROR", f"{field} must not be negative", field=field)
    if amount == 0 and not allow_zero:
        raise ToolError("VALIDATION_ERROR", f"{field} must be greater than zero", field=field)
    return amount.quantize(CENT)


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def key(value: object, field: str, max_length: int) -> str:
    text = str(value or "").strip()
    if not text or len(text) > max_length or not KEY_RE.match(text):
        raise ToolError(
            "VALIDATION_ERROR",
            f"{field} must be 1-{max_length} letters, digits, '.', '_', '-' or '/', starting with a letter or digit",
            field=field,
        )
    return text


def text(value: object, field: str, max_length: int, *, required: bool = True) -> str:
    result = str(value if value is not None else "").strip()
    if required and not result:
        raise ToolError("MISSING_FIELD", f"{field} is required", field=field)
    if len(result) > max_length:
        raise ToolError("VALIDATION_ERROR", f"{field} is longer than {max_length} characters", field=field)
    return result


def as_float(amount: Decimal) -> float | Decimal:
    """Money as a JSON number at the output boundary: a float where the float is the amount to
    the cent (every two-place amount below about 3.5e13), the Decimal itself beyond, where a
    float would be cents off. The hub's JSON writers emit a Decimal digit for digit."""
    number = float(amount)
    return number if Decimal(repr(number)) == amount else amount
