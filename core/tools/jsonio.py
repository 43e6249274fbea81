"""JSON in and out of the hub: numbers with a fraction are read as Decimal, never float."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(o)
        return super().default(o)


def dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(value, cls=Encoder, ensure_ascii=False, **kwargs)
