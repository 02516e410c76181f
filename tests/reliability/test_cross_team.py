"""Cross-team access by id guessing, in pages and API: another team's objects answer 404/403 and
leak no data. (Each app's own tests check its allow paths; this file attacks them all together.)"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.campaigns.factories import campaign_make
from tests.tickets.factories import make_ticket

SECRET = "Secret-of-brand-team-7f3a"


@pytest.fixture
def brand_ticket(other_requester, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    upload = SimpleUploadedFile("plan.txt", f"{SECRET} attachment".encode(), content_type="text/plain")
    return make_ticket(other_requester, title=f"{SECRET} title", description=SECRET, files=[upload])


@pytest.fixture
def brand_campaign(other_requester):
    return campaign_make(owner=other_requester, name=f"{SECRET} campaign", code="brand-secret")


def _assert_hidden(response) -> None:
    assert response.status_code in (403, 404), response.status_code
    assert SECRET not in response.content.decode(errors="replace")


@pytest.mark.django_db
def test_ticket_page_and_api_of_another_team(client_for, api_for, requester, brand_ticket):
    _assert_hidden(client_for(requester).get(f"/requests/{brand_ticket.key}/"))
    api = api_for(requester)
    for path in ["", "comments/", "events/"]:
        _assert_hidden(api.get(f"/api/v1/tickets/{brand_ticket.key}/{path}"))
    for path, body in [
        ("transition/", {"to": "cancelled"}),
        ("comments/", {"body": "hi", "internal": False}),
        ("accept/", {}),
        ("reject/", {"reason": "no"}),
        ("rating/", {"score": 1, "comment": "x"}),
    ]:
        _assert_hidden(api.post(f"/api/v1/tickets/{brand_ticket.key}/{path}", body, format="json"))


@pytest.mark.django_db
def test_ticket_list_of_another_team_is_empty(api_for, requester, brand_ticket):
    body = api_for(requester).get("/api/v1/tickets/").json()
    assert body["count"] == 0
    assert SECRET not in str(body)


@pytest.mark.django_db
def test_attachment_of_another_team(client_for, requester, other_requester, brand_ticket):
    attachment = brand_ticket.attachments.get()
    _assert_hidden(client_for(requester).get(f"/requests/files/{attachment.pk}/"))
    # the owner's team gets it
    allowed = client_for(other_requester).get(f"/requests/files/{attachment.pk}/")
    assert allowed.status_code == 200
    assert SECRET.encode() in b"".join(allowed.streaming_content if allowed.streaming else [allowed.content])


@pytest.mark.django_db
def test_campaign_page_and_api_of_another_team(client_for, api_for, requester, brand_campaign):
    _assert_hidden(client_for(requester).get(f"/campaigns/{brand_campaign.code}/"))
    api = api_for(requester)
    for path in ["", "summary/", "attribution/?model=linear"]:
        _assert_hidden(api.get(f"/api/v1/campaigns/{brand_campaign.code}/{path}"))
    listing = api.get("/api/v1/campaigns/").json()
    assert SECRET not in str(listing)


@pytest.mark.django_db
def test_report_of_another_person(api_for, requester, manager):
    created = api_for(manager).post(
        "/api/v1/reports/", {"kind": "tickets", "params": {}, "format": "csv"}, format="json"
    )
    assert created.status_code == 202
    report_id = created.json()["id"]
    _assert_hidden(api_for(requester).get(f"/api/v1/reports/{report_id}/"))
    _assert_hidden(api_for(requester).get(f"/api/v1/reports/{report_id}/download/"))


@pytest.mark.django_db
def test_customer_contact_data_is_masked_for_requesters(api_for, client_for, requester, manager):
    from crm_tags.models import Customer

    Customer.objects.create(
        external_id="C-LEAK", name="Zhang", email="zhang.wei@example.com", phone="13812345678"
    )
    body = api_for(requester).get("/api/v1/customers/C-LEAK/").json()
    assert body["email"] == "z***@example.com"
    assert body["phone"] == "138****5678"
    page = client_for(requester).get("/customers/c/C-LEAK/").content.decode()
    assert "zhang.wei@example.com" not in page and "13812345678" not in page
    assert api_for(manager).get("/api/v1/customers/C-LEAK/").json()["email"] == "zhang.wei@example.com"
