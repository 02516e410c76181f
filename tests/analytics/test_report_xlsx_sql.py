"""XLSX rows rendered by Postgres (issue 18, item 19): the same cells as XlsxWriter writes (the reference),
read back with openpyxl, for any text, number and date; the row limit; progress and cancel while the
COPY streams."""

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from analytics import report_xlsx, reports, services
from analytics.models import ReportJob
from config.csv_export import safe_cell
from tests.analytics.factories import campaign_make, metric_make

pytestmark = pytest.mark.django_db

TABLE = "xlsx_property_rows"
COLUMNS = ["guarded", "plain", "small", "big", "money", "ratio", "day"]
HEADER = ["guarded", "=plain", "small", "big", "money", "ratio", "day"]

# Text that each take one of the SQL's branches: formula prefixes, XML's specials, what COPY escapes,
# Excel's own `_xHHHH_` escapes, control characters, non-characters, whitespace at the ends, CJK,
# characters beyond the BMP, and XlsxWriter's rich-text shape.
SPECIAL_TEXT = [
    "=1+2", "+1", "-3", "@SUM(A1)", "\tTAB", "\rCR", "a&b<c>d", "back\\slash", "tab\tin", "new\nline",
    "_x0041_", "_X0041_", "x_x00ff__x0042_", "\x01\x08\x0b\x1f", "\ufffe\uffff", " lead", "trail ", "\n",
    "张伟 上海", "😀🀄", "<r><t>x</t></r>", "</t></is></c><c><f>1+1</f></c>", "'quoted", "",
]  # fmt: skip
text = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40),
    st.lists(st.sampled_from(SPECIAL_TEXT), max_size=4).map("".join),
)
big_integers = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 10**16 + 1, 12345678901234567, 2**63 - 1, -(2**63)]),
)
rows = st.lists(
    st.tuples(
        st.none() | text,
        st.none() | text,
        st.none() | st.integers(-(2**31), 2**31 - 1),
        st.none() | big_integers,
        st.none() | st.decimals(min_value=-(10**12) + 1, max_value=10**12 - 1, places=2),
        st.none() | st.decimals(min_value=-(10**12) + 1, max_value=10**12 - 1, places=4),
        st.none() | st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(9999, 12, 31)),
    ),
    max_size=12,
)


@pytest.fixture
def table_model():
    """A temporary table of every column kind the SQL renders, and a model over it (not in any app)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {TABLE} (id serial PRIMARY KEY, guarded text, plain varchar(200),"
            " small integer, big bigint, money numeric(14, 2), ratio numeric(16, 4), day date)"
        )
    with isolate_apps("analytics"):

        class Row(models.Model):
            guarded = models.TextField(null=True)
            plain = models.CharField(max_length=200, null=True)
            small = models.IntegerField(null=True)
            big = models.BigIntegerField(null=True)
            money = models.DecimalField(max_digits=14, decimal_places=2, null=True)
            ratio = models.DecimalField(max_digits=16, decimal_places=4, null=True)
            day = models.DateField(null=True)

            class Meta:
                app_label = "analytics"
                db_table = TABLE
                managed = False

        yield Row


def _source(model: type[models.Model]) -> reports.ReportSource:
    return reports.ReportSource(
        header=HEADER,
        queryset=model.objects.order_by("id").values_list(*COLUMNS),
        text_columns=(0,),
        masks={},
    )


def _reference(source: reports.ReportSource, path: Path, limit: int = reports.XLSX_MAX_DATA_ROWS):
    header = [safe_cell(h) for h in source.header]
    return report_xlsx.xlsxwriter_write(
        header, reports.safe_rows(source), str(path), lambda n: None, 5000, limit
    )


def _cells(path: Path) -> dict[str, tuple[type, Any]]:
    """Every non-empty cell of the file's sheet, read back with openpyxl: coordinate → (type, value)."""
    sheet = load_workbook(path).active
    return {
        cell.coordinate: (type(cell.value), cell.value)
        for row in sheet.iter_rows()
        for cell in row
        if cell.value is not None
    }


