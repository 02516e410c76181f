"""Report kinds (what each export contains) and the streamed CSV/XLSX writers with progress callbacks."""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import psycopg
from django import forms
from django.db.models import CharField, F, Func, Q, QuerySet, Value
from django.utils.translation import gettext_lazy as _

from analytics import report_xlsx
from analytics.models import ReportJob
from campaigns.models import DailyMetric
from config.csv_export import FORMULA_PREFIXES, safe_cell
from config.db_router import read_connection
from crm_tags.models import CUSTOMER_FILE_COLUMNS, Customer, TagMembership
from privacy import personal_data
from tickets.models import Ticket

# Excel's sheet limit is 1,048,576 rows, one of which is the header.
XLSX_MAX_DATA_ROWS = 1_048_575
CHUNK_ROWS = 5000


class LocalTime(Func):
    """`to_char(timezone(tz, field), 'YYYY-MM-DD HH24:MI:SS')`: formatted in SQL, in the owner's zone."""

    template = "to_char(timezone(%(expressions)s), 'YYYY-MM-DD HH24:MI:SS')"
    output_field = CharField()

    def __init__(self, field: str, tz: str) -> None:
        super().__init__(Value(tz), F(field))


class ReportParamsForm(forms.Form):
    """Parameters every report understands (unused ones are ignored by a kind); dates are whole days."""

    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    team = forms.IntegerField(label=_("Team id"), required=False, min_value=1, widget=forms.HiddenInput)
    request_type = forms.IntegerField(
        label=_("Request type id"),
        required=False,
        min_value=1,
        help_text=_("Requests: only this request type, with a column per field of it."),
    )
    channel = forms.CharField(label=_("Channel"), required=False, max_length=40)
    campaign = forms.CharField(label=_("Campaign code"), required=False, max_length=60)
    urgency = forms.ChoiceField(
        label=_("Urgency"), required=False, choices=[("", _("Any urgency"))] + list(Ticket.Urgency.choices)
    )
    status = forms.CharField(label=_("Status"), required=False, max_length=24, widget=forms.HiddenInput)
    tag = forms.SlugField(
        label=_("Tag (slug)"),
        required=False,
        max_length=64,
        help_text=_("Tag members: one tag, or leave empty for all tags."),
    )

    def __init__(self, data: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # None stays None: an unbound form (a page's first load) shows no "required" errors.
        if data is not None:
            # The API speaks `from`/`to`, like the dashboards.
            data = data.dict() if hasattr(data, "dict") else dict(data)
            for public, field in (("from", "date_from"), ("to", "date_to")):
                if public in data:
                    data.setdefault(field, data.pop(public))
        super().__init__(data, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The end date must not be before the start date."))
        return data

    def normalised(self) -> dict[str, Any]:
        """The non-empty parameters as JSON values in a stable order (the de-duplication input)."""
        out: dict[str, Any] = {}
        for name in sorted(self.cleaned_data):
            value = self.cleaned_data[name]
            if value in (None, ""):
                continue
            key = {"date_from": "from", "date_to": "to"}.get(name, name)
            out[key] = value.isoformat() if isinstance(value, dt.date) else value
            if isinstance(out[key], str):
                out[key] = (
                    out[key].strip().lower() if name in ("channel", "campaign", "tag") else out[key].strip()
                )
        return out


@dataclass(frozen=True)
class ReportSource:
    """The header, the rows (as a values_list queryset) and which columns are text to neutralise/mask."""

    header: list[str]
    queryset: QuerySet
    text_columns: tuple[int, ...]
    masks: dict[int, Callable[[Any], Any]]


def _bounds(params: dict[str, Any], tz: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    zone = zoneinfo.ZoneInfo(tz)
    start = end = None
    if params.get("from"):
        start = dt.datetime.combine(dt.date.fromisoformat(params["from"]), dt.time.min, tzinfo=zone)
    if params.get("to"):
        end = dt.datetime.combine(
            dt.date.fromisoformat(params["to"]) + dt.timedelta(days=1), dt.time.min, tzinfo=zone
        )
    return start, end


def _tickets(params: dict[str, Any], tz: str) -> QuerySet[Ticket]:
    qs = Ticket.objects.all()
    start, end = _bounds(params, tz)
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lt=end)
    for name, lookup in (
        ("team", "team_id"),
        ("request_type", "request_type_id"),
        ("urgency", "urgency"),
        ("channel", "channel"),
        ("campaign", "campaign__code"),
    ):
        if params.get(name):
            qs = qs.filter(**{lookup: params[name]})
    if params.get("status") == "open":
        qs = qs.filter(status__in=Ticket.OPEN_STATUSES)
    elif params.get("status"):
        qs = qs.filter(status=params["status"])
    return qs


TICKET_COLUMNS = [
    ("key", "key"),
    ("title", "title"),
    ("type", "type"),
    ("urgency", "urgency"),
    ("status", "status"),
    ("channel", "channel"),
    ("team", "team__name"),
    ("requester", "requester__username"),
    ("assignee", "assignee__username"),
    ("campaign", "campaign__code"),
]
TICKET_TIMES = [
    "created_at",
    "first_response_due",
    "first_response_at",
    "resolution_due",
    "resolved_at",
    "closed_at",
]


def _ticket_source(qs: QuerySet[Ticket], tz: str, extra: list[tuple[str, Any]] | None = None) -> ReportSource:
    extra = extra or []
    times = {f"t_{name}": LocalTime(name, tz) for name in TICKET_TIMES}
    annotations = {**times, **{f"x_{name}": expr for name, expr in extra}}
    fields = [path for _name, path in TICKET_COLUMNS] + ["sla_state"] + list(annotations)
    header = (
        [name for name, _path in TICKET_COLUMNS] + ["sla_state"] + TICKET_TIMES + [name for name, _e in extra]
    )
    return ReportSource(
        header=header,
        queryset=qs.annotate(**annotations).order_by("id").values_list(*fields),
        text_columns=tuple(range(len(TICKET_COLUMNS))),
        masks={},
    )


def tickets_source(params: dict[str, Any], tz: str, unmasked: bool) -> ReportSource:
    from dataclasses import replace

    from tickets.request_types import export_columns

    # a chosen request type: a column per field of it (staff-written text, so formula-guarded too)
    custom = export_columns(params.get("request_type"))
    source = _ticket_source(_tickets(params, tz), tz, extra=custom)
    added = range(len(source.header) - len(custom), len(source.header))
    # their text may quote a customer: e-mail addresses and phone numbers masked without view_pii
    masks = {} if unmasked else dict.fromkeys(added, personal_data.scrub_text)
    return replace(source, text_columns=(*source.text_columns, *added), masks={**source.masks, **masks})


def sla_breaches_source(params: dict[str, Any], tz: str, unmasked: bool) -> ReportSource:
    """Tickets that missed a target: answered or resolved late, or flagged breached by the SLA clock."""
    from django.db.models import Case, When

    late_first = Q(first_response_at__gt=F("first_response_due"))
    late_resolution = Q(resolved_at__gt=F("resolution_due"))
    qs = _tickets(params, tz).filter(late_first | late_resolution | Q(sla_state=Ticket.SlaState.BREACHED))
    missed = Case(
        When(late_first & late_resolution, then=Value("first_response+resolution")),
        When(late_first, then=Value("first_response")),
        When(late_resolution, then=Value("resolution")),
        default=Value("open_overdue"),
        output_field=CharField(),
    )
    return _ticket_source(qs, tz, extra=[("missed", missed)])


def campaign_metrics_source(params: dict[str, Any], tz: str, unmasked: bool) -> ReportSource:
    qs = DailyMetric.objects.all()
    if params.get("from"):
        qs = qs.filter(date__gte=params["from"])
    if params.get("to"):
        qs = qs.filter(date__lte=params["to"])
    if params.get("team"):
        qs = qs.filter(campaign__team_id=params["team"])
    if params.get("channel"):
        qs = qs.filter(channel=params["channel"])
    if params.get("campaign"):
        qs = qs.filter(campaign__code=params["campaign"])
    fields = [
        "date",
        "campaign__code",
        "campaign__name",
        "campaign__team__name",
        "channel",
        "spend",
        "impressions",
        "clicks",
        "leads",
        "conversions",
        "revenue",
    ]
    return ReportSource(
        header=[
            "date",
            "campaign",
            "campaign_name",
            "team",
            "channel",
            "spend",
            "impressions",
            "clicks",
            "leads",
            "conversions",
            "revenue",
        ],
        queryset=qs.order_by("date", "campaign_id", "channel").values_list(*fields),
        text_columns=(1, 2, 3, 4),
        masks={},
    )


def tag_members_source(params: dict[str, Any], tz: str, unmasked: bool) -> ReportSource:
    qs = TagMembership.objects.all()
    if params.get("tag"):
        qs = qs.filter(tag__slug=params["tag"])
    fields = [
        "tag__slug",
        "customer__external_id",
        "customer__name",
        "customer__email",
        "customer__phone",
        "customer__city",
        "t_since",
    ]
    return ReportSource(
        header=["tag", "external_id", "name", "email", "phone", "city", "since"],
        queryset=qs.annotate(t_since=LocalTime("since", tz))
        .order_by("tag_id", "customer_id")
        .values_list(*fields),
        text_columns=(0, 1, 2, 3, 4, 5),
        masks=personal_data.row_maskers(unmasked=unmasked, columns={2: "name", 3: "email", 4: "phone"}),
    )


def customers_source(params: dict[str, Any], tz: str, unmasked: bool) -> ReportSource:
    qs = Customer.objects.all()
    start, end = _bounds(params, tz)
    if start:
        qs = qs.filter(signup_at__gte=start)
    if end:
        qs = qs.filter(signup_at__lt=end)
    if params.get("channel"):
        qs = qs.filter(source_channel=params["channel"])
    # the signup time in the viewer's time zone, in its place among the customer file's columns
    fields = ["t_signup" if column == "signup_at" else column for column in CUSTOMER_FILE_COLUMNS]
    return ReportSource(
        header=list(CUSTOMER_FILE_COLUMNS),
        queryset=qs.annotate(t_signup=LocalTime("signup_at", tz)).order_by("id").values_list(*fields),
        text_columns=(0, 1, 2, 3, 4, 5, 8),
        masks=personal_data.row_maskers(
            unmasked=unmasked, columns={1: "name", 2: "email", 3: "phone", 6: "birth_date"}
        ),
    )


# kinds whose files carry customers' personal values (masked unless the owner has view_pii)
PERSONAL_KINDS = (ReportJob.Kind.TAG_MEMBERS, ReportJob.Kind.CUSTOMERS)

SOURCES: dict[str, Callable[[dict[str, Any], str, bool], ReportSource]] = {
    ReportJob.Kind.TICKETS: tickets_source,
    ReportJob.Kind.SLA_BREACHES: sla_breaches_source,
    ReportJob.Kind.CAMPAIGN_METRICS: campaign_metrics_source,
    ReportJob.Kind.TAG_MEMBERS: tag_members_source,
    ReportJob.Kind.CUSTOMERS: customers_source,
}


def safe_rows(source: ReportSource) -> Iterator[list[Any]]:
    """Rows from the database (server-side cursor, in chunks), masked and formula-safe."""
    text = source.text_columns
    masks = source.masks
    for row in source.queryset.iterator(chunk_size=CHUNK_ROWS):
        cells = list(row)
        for index, mask in masks.items():
            cells[index] = mask(cells[index])
        for index in text:
            cells[index] = safe_cell(cells[index])
        yield cells


Progress = Callable[[int], None]


def write_csv(
    source: ReportSource, out: IO[str], progress: Progress, every: int = CHUNK_ROWS
) -> tuple[int, bool]:
    """Write the header and every row (UTF-8 BOM first, for Excel); returns (rows, truncated=False).

    Without masks the rows come straight from Postgres' COPY (the fast path: a million rows in
    seconds), with the formula guard applied in SQL; with masks they go through Python.
    """
    writer = csv.writer(out, lineterminator="\n")
    out.write("\ufeff")
    writer.writerow([safe_cell(h) for h in source.header])
    if not source.masks:
        return _copy_csv(source, out, progress, every), False
    rows = 0
    for cells in safe_rows(source):
        writer.writerow(cells)
        rows += 1
        if rows % every == 0:
            progress(rows)
    return rows, False


# config.csv_export.safe_cell's rule as a Postgres regular expression, built from the same prefixes.
FORMULA_REGEX = "^[" + "".join(p for p in FORMULA_PREFIXES if p != "-") + "-]"
# The same rule as code points (every prefix is one character), for ascii() in the COPY statement.
FORMULA_CODE_POINTS = ", ".join(str(ord(p)) for p in FORMULA_PREFIXES if len(p) == 1)


def _copy_csv(source: ReportSource, out: IO[str], progress: Progress, every: int) -> int:
    """`COPY (SELECT ...) TO STDOUT` in CSV, text columns neutralised like safe_cell; returns the row count."""
    sql, params = source.queryset.query.sql_with_params()
    columns = [f"c{i}" for i in range(len(source.header))]
    # The first character's code point against the prefixes: about half the cost of the same regular
    # expression per cell (millions of cells per report).
    select = ", ".join(
        f"CASE WHEN ascii(r.{c}::text) IN ({FORMULA_CODE_POINTS}) THEN '''' || r.{c}::text ELSE r.{c}::text END"
        if i in source.text_columns
        else f"r.{c}"
        for i, c in enumerate(columns)
    )
    # Built from the ORM's own compiled SQL and fixed fragments; every value stays a bound parameter.
    statement = f"COPY (SELECT {select} FROM ({sql}) AS r({', '.join(columns)})) TO STDOUT WITH (FORMAT csv)"  # noqa: S608
    with copy_cursor() as (cursor, live):
        rows = _stream_copy(cursor, statement, list(params), out, progress if live else None, every)
    if not live:
        progress(rows)
    return rows


@contextlib.contextmanager
def copy_cursor() -> Iterator[tuple[psycopg.Cursor, bool]]:
    """A cursor for a `COPY ... TO STDOUT`, and whether progress may be reported while it streams.

    Outside a transaction (a Celery worker) the COPY runs on a connection of its own, so progress
    and heartbeat updates can go through Django's connection while it streams (live). Inside one (tests,
    or a caller's atomic block) it must share that transaction's view, so it runs on Django's
    connection and progress is reported when it ends. Inside `replica_reads()` the connection is the
    replica's when it serves (config/db_router.py).
    """
    reads = read_connection
    if reads.in_atomic_block:
        with reads.cursor() as cursor:
            yield cursor.cursor, False
        return
    settings = {
        k: v for k, v in reads.get_connection_params().items() if k not in ("cursor_factory", "context")
    }
    # One transaction, so SET LOCAL holds for the COPY behind a transaction-mode pooler too (a session SET
    # would stay on a pooled server connection that other clients then get).
    with psycopg.connect(**settings, autocommit=True) as own, own.transaction(), own.cursor() as cursor:
        # The report's ORDER BY sorts every row: in memory rather than in temporary files.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        yield cursor, True


def _stream_copy(
    cursor: psycopg.Cursor,
    statement: str,
    arguments: list[Any],
    out: IO[str],
    progress: Progress | None,
    every: int,
) -> int:
    decoder = codecs.getincrementaldecoder("utf-8")()

    def write(block: bytes) -> None:
        out.write(decoder.decode(block))

    rows = _copy_lines(cursor, statement, arguments, write, progress, every)
    out.write(decoder.decode(b"", final=True))
    return rows


def _copy_lines(
    cursor: psycopg.Cursor,
    statement: str,
    arguments: list[Any],
    write: Callable[[bytes], Any],
    progress: Progress | None,
    every: int,
) -> int:
    """Stream a COPY's output into `write`, progress every `every` lines; returns the lines (rows)."""
    lines = 0
    next_report = every
    with cursor.copy(statement, arguments) as copy:
        for block in copy:
            data = bytes(block)
            write(data)
            lines += data.count(b"\n")
            if progress is not None and lines >= next_report:
                progress(lines)
                next_report = lines + every
    return cursor.rowcount


def write_xlsx(
    source: ReportSource,
    path: str,
    progress: Progress,
    every: int = CHUNK_ROWS,
    limit: int = XLSX_MAX_DATA_ROWS,
) -> tuple[int, bool]:
    """Write the workbook; stops at Excel's own row limit and says so: (rows, truncated).

    The rows come from Postgres already as the sheet's XML (report_xlsx: a million rows in seconds); a
    report whose personal values are masked in Python, or with a column type the SQL does not render,
    goes through XlsxWriter, which writes the same cells.
    """
    header = [safe_cell(h) for h in source.header]
    kinds = None if source.masks else _column_kinds(source)
    if kinds is None:
        return report_xlsx.xlsxwriter_write(header, safe_rows(source), path, progress, every, limit)
    sql, params = source.queryset.query.sql_with_params()
    rows_sql = report_xlsx.rows_select_sql(
        sql, kinds, source.text_columns, FORMULA_CODE_POINTS, first_row=2, limit=limit
    )
    with report_xlsx.sheet_package(path) as write, copy_cursor() as (cursor, live):
        cursor.execute(report_xlsx.header_select_sql(len(header)), header)
        write(cursor.fetchone()[0].encode())
        lines = _copy_lines(
            cursor, f"COPY ({rows_sql}) TO STDOUT", list(params), write, progress if live else None, every
        )
    rows = min(lines, limit)
    progress(rows)
    return rows, lines > limit


def _column_kinds(source: ReportSource) -> list[str] | None:
    """What report_xlsx renders each column as, from the query's result description (not run)."""
    sql, params = source.queryset.query.sql_with_params()
    with read_connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) AS r LIMIT 0", params)  # noqa: S608
        return report_xlsx.column_kinds(cursor.description)


def report_source(job: ReportJob, tz: str, unmasked: bool) -> ReportSource:
    return SOURCES[job.kind](job.params, tz, unmasked)


def count_rows(source: ReportSource) -> int:
    return source.queryset.order_by().count()


def report_filename(job: ReportJob) -> str:
    stamp = (job.created_at or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M")
    return f"{job.kind}-{stamp}-{job.pk}.{job.format}"
