"""XLSX report files (issue 18, item 19): the sheet's rows rendered as XML by Postgres and only zipped here.

A million rows through any Python writer costs one to several microseconds of CPU per cell (XlsxWriter:
~5 µs, 11 million cells, 209 s on the shared machine). So, like the CSV's COPY, Postgres renders each row
as the sheet's `<row>` XML (types, the formula guard, Excel's escapes, all in SQL) and streams it with
`COPY ... TO STDOUT`; Python writes it into the zip entry as it comes, and copies the package's small fixed
parts (workbook, styles, theme, rels) from a one-cell workbook that XlsxWriter makes.

XlsxWriter stays the reference, and the writer for what the SQL does not render: rows whose personal
values are masked in Python, and column types other than text, dates, integers and bounded decimals. The
SQL reproduces XlsxWriter's output cell for cell (a property test compares the two files read back):

- text: inline strings; `_xHHHH_` written as `_x005F_xHHHH_`, control characters as `_xHHHH_` (and
  U+FFFE/U+FFFF), then `& < >` escaped; tab, newline and backslash as character references so the
  COPY's text format passes them untouched; cut at Excel's 32,767 UTF-16 units; '' is an empty cell;
- integers: as they are up to 2^53, beyond as XlsxWriter's `%.16G` of their double;
- decimals with at most 16 digits (`numeric(p, s)`, p <= 16): as they are (NaN: an empty cell);
- dates: Excel's serial day (1900 system, with its leap-day bug) with the `yyyy-mm-dd` style.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from xlsxwriter.utility import xl_col_to_name

Progress = Callable[[int], None]

SHEET_PART = "xl/worksheets/sheet1.xml"
SHEET_NAME = "report"
DATE_FORMAT = "yyyy-mm-dd"
# Deflate level 1: the sheet XML is repetitive (markup), so it still shrinks ~10×, at several times the
# speed of the default level 6.
COMPRESS_LEVEL = 1
WRITE_BUFFER = 1 << 20

TEXT, INTEGER, BIG_INTEGER, DECIMAL, DATE = "text", "integer", "big_integer", "decimal", "date"
# Postgres type OIDs the SQL renders: name, text, varchar; int2, int4; int8; numeric; date.
KINDS_BY_OID = {
    19: TEXT,
    25: TEXT,
    1043: TEXT,
    21: INTEGER,
    23: INTEGER,
    20: BIG_INTEGER,
    1700: DECIMAL,
    1082: DATE,
}
# A decimal of up to 16 significant digits reads back as the same double as XlsxWriter's `%.16G` of it.
DECIMAL_MAX_DIGITS = 16
EXACT_INTEGER = 2**53
LARGEST_EVEN_16_DIGITS = 10**16 - 2  # 10^16 - 1 rounds up to 10^16, which `%.16G` writes as 1E+16
XLSX_MAX_STRING = 32767  # UTF-16 units

# Text that needs more than the markup around it: XML's specials, what COPY's text format would escape
# (tab, newline, backslash), control characters and non-characters, and literal `_xHHHH_` escapes.
NEEDS_ESCAPING = r"'[&<>\\\t\n\x01-\x08\x0b-\x1f\uFFFE\uFFFF]|_x[0-9a-fA-F]{4}_'"
CONTROL_CODE_POINTS = [*range(1, 9), *range(11, 32), 0xFFFE, 0xFFFF]

SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    b'<sheetViews><sheetView tabSelected="1" workbookViewId="0"/></sheetViews>'
    b'<sheetFormatPr defaultRowHeight="15"/><sheetData>'
)
SHEET_TAIL = (
    b'</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
    b"</worksheet>"
)


def column_kinds(description: Sequence[Any]) -> list[str] | None:
    """Each column's kind from a cursor's description, or None when one is not rendered in SQL."""
    kinds = []
    for column in description:
        kind = KINDS_BY_OID.get(column.type_code)
        if kind is None:
            return None
        if kind == DECIMAL and not (column.precision and column.precision <= DECIMAL_MAX_DIGITS):
            return None
        kinds.append(kind)
    return kinds


# No `%` in any fragment: the statement goes to psycopg with the query's bound parameters.
def rows_select_sql(
    sql: str, kinds: list[str], guarded: Sequence[int], guard_code_points: str, first_row: int, limit: int
) -> str:
    """A SELECT of one `<row>` XML text per row of `sql` (its columns in order, `kinds` from column_kinds),
    numbered from `first_row`; text columns in `guarded` get the formula guard. One row more than `limit`
    comes as an empty line (so the caller knows the sheet was cut without a second query)."""
    names = [f"c{i}" for i in range(len(kinds))]
    values = ", ".join(
        f"{_value_sql(kind, f'r.{name}', i in guarded, guard_code_points)} AS {name}"
        for i, (kind, name) in enumerate(zip(kinds, names, strict=True))
    )
    cut = ", ".join(
        f"{_cut_text_sql(f'v.{name}')} AS {name}" if kind == TEXT else f"v.{name}"
        for kind, name in zip(kinds, names, strict=True)
    )
    cells = " || ".join(
        _cell_sql(kind, f"x.{name}", xl_col_to_name(i))
        for i, (kind, name) in enumerate(zip(kinds, names, strict=True))
    )
    last = first_row + limit
    # The window function keeps each layer from being merged into the next, so every expression that a
    # later one reads twice is computed once per row.
    return (
        f"SELECT CASE WHEN x.k > {last - 1} THEN '' ELSE '<row r=\"' || x.n || '\">' || {cells} || '</row>' END"  # noqa: S608
        f" FROM (SELECT v.n AS k, v.n::text AS n, {cut} FROM ("
        f"SELECT row_number() OVER () + {first_row - 1} AS n, {values}"
        f" FROM ({sql}) AS r({', '.join(names)}) LIMIT {limit + 1}) AS v OFFSET 0) AS x"
    )


def _value_sql(kind: str, column: str, guarded: bool, guard_code_points: str) -> str:
    """The cell's value: text guarded and '' as NULL, numbers as the text that goes in `<v>`."""
    if kind == TEXT:
        text = f"{column}::text"
        if guarded:
            return f"CASE WHEN ascii({text}) IN ({guard_code_points}) THEN '''' || {text} ELSE NULLIF({text}, '') END"
        return f"NULLIF({text}, '')"
    if kind == INTEGER:
        return f"{column}::text"
    if kind == BIG_INTEGER:
        # Beyond 2^53 a double holds even integers only (ties to a multiple of 4), printed in full up to
        # 16 digits; from there on `%.16G` gives 16 significant digits and an exponent.
        return (
            f"CASE WHEN {column} BETWEEN {-EXACT_INTEGER} AND {EXACT_INTEGER} THEN {column}::text"
            f" WHEN {column} BETWEEN {-LARGEST_EVEN_16_DIGITS} AND {LARGEST_EVEN_16_DIGITS} THEN (CASE"
            f" WHEN mod({column}, 2) = 0 THEN {column} WHEN mod({column} - 1, 4) = 0 THEN {column} - 1"
            f" ELSE {column} + 1 END)::text"
            f" ELSE ltrim(to_char({column}::float8, '9.999999999999999EEEE')) END"
        )
    if kind == DECIMAL:
        return f"NULLIF({column}, 'NaN')::text"
    # Excel's day 60 is 1900-02-29, a day that never was: later dates count one more.
    return f"({column} - DATE '1899-12-31' + CASE WHEN {column} > DATE '1900-02-28' THEN 1 ELSE 0 END)::text"


