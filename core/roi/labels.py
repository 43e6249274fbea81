"""Plain names of operations for people reading ROI figures, in one place.

Audit rows name an operation by its tool (`ax_create_salesorder`) or, for a record a bulk import
wrote, by `import.<type>`. A stakeholder reads "Create sales order" and "Imported customers";
the tool name stays at hand (pages show it as a tooltip, exports keep it as the key).

Labels are derived from the names: the registry's tools (ax_<verb>_<object>) and the import
record types. A name neither of those (a tool since removed, a typo in a baseline) is shown as
it is, since guessing words for it could mislead.
"""

from __future__ import annotations

import re
from functools import cache

from core.tools.registry import all_tools

IMPORT_PREFIX = "import."
# Words the tool names write as one: how a person spells them.
WORDS = {"salesorder": "sales order", "salesorders": "sales orders", "pricelist": "price list",
         "pricelists": "price lists", "roi": "ROI"}
_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def _words(name: str) -> str:
    return " ".join(WORDS.get(word, word) for word in name.split("_"))


@cache
def _registered() -> frozenset[str]:
    return frozenset(tool.name for tool in all_tools())


def tool_label(name: str | None) -> str:
    """e.g. ax_create_salesorder -> "Create sales order", import.customers -> "Imported customers";
    anything else as it is."""
    if not name:
        return "(unknown tool)"
    if name.startswith(IMPORT_PREFIX) and _NAME.fullmatch(name[len(IMPORT_PREFIX):]):
        return "Imported " + _words(name[len(IMPORT_PREFIX):])
    if name in _registered() and name.startswith("ax_"):
        words = _words(name[3:])
        return words[:1].upper() + words[1:]
    return name
