"""CSV downloads that a spreadsheet opens as data, never as formulas.

A cell starting with =, +, -, @, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets ("CSV injection", OWASP:
owasp.org/www-community/attacks/CSV_Injection). Text cells that start so get
a leading apostrophe, which those programs show as the plain text.
Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

from flask import Response, stream_with_context

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
Cell = str | int | float | None


def safe_cell(value: Cell) -> str | int | float:
    """Return the cell to write: text that could start a formula is defused."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> Iterator[str]:
    """Yield the CSV text a line at a time (RFC 4180 quoting, CRLF line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells: Sequence[Cell]) -> str:
        writer.writerow([safe_cell(c) for c in cells])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(header)
    for cells in rows:
        yield line(cells)


def csv_download(filename: str, header: Sequence[str],
                 rows: Iterable[Sequence[Cell]]) -> Response:
    """A streamed CSV attachment; rows may be a generator reading the database."""
    body = stream_with_context(csv_lines(header, rows))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})