def _cut_text_sql(column: str) -> str:
    """Text cut at 32,767 UTF-16 units as XlsxWriter cuts it (never inside a character); only a value of
    more bytes than that can be longer."""
    # Fixed fragments around a column reference of ours; no value is formatted into SQL.
    return (
        f"CASE WHEN octet_length({column}) > {XLSX_MAX_STRING} THEN (SELECT string_agg(u.ch, '' ORDER BY u.i)"  # noqa: S608
        f" FROM (SELECT s.ch, s.i, sum(CASE WHEN ascii(s.ch) > 65535 THEN 2 ELSE 1 END) OVER (ORDER BY s.i) AS units"
        f" FROM regexp_split_to_table({column}, '') WITH ORDINALITY AS s(ch, i)) AS u"
        f" WHERE u.units <= {XLSX_MAX_STRING}) ELSE {column} END"
    )


def _escaped_text_sql(column: str) -> str:
    """XlsxWriter's escapes for inline strings, then character references for what COPY would escape."""
    text = f"regexp_replace({column}, '(_x[0-9a-fA-F]{{4}}_)', '_x005F\\1', 'g')"
    for code in CONTROL_CODE_POINTS:
        text = f"replace({text}, chr({code}), '_x{code:04X}_')"
    for char, reference in (("'&'", "&amp;"), ("'<'", "&lt;"), ("'>'", "&gt;")):
        text = f"replace({text}, {char}, '{reference}')"
    for char, reference in (("'\\'", "&#92;"), ("chr(9)", "&#9;"), ("chr(10)", "&#10;")):
        text = f"replace({text}, {char}, '{reference}')"
    return f"CASE WHEN {column} ~ {NEEDS_ESCAPING} THEN {text} ELSE {column} END"


def _cell_sql(kind: str, column: str, letter: str) -> str:
    """One `<c>` element, or '' for an empty cell (a NULL makes the whole concatenation NULL)."""
    if kind == TEXT:
        body = (
            f'\'<c r="{letter}\' || x.n || \'" t="inlineStr"><is><t xml:space="preserve">\' || '
            f"{_escaped_text_sql(column)} || '</t></is></c>'"
        )
    elif kind == DATE:
        body = f"'<c r=\"{letter}' || x.n || '\" s=\"1\"><v>' || {column} || '</v></c>'"
    else:
        body = f"'<c r=\"{letter}' || x.n || '\"><v>' || {column} || '</v></c>'"
    return f"COALESCE({body}, '')"


