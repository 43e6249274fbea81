"""The one JSON encoding of the hub: exact for money, for what it stores and what it sends.

Callers hand the hub numbers with a fraction as Decimal (core.tools.jsonio parses them so,
and services compute money in Decimal). Python's json cannot write a Decimal as a bare
number, and turning it into a float would change it (99.95 -> 99.9499999…, and amounts above
about 10^14 lose cents). `Encoder` writes it digit for digit instead; every JSONField takes it
(`encoder=Encoder`), and responses and webhook bodies are written with `dumps`.

`Decoder` reads fractions back as Decimal. JSON columns whose numbers flow back into tool calls
or money comparisons (batch requests and results, idempotent outcomes, event data, webhook
filters) use it (`decoder=Decoder`), so what comes back from the database is what went in.
Columns read only by people or by code that expects plain floats keep the default decoder.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from json.encoder import _make_iterencode, c_make_encoder, encode_basestring, encode_basestring_ascii
from typing import Any

# Plain notation for numbers with at most this many digits before / after the point; beyond,
# exponent notation (1.5E+400), so that a short input cannot turn into a huge output.
_PLAIN_DIGITS = 40


class _DecimalMet(Exception):
    """The fast C encoder met a Decimal: encode again with the Decimal-aware encoder."""


def stripped(value: Decimal) -> Decimal:
    """The same number without trailing zeros (100.00 -> 1E+2, 0.00 -> 0).

    Decimal.normalize() would round to the context's 28 digits; this never changes the value."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN, Infinity
        return value
    end = len(digits)
    while end > 1 and digits[end - 1] == 0:
        end -= 1
    if digits[:end] == (0,):
        return Decimal((sign, (0,), 0))
    return Decimal((sign, digits[:end], exponent + len(digits) - end))


def decimal_text(value: Decimal) -> str:
    """The JSON number of a Decimal, exact and without trailing zeros: 99.95, 200.0, 1.5E+400.

    Always with a fraction or an exponent, so that it is read back as a Decimal again."""
    if not value.is_finite():
        raise ValueError(f"{value} is not a JSON number")
    number = stripped(value)
    _, digits, exponent = number.as_tuple()
    if -_PLAIN_DIGITS <= exponent and len(digits) + exponent <= _PLAIN_DIGITS:
        text = format(number, "f")
        return text if "." in text else text + ".0"
    return str(number)  # exponent notation: valid JSON, e.g. 1.5E+400 or 1E-41


def _number(value: float | Decimal) -> str:
    if isinstance(value, Decimal):
        return decimal_text(value)
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a JSON number")
    return float.__repr__(value)


class Encoder(json.JSONEncoder):
    """JSON with Decimal written as its exact number and dates as ISO 8601 text.

    NaN and infinities are refused, whoever asks: JSON has no such numbers. Values without a
    Decimal take the C encoder as usual; one with a Decimal is encoded again in Python."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["allow_nan"] = False
        super().__init__(**kwargs)

    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            raise _DecimalMet  # only the C encoder gets here; see iterencode
        if isinstance(o, datetime | date):
            return o.isoformat()
        return super().default(o)

    def iterencode(self, o: Any, _one_shot: bool = False):
        if _one_shot and c_make_encoder is not None and self.indent is None:
            try:
                return super().iterencode(o, _one_shot=True)
            except _DecimalMet:
                pass
        # The standard library's pure-Python encoder, which the C encoder mirrors: private, but
        # unchanged since Python 2.7. It writes every number through one hook, the only way to
        # emit a bare number (default() can only substitute another Python value), so Decimal
        # joins float there. tests/tools/test_json_values.py pins the result.
        encode_string = encode_basestring_ascii if self.ensure_ascii else encode_basestring
        return _make_iterencode(
            {} if self.check_circular else None, self.default, encode_string, self.indent, _number,
            self.key_separator, self.item_separator, self.sort_keys, self.skipkeys, _one_shot,
            float=(float, Decimal),
        )(o, 0)


class Decoder(json.JSONDecoder):
    """JSON with numbers that have a fraction or an exponent read as Decimal."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("parse_float", Decimal)
        super().__init__(**kwargs)


def dumps(value: Any, **kwargs: Any) -> str:
    """Non-ASCII characters as they are: the hub speaks UTF-8."""
    kwargs.setdefault("ensure_ascii", False)
    return json.dumps(value, cls=Encoder, **kwargs)


def loads(text: str | bytes) -> Any:
    return json.loads(text, cls=Decoder)
