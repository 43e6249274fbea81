"""Text bound for a spreadsheet cell (the CSV and XLSX exports, the failed-rows file).

A spreadsheet evaluates a cell that starts with =, +, - or @ as a formula; OWASP's list for
CSV injection adds a leading tab and carriage return. A user named =HYPERLINK(...) must show
as text, never run.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Text for a CSV cell: a leading apostrophe where a spreadsheet would see a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
