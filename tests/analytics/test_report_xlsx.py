"""XLSX reports (issue 18, item 19): rows rendered by Postgres, or by XlsxWriter when masked; the same
values as the CSV with their types, formula-looking text still neutralised, personal values masked, no
temporary file left behind."""

import csv
import datetime as dt
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.utils.escape import unescape

from analytics import reports, services
from analytics.models import ReportJob
from tests.analytics.factories import at, campaign_make, customer_make, metric_make

pytestmark = pytest.mark.django_db

FORMULA_LOOKING = ['=HYPERLINK("http://x","y")', "+1+2", "-3", "@SUM(A1)", "\tTAB", "\rCR"]
PLANTED_EMAIL = "zhang.wei.planted@example.com"
PLANTED_PHONE = "13987654321"


def _csv(source: reports.ReportSource) -> list[list[str]]:
    out = io.StringIO()
    reports.write_csv(source, out, progress=lambda n: None)
    return list(csv.reader(io.StringIO(out.getvalue().lstrip("\ufeff"))))


def _xlsx(source: reports.ReportSource, tmp_path: Path) -> list[list]:
    path = tmp_path / "report.xlsx"
    reports.write_xlsx(source, str(path), progress=lambda n: None)
    sheet = load_workbook(path).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def _same_as_csv(cell: object, text: str) -> bool:
    """An XLSX cell holds what the CSV says, with its type: a number, a date, or the same text."""
    if isinstance(cell, dt.datetime):  # openpyxl reads a date-formatted cell as a datetime
        return cell.time() == dt.time() and cell.date().isoformat() == text
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return Decimal(str(cell)) == Decimal(text)
    if cell is None:
        return text == ""
    return isinstance(cell, str) and cell == text


def _job(owner, kind: str, file_format: str = "xlsx") -> ReportJob:
    return ReportJob.objects.create(
        owner=owner, kind=kind, params={}, format=file_format, dedupe_key=f"{owner.pk}-{kind}-{file_format}"
    )


def _file_text(job: ReportJob) -> str:
    """Every part of the stored workbook, unzipped, as one text (to search the whole file)."""
    job.refresh_from_db()
    with job.file.open("rb") as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as book:
        return "".join(book.read(name).decode("utf-8") for name in book.namelist())


def test_campaign_metrics_xlsx_holds_the_csvs_values_with_their_types(requester, tmp_path):
    # given daily metrics with money, counts, dates and a campaign name that looks like a formula
    campaign = campaign_make(owner=requester, code="d11", name="=1+2")
    metric_make(campaign=campaign, date=dt.date(2026, 11, 2), channel="wechat", spend="12.50", clicks=3)
    metric_make(campaign=campaign, date=dt.date(2026, 11, 3), channel="douyin", revenue="1999.99")
    source = reports.campaign_metrics_source({}, "Asia/Shanghai", unmasked=False)

    # when the same report is written as CSV and as XLSX
    table = _csv(source)
    sheet = _xlsx(source, tmp_path)

    # then the XLSX has the CSV's rows, cell for cell, with numbers as numbers and dates as dates
    assert len(sheet) == len(table) == 3
    assert sheet[0] == table[0]
    for xlsx_row, csv_row in zip(sheet[1:], table[1:], strict=True):
        assert [_same_as_csv(c, t) for c, t in zip(xlsx_row, csv_row, strict=True)] == [True] * len(csv_row)
    first = sheet[1]
    assert isinstance(first[0], dt.datetime) and first[0].date() == dt.date(2026, 11, 2)
    assert first[2] == "'=1+2"  # text, neutralised like the CSV's
    assert isinstance(first[5], float) and first[5] == 12.5
    assert isinstance(first[7], int) and first[7] == 3


def test_customers_xlsx_holds_the_csvs_values_for_a_viewer_with_view_pii(tmp_path):
    # given a customer with text, a birth date and a signup time (text in the owner's time zone)
    customer_make(
        "c-1", name="李雷", email="li@example.com", phone="13800000000", city="上海",
        gender="m", birth_date=dt.date(1990, 5, 17), signup_at=at(2, 17), source_channel="wechat",
    )  # fmt: skip
    customer_make("c-2")  # every optional value empty
    source = reports.customers_source({}, "Asia/Shanghai", unmasked=True)

    # when written both ways
    table = _csv(source)
    sheet = _xlsx(source, tmp_path)

    # then the values agree, the birth date is a date and the empty values are empty cells
    assert sheet[0] == table[0]
    for xlsx_row, csv_row in zip(sheet[1:], table[1:], strict=True):
        assert [_same_as_csv(c, t) for c, t in zip(xlsx_row, csv_row, strict=True)] == [True] * len(csv_row)
    assert sheet[1][6] == dt.datetime(1990, 5, 17) and sheet[1][7] == "2026-11-03 01:00:00"
    assert sheet[2][1:7] == [None] * 6


