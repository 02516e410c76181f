"""Reading uploaded CSV files for all-or-nothing imports, with errors that name row, column and reason.

Every importer (customers, events, campaign metrics, touchpoints...) validates a whole file first and
raises `ImportRejected` with every bad row (the first 1,000) before anything is written. The API turns
it into 400 `{"errors": [{"row", "column", "message"}]}`; commands print the same list.
"""

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import IO

from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework import status
from rest_framework.exceptions import APIException

from config.inputs import BAD_TEXT, text_problem

MAX_ERRORS = 1000


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based line number in the file; the header is row 1
    column: str
    message: str


class ImportRejected(APIException):
    """A file with at least one bad row: nothing of it is written."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "import_rejected"

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors[:MAX_ERRORS]
        self.total = len(errors)
        super().__init__(detail={"errors": [asdict(e) for e in self.errors]})
        first = self.errors[0] if self.errors else None
        summary = self.summary()
        if first:
            summary += " " + _("First: row %(row)d, %(column)s: %(message)s") % asdict(first)
        self.detail = {"detail": summary, "errors": [asdict(e) for e in self.errors]}

    def summary(self) -> str:
        return ngettext(
            "%(count)d bad row; nothing was imported.",
            "%(count)d bad rows; nothing was imported.",
            self.total,
        ) % {"count": self.total}

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [
            "  " + _("row %(row)d, column %(column)s: %(message)s") % {**asdict(e), "column": e.column or "-"}
            for e in self.errors
        ]
        return "\n".join(lines)


class ErrorCollector:
    """Collects row errors; `full` tells a validator it can stop scanning."""

    def __init__(self) -> None:
        self.errors: list[RowError] = []

    def add(self, row: int, column: str, message: str) -> None:
        self.errors.append(RowError(row=row, column=column, message=message))

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_ERRORS

    def raise_if_any(self) -> None:
        if self.errors:
            raise ImportRejected(self.errors)


def open_text(upload: IO[bytes] | IO[str]) -> IO[str]:
    """A text stream over an uploaded or opened file, UTF-8 (a BOM is dropped)."""
    if isinstance(upload, io.TextIOBase):
        return upload
    return codecs.getreader("utf-8-sig")(upload, errors="strict")


def read_rows(
    upload: IO[bytes] | IO[str], required: list[str]
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Check the header and return it with an iterator of (row number, {column: value}).

    A missing required column rejects the file at once (row 1). Rows with the wrong number of
    cells are reported by the caller's collector through the `None` key csv.DictReader leaves.
    """
    text = open_text(upload)
    try:
        reader = csv.DictReader(text)
        header = [h.strip() for h in (reader.fieldnames or [])]
    except UnicodeDecodeError as exc:
        raise ImportRejected([RowError(row=1, column="", message=_not_utf8(exc))]) from exc
    except csv.Error as exc:
        raise ImportRejected([_unreadable(1, exc)]) from exc
    missing = [c for c in required if c not in header]
    if not header:
        raise ImportRejected([RowError(row=1, column="", message=_("The file is empty."))])
    if missing:
        raise ImportRejected(
            [
                RowError(row=1, column=c, message=_("Required column is missing from the header."))
                for c in missing
            ]
        )
    for name in header:
        _check_cell(1, name, name)
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise ImportRejected(
            [RowError(row=1, column=c, message=_("Column appears twice in the header.")) for c in duplicated]
        )
    reader.fieldnames = header

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            for record in reader:
                # one search per row; only a row with a hit is looked at cell by cell
                if (
                    BAD_TEXT.search("".join(v for v in record.values() if isinstance(v, str)))
                    or None in record
                ):
                    for column, value in record.items():
                        for cell in value if isinstance(value, list) else [value]:
                            if cell:
                                _check_cell(reader.line_num, column or "", cell)
                yield reader.line_num, record
        except UnicodeDecodeError as exc:
            raise ImportRejected(
                [
                    RowError(
                        row=reader.line_num + 1,
                        column="",
                        message=_not_utf8(exc),
                    )
                ]
            ) from exc
        except csv.Error as exc:
            raise ImportRejected([_unreadable(reader.line_num + 1, exc)]) from exc

    return header, rows()


def _check_cell(row: int, column: str, value: str) -> None:
    """A cell holding NUL (or an unpaired surrogate, from a text stream) rejects the file: it is no text
    the database can store, so no importer ever sees one (config.inputs decides what text is)."""
    problem = text_problem(value)
    if problem is not None:
        raise ImportRejected([RowError(row=row, column=column, message=problem.message)])


def _unreadable(row: int, exc: csv.Error) -> RowError:
    """A row the CSV reader cannot read (e.g. a bare carriage return inside a line of a text stream)."""
    return RowError(
        row=row, column="", message=_("The row is not readable CSV: %(reason)s.") % {"reason": exc}
    )


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return _("The file is not UTF-8 text: %(reason)s.") % {"reason": exc.reason}