def _rendered_by_sql(path: Path) -> bool:
    """Our package has no `<dimension>` (XlsxWriter's sheet always has one)."""
    with zipfile.ZipFile(path) as package:
        return b"<dimension" not in package.read("xl/worksheets/sheet1.xml")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=rows)
@example(values=[(t, t, None, None, None, None, None) for t in SPECIAL_TEXT])
@example(
    values=[
        (None, None, n, b, None, None, None)
        for n, b in [(-(2**31), 2**53 + 1), (2**31 - 1, -(2**53) - 3), (0, 10**16 - 1), (1, 10**16 - 3)]
    ]
    + [
        (None, None, None, 2**63 - 1, None, None, dt.date(1900, 2, 28)),
        (None, None, None, -(2**63), None, None, dt.date(1900, 3, 1)),
    ]
)
def test_the_sql_rendered_sheet_has_xlsxwriters_cells(table_model, tmp_path, values):
    # given rows of any text (guarded or not), integers, big integers, decimals, dates and empty values
    table_model.objects.all().delete()
    table_model.objects.bulk_create([table_model(**dict(zip(COLUMNS, row, strict=True))) for row in values])
    source = _source(table_model)

    # when the report is written by the SQL and by XlsxWriter
    ours, theirs = tmp_path / "sql.xlsx", tmp_path / "xlsxwriter.xlsx"
    written = reports.write_xlsx(source, str(ours), progress=lambda n: None)
    expected = _reference(source, theirs)

    # then openpyxl reads the same cells, type and value, from both (and ours came from the SQL)
    assert written == expected == (len(values), False)
    assert _rendered_by_sql(ours)
    assert _cells(ours) == _cells(theirs)


def test_text_beyond_excels_length_is_cut_like_xlsxwriter_cuts_it(table_model, tmp_path):
    # given texts over 32,767 UTF-16 units: characters beyond the BMP count twice, a guard adds one
    longs = ["a" + "😀" * 20000, "é" * 40000, "x" * 32767, "=" + "y" * 32767, "😀" * 16383 + "ab"]
    table_model.objects.bulk_create([table_model(guarded=value, plain=value[:200]) for value in longs])
    source = _source(table_model)

    # when written both ways
    reports.write_xlsx(source, str(tmp_path / "sql.xlsx"), progress=lambda n: None)
    _reference(source, tmp_path / "xlsxwriter.xlsx")

    # then the cut texts are the same (and none splits a character), and the rest of each row is there
    ours, theirs = _cells(tmp_path / "sql.xlsx"), _cells(tmp_path / "xlsxwriter.xlsx")
    assert ours == theirs
    assert ours["A2"][1] == "a" + "😀" * 16383 and ours["A5"][1] == "'=" + "y" * 32765
    assert [ours[f"B{row}"][1] for row in range(2, 7)] == [value[:200] for value in longs]


def test_a_decimal_that_is_not_a_number_is_an_empty_cell(table_model, tmp_path):
    # given a NaN in a decimal column (XlsxWriter refuses to write one)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (money, small) VALUES ('NaN', 7)")  # the ORM refuses NaN

    # when written
    reports.write_xlsx(_source(table_model), str(tmp_path / "sql.xlsx"), progress=lambda n: None)

    # then the cell is empty and the row is there
    cells = _cells(tmp_path / "sql.xlsx")
    assert "E2" not in cells and cells["C2"] == (int, 7)


def _metrics(requester, days: int) -> reports.ReportSource:
    campaign = campaign_make(owner=requester, code="big")
    for day in range(1, days + 1):
        metric_make(campaign=campaign, date=dt.date(2026, 11, day), channel="wechat", spend="1.50")
    return reports.campaign_metrics_source({}, "Asia/Shanghai", unmasked=False)