def test_formula_looking_text_is_neutralised_and_no_cell_is_a_formula(requester, tmp_path):
    # given customers whose names start like formulas
    for n, name in enumerate(FORMULA_LOOKING):
        customer_make(f"c-{n}", name=name)
    source = reports.customers_source({}, "Asia/Shanghai", unmasked=True)

    # when written as XLSX
    path = tmp_path / "report.xlsx"
    reports.write_xlsx(source, str(path), progress=lambda n: None)

    # then each name is text with the quote in front, as in the CSV, and the sheet has no formula at all
    # (a control character is stored as Excel's `_xHHHH_` escape, which openpyxl leaves as it is)
    sheet = load_workbook(path).active
    names = [unescape(row[1]) for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert names == ["'" + name for name in FORMULA_LOOKING]
    assert [row[1] for row in _csv(source)[1:]] == names
    with zipfile.ZipFile(path) as book:
        sheet_xml = book.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml


def test_text_shaped_like_rich_text_xml_cannot_plant_a_formula(tmp_path):
    # given a name that XlsxWriter's constant-memory mode would copy into the sheet's XML unescaped
    planted = '<r><t>x</t></r></is></c><c r="Z2"><f>1+1</f></c><c t="inlineStr"><is><r><t>y</t></r>'
    customer_make("c-1", name=planted)
    source = reports.customers_source({}, "Asia/Shanghai", unmasked=True)

    # when written as XLSX
    path = tmp_path / "report.xlsx"
    reports.write_xlsx(source, str(path), progress=lambda n: None)

    # then the cell reads back as that text, and the sheet has no formula and no cell Z2
    sheet = load_workbook(path).active
    assert sheet["B2"].value == planted and sheet.max_column == 9
    with zipfile.ZipFile(path) as book:
        sheet_xml = book.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and '<c r="Z2"' not in sheet_xml


def test_personal_values_never_appear_in_the_xlsx_of_a_viewer_without_view_pii(analyst):
    # given a customer with a known e-mail and phone, in a tag, and an owner without view_pii
    from tests.analytics.factories import membership_make, tag_make

    customer = customer_make("c-1", name="Zhang Wei", email=PLANTED_EMAIL, phone=PLANTED_PHONE)
    membership_make(tag_make("vip"), customer, at(1))

    for kind in ("customers", "tag_members"):
        # when the owner's XLSX report runs
        job = _job(analyst, kind)
        services.report_job_run(job_id=job.pk)

        # then nowhere in the whole file (every part of the zip) is the e-mail or phone, in any piece
        text = _file_text(job)
        assert ReportJob.objects.get(pk=job.pk).status == "done"
        for secret in (PLANTED_EMAIL, "zhang.wei.planted", PLANTED_PHONE, "87654321", "Zhang Wei"):
            assert secret not in text, (kind, secret)
        # and their masked forms are there instead
        assert "z***@example.com" in text and "139****4321" in text


@pytest.mark.parametrize("unmasked", [False, True], ids=["xlsxwriter", "sql-rows"])
def test_a_writer_stopped_midway_leaves_only_the_path_it_was_given(tmp_path, unmasked):
    # given a report of 12 customers whose progress callback fails at the first beat (a cancel)
    for n in range(12):
        customer_make(f"c-{n}")
    source = reports.customers_source({}, "Asia/Shanghai", unmasked=unmasked)
    path = tmp_path / "report.xlsx"

    def stop(rows: int) -> None:
        raise services.ReportJobStopped(0)

    # when it writes
    with pytest.raises(services.ReportJobStopped):
        reports.write_xlsx(source, str(path), progress=stop, every=2)

    # then XlsxWriter's directory of row files is gone (only the output path may be left)
    assert [p.name for p in tmp_path.iterdir() if p.name != "report.xlsx"] == []


@pytest.mark.parametrize("unmasked", [False, True], ids=["xlsxwriter", "sql-rows"])
def test_a_finished_writer_leaves_only_its_workbook(tmp_path, unmasked):
    customer_make("c-1")
    reports.write_xlsx(
        reports.customers_source({}, "Asia/Shanghai", unmasked=unmasked),
        str(tmp_path / "report.xlsx"),
        progress=lambda n: None,
    )
    assert [p.name for p in tmp_path.iterdir()] == ["report.xlsx"]
