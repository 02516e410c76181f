"""Metrics import: rows that look wrong (more clicks than impressions, days to come) are warnings the person
confirms before anything is written; NaN and infinity "must be a number" (issue 17)."""

import datetime as dt
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from accounts.models import AuditEntry
from campaigns import services
from campaigns.models import DailyMetric
from config.csv_import import ImportRejected
from tests.campaigns.factories import csv_bytes
from tests.conftest import in_english

pytestmark = pytest.mark.django_db
HEADER = "date,channel,spend,impressions,clicks,leads,conversions,revenue"
CLICKS_OVER = "2026-06-01,wechat,10,100,150,1,1,20"  # 150 clicks on 100 impressions
FINE = "2026-06-02,wechat,10,1000,50,1,1,20"


def tomorrow() -> str:
    return (timezone.localdate() + dt.timedelta(days=1)).isoformat()


def stream(lines: list[str]) -> io.BytesIO:
    return io.BytesIO(csv_bytes(lines))


def upload(lines: list[str]) -> io.BytesIO:
    f = stream(lines)
    f.name = "m.csv"
    return f


# --- service ------------------------------------------------------------------------------------


def test_clicks_above_impressions_need_confirming_and_nothing_is_written(campaign, requester):
    with pytest.raises(services.ImportNeedsConfirmation) as info:
        services.metrics_import(campaign=campaign, upload=stream([HEADER, FINE, CLICKS_OVER]), by=requester)
    assert [(w.row, w.column) for w in info.value.warnings] == [(3, "clicks")]
    assert "150" in info.value.warnings[0].message and "100" in info.value.warnings[0].message
    assert not DailyMetric.objects.exists()


def test_a_day_after_today_needs_confirming(campaign, requester):
    with pytest.raises(services.ImportNeedsConfirmation) as info:
        services.metrics_import(
            campaign=campaign, upload=stream([HEADER, f"{tomorrow()},wechat,1,10,1,0,0,0"]), by=requester
        )
    assert [(w.row, w.column) for w in info.value.warnings] == [(2, "date")]
    assert not DailyMetric.objects.exists()


def test_today_is_no_warning(campaign, requester):
    today = timezone.localdate().isoformat()
    assert (
        services.metrics_import(
            campaign=campaign, upload=stream([HEADER, f"{today},wechat,1,10,1,0,0,0"]), by=requester
        )
        == 1
    )


def test_confirmed_warnings_are_imported_and_audited(campaign, requester):
    count = services.metrics_import(
        campaign=campaign, upload=stream([HEADER, CLICKS_OVER]), by=requester, confirm=True
    )
    assert count == 1
    assert DailyMetric.objects.get(campaign=campaign).clicks == 150
    audit = AuditEntry.objects.filter(action="campaign.metrics_import").latest("pk")
    assert audit.changes["warnings_confirmed_count"] == 1


def test_errors_come_before_warnings(campaign, requester):
    with pytest.raises(ImportRejected):
        services.metrics_import(
            campaign=campaign,
            upload=stream([HEADER, CLICKS_OVER, "2026-06-03,wechat,x,1,1,1,1,1"]),
            by=requester,
        )


@pytest.mark.parametrize("cell", ["NaN", "nan", "inf", "-inf", "Infinity", "abc"])
@pytest.mark.parametrize("column", ["spend", "impressions", "clicks", "revenue"])
def test_nan_and_infinity_must_be_a_number(campaign, requester, cell, column):
    values = dict(zip(HEADER.split(","), FINE.split(","), strict=True)) | {column: cell}
    with pytest.raises(ImportRejected) as info:
        services.metrics_import(
            campaign=campaign, upload=stream([HEADER, ",".join(values.values())]), by=requester
        )
    assert [(e.row, e.column, e.message) for e in info.value.errors] == [(2, column, "Must be a number.")]


def test_a_fraction_in_a_count_still_says_whole_number(campaign, requester):
    with pytest.raises(ImportRejected) as info:
        services.metrics_import(
            campaign=campaign, upload=stream([HEADER, "2026-06-01,wechat,1,1.5,1,1,1,1"]), by=requester
        )
    assert info.value.errors[0].message == "Enter a whole number."