@pytest.mark.parametrize(("limit", "expected"), [(2, (2, True)), (3, (3, False)), (4, (3, False))])
def test_the_sheet_stops_at_the_row_limit_and_says_so(requester, tmp_path, limit, expected):
    # given three rows of campaign metrics
    source = _metrics(requester, 3)

    # when written with a row limit
    path = tmp_path / "sql.xlsx"
    written = reports.write_xlsx(source, str(path), progress=lambda n: None, limit=limit)

    # then it says whether it was cut, and the sheet holds the header and that many rows
    assert written == expected
    sheet = load_workbook(path).active
    assert sheet.max_row == 1 + expected[0]
    assert [c.value for c in sheet[sheet.max_row]][:2] == [dt.datetime(2026, 11, expected[0]), "big"]
    assert _rendered_by_sql(path)


@pytest.mark.django_db(transaction=True)
def test_progress_beats_while_the_copy_streams(requester, tmp_path):
    # given twelve rows and a worker's view (no transaction around the job)
    source = _metrics(requester, 12)
    seen = []

    def beat(rows: int) -> None:
        # Django's connection answers while the COPY streams on its own connection
        seen.append((rows, ReportJob.objects.count()))

    # when written with a beat every 5 rows
    written = reports.write_xlsx(source, str(tmp_path / "sql.xlsx"), progress=beat, every=5)

    # then the beats came as the rows streamed (a COPY block is a row), and the last one says every row
    assert written == (12, False)
    assert seen == [(5, 0), (10, 0), (12, 0)]
    assert load_workbook(tmp_path / "sql.xlsx").active.max_row == 13


@pytest.mark.django_db(transaction=True)
def test_a_job_cancelled_while_the_copy_streams_stops_and_keeps_no_file(analyst, requester, monkeypatch):
    # given a running XLSX job of 12 rows that is cancelled at its first progress beat
    _metrics(requester, 12)
    monkeypatch.setattr(services, "PROGRESS_INTERVAL_SECONDS", 0)
    write_xlsx = reports.write_xlsx
    monkeypatch.setattr(
        reports, "write_xlsx", lambda source, path, progress: write_xlsx(source, path, progress, 5)
    )
    job = ReportJob.objects.create(
        owner=analyst, kind="campaign_metrics", params={}, format="xlsx", dedupe_key="cancel-xlsx"
    )
    original = services._beat

    beats = []

    def cancel_then_beat(job_id: int, **fields: Any) -> None:
        if "rows" in fields:
            beats.append(fields["rows"])
            ReportJob.objects.filter(pk=job_id).update(status=ReportJob.Status.CANCELLED)
        original(job_id, **fields)

    monkeypatch.setattr(services, "_beat", cancel_then_beat)

    # when it runs
    services.report_job_run(job_id=job.pk)

    # then it stopped at that beat: cancelled with the rows of the last beat before, and no file
    job.refresh_from_db()
    assert (job.status, job.file.name or "", job.rows) == ("cancelled", "", 0)
    assert beats == [5]


def test_a_filtered_report_with_bound_parameters_has_xlsxwriters_cells(requester, tmp_path):
    # given a channel filter (a bound parameter in the query) and values whose SQL holds a `%`
    campaign = campaign_make(owner=requester, code="pct", name="100% off & more")
    metric_make(campaign=campaign, date=dt.date(2026, 11, 1), channel="wechat", impressions=2**53 + 1)
    metric_make(campaign=campaign, date=dt.date(2026, 11, 1), channel="douyin", impressions=5)
    source = reports.campaign_metrics_source({"channel": "wechat"}, "Asia/Shanghai", unmasked=False)

    # when written by the SQL and by XlsxWriter
    written = reports.write_xlsx(source, str(tmp_path / "sql.xlsx"), progress=lambda n: None)
    _reference(source, tmp_path / "xlsxwriter.xlsx")

    # then the one wechat row is there, the same in both
    cells = _cells(tmp_path / "sql.xlsx")
    assert written == (1, False) and _rendered_by_sql(tmp_path / "sql.xlsx")
    assert cells == _cells(tmp_path / "xlsxwriter.xlsx")
    assert cells["C2"] == (str, "100% off & more") and cells["G2"] == (int, 2**53)
