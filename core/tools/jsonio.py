"""JSON in and out of the ways in (HTTP, MCP, CLI, dashboard).

Numbers with a fraction are read as Decimal, never float, and written back as the exact
number (core.jsoncodec), so money survives the trip digit for digit.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from core import jsoncodec


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def dumps(value: Any, **kwargs: Any) -> str:
    return jsoncodec.dumps(value, **kwargs)
