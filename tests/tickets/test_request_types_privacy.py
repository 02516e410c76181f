"""A customer's e-mail and phone typed into a request-type text field never reach a viewer without
view_pii: not on the ticket page, not in the API, not in the queue CSV or the report job."""

import csv
import io

import pytest

from analytics import services as analytics_services
from analytics.models import ReportJob
from tests.tickets.factories import make_ticket
from tickets import request_types

pytestmark = pytest.mark.django_db
EMAIL = "lily.chen@example.cn"
PHONE = "13912345678"


@pytest.fixture
def planted(requester, manager):
    export = request_types.request_type_save(
        team=requester.team,
        by=manager,
        name="Customer fix",
        default_type="data_support",
        default_urgency="routine",
        fields=[{"name": "who", "label": "Customer", "kind": "text", "required": True}],
    )
    return make_ticket(requester, request_type=export, custom_fields={"who": f"{EMAIL} / {PHONE}"})


def _hidden(body: str) -> bool:
    return EMAIL not in body and PHONE not in body


def test_ticket_page_masks_for_viewers_without_view_pii(client_for, planted, requester, agent, manager):
    assert _hidden(client_for(requester).get(planted.get_absolute_url()).content.decode())
    assert _hidden(client_for(agent).get(planted.get_absolute_url()).content.decode())
    # the manager holds view_pii
    assert EMAIL in client_for(manager).get(planted.get_absolute_url()).content.decode()


def test_api_masks_for_viewers_without_view_pii(api_for, planted, requester, manager):
    client = api_for(requester)
    for url in (
        f"/api/v1/tickets/{planted.key}/",
        f"/api/v1/tickets/{planted.key}/custom-fields/",
        "/api/v1/tickets/",
    ):
        assert _hidden(client.get(url).content.decode())
    assert PHONE in api_for(manager).get(f"/api/v1/tickets/{planted.key}/custom-fields/").content.decode()


def test_queue_export_masks_for_agents_without_view_pii(client_for, planted, agent):
    response = client_for(agent).get(f"/requests/queue/export/?request_type={planted.request_type_id}")
    assert _hidden(b"".join(response.streaming_content).decode("utf-8-sig"))


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_report_job_masks_for_owners_without_view_pii(planted, agent, file_format):
    job = ReportJob.objects.create(
        owner=agent,
        kind="tickets",
        params={"request_type": planted.request_type_id},
        format=file_format,
        dedupe_key="pii",
    )
    analytics_services.report_job_run(job_id=job.pk)
    job.refresh_from_db()
    with job.file.open("rb") as handle:
        raw = handle.read()
    if file_format == "csv":
        text = raw.decode("utf-8-sig")
        assert list(csv.reader(io.StringIO(text)))[0][-1] == "cf_who"
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(raw), read_only=True).active
        text = " ".join(str(c.value) for row in sheet.iter_rows() for c in row)
    assert _hidden(text)
