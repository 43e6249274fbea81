"""The registry of ax_* tools: name, description, JSON Schema, role and handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from core.accounts.roles import ROLE_LEVEL
from core.errors import ToolError

if TYPE_CHECKING:
    from core.tools.pipeline import CallContext

Handler = Callable[[dict[str, Any], "CallContext"], dict[str, Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    role: str
    handler: Handler
    validator: Draft202012Validator = field(compare=False, repr=False)
    # False for tools that orchestrate other calls (batch, import): each inner call has its
    # own transaction, so the outer call must not hold one open around them.
    transactional: bool = True

    @property
    def role_level(self) -> int:
        return ROLE_LEVEL[self.role]

    def validate(self, arguments: Any) -> None:
        if not isinstance(arguments, dict):
            raise ToolError("VALIDATION_ERROR", "arguments must be a JSON object")
        error = best_match(self.validator.iter_errors(arguments))
        if error is not None:
            path = ".".join(str(p) for p in error.absolute_path)
            where = f"{path}: " if path else ""
            raise ToolError("VALIDATION_ERROR", f"{where}{error.message}"[:500], field=path or None)
        bad = _nul_path(arguments)
        if bad is not None:
            raise ToolError("VALIDATION_ERROR", f"{bad or 'arguments'}: text must not contain NUL characters",
                            field=bad or None)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "role": self.role,
                "input_schema": self.input_schema}


def _nul_path(value: Any, path: str = "") -> str | None:
    """The path of the first string (key or value) holding a NUL, which no database stores."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return inner
            found = _nul_path(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found = _nul_path(item, f"{path}.{n}" if path else str(n))
            if found is not None:
                return found
    return None


_TOOLS: dict[str, Tool] = {}


def register(name: str, *, description: str, role: str, schema: dict[str, Any],
             transactional: bool = True) -> Callable[[Handler], Handler]:
    if role not in ROLE_LEVEL:
        raise ValueError(f"tool {name}: unknown role {role}")
    Draft202012Validator.check_schema(schema)

    def decorate(handler: Handler) -> Handler:
        if name in _TOOLS:
            raise ValueError(f"tool {name} registered twice")
        _TOOLS[name] = Tool(name, description, schema, role, handler, Draft202012Validator(schema), transactional)
        return handler

    return decorate


def find_tool(name: str) -> Tool | None:
    return _TOOLS.get(name)


def get_tool(name: str) -> Tool:
    tool = _TOOLS.get(name)
    if tool is None:
        shown = name if len(name) <= 100 else name[:100] + "…"
        raise ToolError("TOOL_NOT_FOUND", f"there is no tool named {shown!r}; GET /api/tools lists them")
    return tool


def all_tools() -> list[Tool]:
    return sorted(_TOOLS.values(), key=lambda t: t.name)


def obj(properties: dict[str, Any], required: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed JSON Schema object: unknown fields are refused, not silently ignored."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}
