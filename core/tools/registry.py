"""The registry of ax_* tools: name, description, JSON Schemas in and out, role and handler.

A tool's output schema is declared once, beside its input schema, and serves MCP's
`outputSchema`, the OpenAPI 200 responses, GET /api/tools and the dashboard's tools page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator, _keywords, validators
from jsonschema.exceptions import ValidationError

from core.accounts.roles import ROLE_LEVEL
from core.errors import ToolError
from core.tools.arguments import check_arguments, counting_integral_numbers

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
    # The shape of what the handler returns (a JSON object); None only for tools made up by tests.
    output_schema: dict[str, Any] | None = None

    @property
    def role_level(self) -> int:
        return ROLE_LEVEL[self.role]

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Check the arguments (core.tools.arguments); returns them as the handler receives them."""
        return check_arguments(self.validator, self.input_schema, arguments)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "role": self.role,
                "input_schema": self.input_schema, "output_schema": self.output_schema}


_TOOLS: dict[str, Tool] = {}


def _multiple_of(validator, step, instance, schema):
    """multipleOf in decimal arithmetic. jsonschema divides binary floats (0.07 is no multiple
    of 0.01 there) and cannot divide a Decimal by a float at all; JSON money is decimal."""
    if not validator.is_type(instance, "number"):
        return
    step_value = Decimal(repr(step)) if isinstance(step, float) else Decimal(step)
    sign, digits, exponent = step_value.as_tuple()
    if not (digits == (1,) and isinstance(exponent, int)):  # only powers of ten are decimal places
        yield from _keywords.multipleOf(validator, step, instance, schema)
        return
    value = instance if isinstance(instance, Decimal) else Decimal(repr(instance) if isinstance(instance, float)
                                                                   else instance)
    # The exponent of the normalised value counts its decimal places, without dividing a huge
    # number (1e999999) by the step.
    if value.is_finite() and value != 0 and value.normalize().as_tuple().exponent < exponent:
        yield ValidationError(f"{instance!r} is not a multiple of {step}")


def _unless_service_checked(keyword):
    """A value whose schema names an "x-error-code" has its pattern, multipleOf and exclusiveMaximum
    checked by its service, which refuses it with that stable code (INVALID_NUMBER,
    INVALID_CURRENCY, MISSING_FIELD) and names the field as clients know it. The schema states
    the checks for clients and fuzzers; the argument validator does not answer VALIDATION_ERROR
    first. Its other keywords (type, minimum, lengths) apply as usual."""

    def check(validator, value, instance, schema):
        if "x-error-code" not in schema:
            yield from keyword(validator, value, instance, schema)

    return check


_SERVICE_CHECKED = {"pattern": _keywords.pattern, "multipleOf": _multiple_of,
                    "exclusiveMaximum": _keywords.exclusiveMaximum}
# The validator of tool arguments: Draft 2020-12 with decimal multipleOf and service-checked values.
ToolValidator = validators.extend(Draft202012Validator, {
    keyword: _unless_service_checked(check) for keyword, check in _SERVICE_CHECKED.items()})


def register(name: str, *, description: str, role: str, schema: dict[str, Any],
             output: dict[str, Any] | None = None, transactional: bool = True) -> Callable[[Handler], Handler]:
    """Register a tool: `schema` describes its arguments, `output` what it returns (every tool of
    the hub declares one; tests/tools/test_output_schemas.py holds them to it)."""
    if role not in ROLE_LEVEL:
        raise ValueError(f"tool {name}: unknown role {role}")
    Draft202012Validator.check_schema(schema)
    if output is not None:
        Draft202012Validator.check_schema(output)
        if output.get("type") != "object":
            raise ValueError(f"tool {name}: the output schema must describe a JSON object (MCP outputSchema)")

    def decorate(handler: Handler) -> Handler:
        if name in _TOOLS:
            raise ValueError(f"tool {name} registered twice")
        validator = counting_integral_numbers(ToolValidator)(schema)
        _TOOLS[name] = Tool(name, description, schema, role, handler, validator, transactional, output)
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
