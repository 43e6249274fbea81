"""The messages of refused arguments: jsonschema's, or the x-message of the schema that refuses."""

from __future__ import annotations

import pytest

from core.errors import ToolError
from core.tools.arguments import check_arguments
from core.tools.registry import ToolValidator, counting_integral_numbers

SCHEMA = {"type": "object", "properties": {
    "a": {"anyOf": [{"type": "string", "pattern": "^x$"},
                    {"type": "array", "items": {"type": "string", "x-message": "each a must be text"}}]},
    "b": {"type": "integer"}},
    "allOf": [{"if": {"required": ["b"]}, "then": {"not": {"required": ["a"]}, "x-message": "a or b, not both"}}]}


def refusal(arguments: dict) -> ToolError:
    with pytest.raises(ToolError) as error:
        check_arguments(counting_integral_numbers(ToolValidator)(SCHEMA), SCHEMA, arguments)
    return error.value


def test_a_failure_inside_any_of_is_reported_not_a_crash():
    assert refusal({"a": [1]}).message == "a.0: each a must be text"
    assert refusal({"a": 3}).message == "a: 3 is not valid under any of the given schemas"


def test_a_not_is_explained_by_its_x_message():
    assert refusal({"a": "x", "b": 1}).message == "a or b, not both"