def header_select_sql(columns: int) -> str:
    """The header row's SELECT: its values bound (`%s` each), already guarded by the caller."""
    values = ", ".join(["%s::text"] * columns)
    return rows_select_sql(f"VALUES ({values})", [TEXT] * columns, (), "0", first_row=1, limit=1)


@contextlib.contextmanager
def sheet_package(path: str) -> Any:
    """`with sheet_package(path) as write:` write(bytes) appends to the sheet's `<sheetData>`; the package
    (fixed parts first, the sheet streamed, zip64 allowed) is complete when the block ends."""
    with zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
    ) as package:
        for name, data in _fixed_parts():
            package.writestr(name, data)
        with (
            package.open(SHEET_PART, "w", force_zip64=True) as raw,
            io.BufferedWriter(raw, WRITE_BUFFER) as sheet,
        ):
            sheet.write(SHEET_HEAD)
            yield sheet.write
            sheet.write(SHEET_TAIL)


def _fixed_parts() -> Iterable[tuple[str, bytes]]:
    """Every part but the sheet, as XlsxWriter writes them for a one-sheet workbook whose style 1 is the
    date format (the cell that makes it is in the sheet we replace)."""
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "default_date_format": DATE_FORMAT})
    workbook.add_worksheet(SHEET_NAME).write_datetime(0, 0, dt.datetime(2000, 1, 1))
    workbook.close()
    with zipfile.ZipFile(buffer) as template:
        return [(name, template.read(name)) for name in template.namelist() if name != SHEET_PART]


# --- XlsxWriter: the reference, and the writer of masked rows ------------------------------------------


def xlsxwriter_write(
    header: list[Any], rows: Iterable[list[Any]], path: str, progress: Progress, every: int, limit: int
) -> tuple[int, bool]:
    """Write the workbook with XlsxWriter in constant-memory mode (each row goes to disk as the next one
    starts); stops at `limit` rows and says so: (rows written, truncated).

    Cells keep their types: numbers (Decimal too) as numbers, dates as dates (`yyyy-mm-dd`), text as
    inline strings. XlsxWriter would turn a string starting with `=` into a formula and one that looks
    like a URL into a link; both are off (the caller neutralises text cells with safe_cell).
    It would also copy a string shaped like `<r>…</r>` into the sheet's XML unescaped (taken for rich
    text it made itself), where a value could plant a formula cell: see _write_rich_text_shaped_string.
    Its temporary files (the sheet's rows, the parts it zips) go in a directory of their own beside
    `path` (the job's directory), removed on every way out.
    """
    import xlsxwriter

    scratch = tempfile.mkdtemp(prefix="xlsxwriter.", dir=os.path.dirname(path) or None)
    try:
        workbook = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "tmpdir": scratch,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "default_date_format": DATE_FORMAT,
            },
        )
        try:
            written = _write_sheet(workbook, header, rows, progress, every, limit)
            workbook.close()
        except BaseException:
            # Stopped (cancelled, failed, killed by a time limit): close the sheet's open row file now
            # rather than whenever the collector gets to it; XlsxWriter has no public call for that but
            # close(), which would zip the rows written so far for nothing.
            for worksheet in workbook.worksheets():
                with contextlib.suppress(Exception):
                    worksheet._opt_close()
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return written


def _write_sheet(
    workbook: Any, header: list[Any], rows: Iterable[list[Any]], progress: Progress, every: int, limit: int
) -> tuple[int, bool]:
    sheet = workbook.add_worksheet(SHEET_NAME)
    sheet.add_write_handler(str, _write_rich_text_shaped_string)
    write_row = sheet.write_row
    _write_whole_row(sheet, 0, header)
    count = 0
    for cells in rows:
        if count >= limit:
            return count, True
        count += 1
        if write_row(count, 0, cells):
            _write_whole_row(sheet, count, cells)
        if count % every == 0:
            progress(count)
    return count, False


def _write_whole_row(sheet: Any, row: int, cells: list[Any]) -> None:
    """Every cell of the row, one by one: write_row stops at the first cell that is not written as given
    (a text cut at Excel's 32,767 units), dropping the rest of the row."""
    for col, value in enumerate(cells):
        sheet.write(row, col, value)


def _write_rich_text_shaped_string(sheet: Any, row: int, col: int, value: str, *args: Any) -> int | None:
    """XlsxWriter's handler for text cells: a value shaped like `<r>…</r>` is written as rich text of
    plain runs, which XlsxWriter escapes, so it reads back as the same text and never as XML of its own;
    None (every other value) lets XlsxWriter write the string as usual."""
    if not (value.startswith("<r>") and value.endswith("</r>")):
        return None
    cell_format = [arg for arg in args[:1] if arg is not None]  # write_row passes its format, None or not
    return sheet.write_rich_string(row, col, value[:1], value[1:2], value[2:], *cell_format)
