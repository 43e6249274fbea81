"""The one guard against formulas in exported cells (ROI exports, failed-rows file, audit CSV)."""

from __future__ import annotations

from core.spreadsheet import neutralise


def test_neutralise_prefixes_what_a_spreadsheet_would_evaluate():
    assert [neutralise(t) for t in ("=1+2", "+cmd", "-2", "@SUM", "\tx", "\rx", "a=b", "Müller", "")] == [
        "'=1+2", "'+cmd", "'-2", "'@SUM", "'\tx", "'\rx", "a=b", "Müller", ""]
