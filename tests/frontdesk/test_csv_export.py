"""CSV cells that a spreadsheet would run as formulas are written as text."""

from __future__ import annotations

import csv
import io

import pytest

from responder.frontdesk.csv_export import csv_lines, safe_cell


@pytest.mark.parametrize(("value", "written"), [
    ("=1+1", "'=1+1"), ("+15551234567", "'+15551234567"), ("-2", "'-2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("frontdesk", "frontdesk"), ("a=b", "a=b"), ("", ""), (None, ""), (3, 3), (0.25, 0.25),
])
def test_safe_cell(value: str | int | float | None, written: str | int | float) -> None:
    assert safe_cell(value) == written


def test_lines_parse_back_with_quotes_and_newlines() -> None:
    rows = [("a,b", 'say "hi"', "two\nlines", "=cmd")]
    text = "".join(csv_lines(("one", "two", "three", "four"), rows))
    assert list(csv.reader(io.StringIO(text)))[1] == ["a,b", 'say "hi"', "two\nlines", "'=cmd"]
