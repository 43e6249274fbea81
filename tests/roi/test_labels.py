"""Plain names of operations: derived from the registry's tools and the import record types."""

from __future__ import annotations

import pytest

from core.roi.labels import tool_label
from core.tools.registry import all_tools


@pytest.mark.parametrize("name, label", [
    ("ax_create_salesorder", "Create sales order"),
    ("ax_get_customer", "Get customer"),
    ("ax_get_roi_metrics", "Get ROI metrics"),
    ("ax_post_payment", "Post payment"),
    ("import.customers", "Imported customers"),
    ("import.salesorders", "Imported sales orders"),
    ("import.pricelists", "Imported price lists"),
    ("no_baseline_tool", "no_baseline_tool"),  # not a registered tool: as it is
    ("ax_made_up", "ax_made_up"),
    ("-2+3", "-2+3"),
    ("import.", "import."),
    (None, "(unknown tool)"),
])
def test_labels(name, label):
    assert tool_label(name) == label


def test_every_registered_tool_has_a_plain_name():
    for tool in all_tools():
        label = tool_label(tool.name)
        assert "_" not in label and label[0].isupper() and label != tool.name, tool.name