def test_command_refuses_warnings_unless_confirmed(campaign, tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(csv_bytes([HEADER, CLICKS_OVER]))
    with pytest.raises(CommandError, match="row 2, column clicks"):
        call_command("import_campaign_metrics", campaign.code, str(path))
    out = io.StringIO()
    call_command("import_campaign_metrics", campaign.code, str(path), "--confirm", stdout=out)
    assert "1 row(s) imported" in out.getvalue()


# --- API ----------------------------------------------------------------------------------------


def api_url(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.code}/metrics/import/"


def test_api_answers_422_listing_the_warnings(api_for, requester, campaign):
    response = api_for(requester).post(
        api_url(campaign), {"file": upload([HEADER, CLICKS_OVER])}, format="multipart"
    )
    assert response.status_code == 422
    body = response.json()
    assert [(e["row"], e["column"], e["code"]) for e in body["errors"]] == [(2, "clicks", "warning")]
    assert "confirm=true" in body["detail"]
    assert not DailyMetric.objects.exists()


def test_api_imports_with_confirm(api_for, requester, campaign):
    response = api_for(requester).post(
        api_url(campaign), {"file": upload([HEADER, CLICKS_OVER]), "confirm": "true"}, format="multipart"
    )
    assert (response.status_code, response.json()) == (200, {"imported": 1})


def test_api_refuses_a_confirm_that_is_not_a_boolean(api_for, requester, campaign):
    response = api_for(requester).post(
        api_url(campaign), {"file": upload([HEADER, CLICKS_OVER]), "confirm": "maybe"}, format="multipart"
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["confirm"]


def test_api_confirm_is_denied_to_another_team(api_for, other_requester, campaign):
    response = api_for(other_requester).post(
        api_url(campaign), {"file": upload([HEADER, CLICKS_OVER]), "confirm": "true"}, format="multipart"
    )
    assert response.status_code == 404
    assert not DailyMetric.objects.exists()


def test_api_confirm_is_allowed_to_support_staff(api_for, agent, campaign):
    response = api_for(agent).post(
        api_url(campaign), {"file": upload([HEADER, CLICKS_OVER]), "confirm": "true"}, format="multipart"
    )
    assert response.status_code == 200


def test_schema_documents_confirm_and_the_422():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/campaigns/{code}/metrics/import/"]["post"]
    assert "422" in operation["responses"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "confirm" in schema["components"]["schemas"][body]["properties"]


# --- page ---------------------------------------------------------------------------------------


def page_url(campaign) -> str:
    return f"/campaigns/{campaign.code}/metrics/import/"


def csv_file(lines: list[str]) -> SimpleUploadedFile:
    return SimpleUploadedFile("m.csv", csv_bytes(lines), content_type="text/csv")


def pending_of(html: str) -> str:
    return re.search(r'name="pending" value="([^"]+)"', html).group(1)


def test_page_shows_the_warnings_and_writes_nothing(client_for, requester, campaign):
    in_english(requester)
    response = client_for(requester).post(page_url(campaign), {"file": csv_file([HEADER, CLICKS_OVER])})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="import-warnings"' in html and "More clicks (150) than impressions (100)." in html
    assert not DailyMetric.objects.exists()


def test_page_confirm_imports_the_file_that_was_checked(client_for, requester, campaign):
    client = client_for(requester)
    pending = pending_of(
        client.post(page_url(campaign), {"file": csv_file([HEADER, CLICKS_OVER])}).content.decode()
    )
    response = client.post(page_url(campaign), {"pending": pending, "confirm": "1"})
    assert response.status_code == 302
    assert DailyMetric.objects.get(campaign=campaign).clicks == 150


def test_page_confirm_of_someone_elses_file_is_refused(client_for, requester, agent, campaign):
    pending = pending_of(
        client_for(requester)
        .post(page_url(campaign), {"file": csv_file([HEADER, CLICKS_OVER])})
        .content.decode()
    )
    response = client_for(agent).post(page_url(campaign), {"pending": pending, "confirm": "1"})
    assert response.status_code == 302
    assert not DailyMetric.objects.exists()


def test_page_confirm_of_a_tampered_file_is_refused(client_for, requester, campaign):
    client = client_for(requester)
    pending = pending_of(
        client.post(page_url(campaign), {"file": csv_file([HEADER, CLICKS_OVER])}).content.decode()
    )
    client.post(page_url(campaign), {"pending": pending[:-2] + "xx", "confirm": "1"})
    assert not DailyMetric.objects.exists()


def test_page_confirm_is_denied_to_another_team(client_for, requester, other_requester, campaign):
    pending = pending_of(
        client_for(requester)
        .post(page_url(campaign), {"file": csv_file([HEADER, CLICKS_OVER])})
        .content.decode()
    )
    response = client_for(other_requester).post(page_url(campaign), {"pending": pending, "confirm": "1"})
    assert response.status_code == 404
    assert not DailyMetric.objects.exists()


def test_page_confirm_is_allowed_to_support_staff_with_their_own_file(client_for, agent, campaign):
    client = client_for(agent)
    pending = pending_of(
        client.post(page_url(campaign), {"file": csv_file([HEADER, CLICKS_OVER])}).content.decode()
    )
    assert client.post(page_url(campaign), {"pending": pending, "confirm": "1"}).status_code == 302
    assert DailyMetric.objects.filter(campaign=campaign).count() == 1


def test_page_without_warnings_imports_at_once(client_for, requester, campaign):
    response = client_for(requester).post(page_url(campaign), {"file": csv_file([HEADER, FINE])})
    assert response.status_code == 302
    assert DailyMetric.objects.count() == 1


def test_api_import_query_count_does_not_grow_with_rows(api_for, requester, campaign):
    client = api_for(requester)

    def statements(days: int, confirm: str) -> int:
        lines = [HEADER] + [f"2026-0{1 + d // 28}-{1 + d % 28:02d},wechat,0,10,20,0,0,0" for d in range(days)]
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                api_url(campaign), {"file": upload(lines), "confirm": confirm}, format="multipart"
            )
        assert response.status_code == (200 if confirm == "true" else 422)
        return len(captured.captured_queries)

    statements(2, "true")  # the viewer's permissions are loaded once and cached on the forced user
    # warned: the campaign; confirmed: the campaign, lock, delete, insert, audit, budget check
    assert statements(3, "false") == statements(60, "false")
    assert statements(3, "true") == statements(60, "true")
