"""Request types per team: field validation per kind, filing with defaults, the API, the queue's `cf_`
filters and the exports' columns (tickets.request_types)."""

import csv
import io

import pytest
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError

from accounts.models import AuditEntry
from tests.tickets.factories import make_ticket
from tickets import request_types
from tickets.models import RequestType, Ticket

API = "/api/v1"
FIELDS = [
    {"name": "sku", "label": "SKU", "kind": "text", "required": True},
    {"name": "amount", "label": "Amount", "kind": "number", "required": True},
    {"name": "starts", "label": "Starts", "kind": "date"},
    {"name": "channel", "label": "Channel", "kind": "choice", "choices": ["app", "web", "mini"]},
    {"name": "owner", "label": "Owner", "kind": "user"},
    {"name": "promo", "label": "Promotion", "kind": "campaign"},
]


@pytest.fixture
def coupon(requester, manager):
    """ "Coupon setup" for the requester's team: six fields, default urgency urgent, type system_config."""
    return request_types.request_type_save(
        team=requester.team,
        by=manager,
        name="Coupon setup",
        default_type="system_config",
        default_urgency="urgent",
        fields=FIELDS,
    )


@pytest.fixture
def campaign(requester, manager):
    from campaigns.models import Campaign

    return Campaign.objects.create(
        name="Double 11",
        code="d11",
        team=requester.team,
        owner=manager,
        start_date="2026-11-01",
        end_date="2026-11-11",
    )


def valid(**over):
    values = {"sku": "SKU-1", "amount": "30"}
    values.update(over)
    return values


# --- validation per kind ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "stored"),
    [
        (valid(), {"sku": "SKU-1", "amount": 30}),
        (valid(amount="12.5"), {"sku": "SKU-1", "amount": 12.5}),
        (valid(amount=7), {"sku": "SKU-1", "amount": 7}),
        (valid(starts="2026-11-11"), {"sku": "SKU-1", "amount": 30, "starts": "2026-11-11"}),
        (valid(channel="app"), {"sku": "SKU-1", "amount": 30, "channel": "app"}),
        (valid(owner="req"), {"sku": "SKU-1", "amount": 30, "owner": "req"}),
        (valid(starts=""), {"sku": "SKU-1", "amount": 30}),
    ],
)
def test_good_values_are_stored_in_their_kind(coupon, requester, values, stored):
    assert request_types.custom_values_clean(coupon, values, requester=requester) == stored


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        ({"amount": 1}, "sku", "SKU"),
        (valid(amount="thirty"), "amount", "number"),
        (valid(amount=True), "amount", "number"),
        (valid(amount="NaN"), "amount", "number"),
        (valid(starts="11/11/2026"), "starts", "YYYY-MM-DD"),
        (valid(channel="fax"), "channel", "app, web, mini"),
        (valid(owner="nobody-here"), "owner", "nobody-here"),
        (valid(promo="abc"), "promo", "campaign"),
        (valid(promo=999999), "promo", "999999"),
        (valid(colour="red"), "colour", "Unknown field"),
        (valid(sku=["a"]), "sku", "text"),
    ],
)
def test_bad_values_name_the_field(coupon, requester, values, field, says):
    with pytest.raises(request_types.CustomFieldsInvalid) as caught:
        request_types.custom_values_clean(coupon, values, requester=requester)
    assert field in caught.value.by_field
    assert says.lower() in " ".join(caught.value.by_field[field]).lower()
    assert any(m.startswith(f"{field}: ") for m in caught.value.messages)


@pytest.mark.django_db
def test_a_campaign_of_another_team_is_refused(coupon, requester, other_requester, manager):
    from campaigns.models import Campaign

    theirs = Campaign.objects.create(
        name="Brand day",
        code="brand",
        team=other_requester.team,
        owner=manager,
        start_date="2026-11-01",
        end_date="2026-11-02",
    )
    with pytest.raises(request_types.CustomFieldsInvalid) as caught:
        request_types.custom_values_clean(coupon, valid(promo=theirs.pk), requester=requester)
    assert "promo" in caught.value.by_field


@pytest.mark.django_db
def test_field_definitions_are_checked(requester, manager):
    with pytest.raises(DjangoValidationError) as caught:
        request_types.request_type_save(
            team=requester.team,
            by=manager,
            name="Bad",
            fields=[{"name": "Bad Name"}, {"name": "c", "kind": "choice"}, {"name": "x", "kind": "colour"}],
        )
    text = " ".join(caught.value.message_dict["fields"])
    assert "Bad Name" in text and "c:" in text.replace("Field c", "c:") and "x" in text
    assert not RequestType.objects.filter(name="Bad").exists()


@pytest.mark.django_db
def test_only_managers_define_request_types(requester, agent):
    with pytest.raises(PermissionDenied):
        request_types.request_type_save(team=requester.team, by=agent, name="Data export", fields=[])
    assert not RequestType.objects.exists()


@pytest.mark.django_db
def test_defining_is_audited(coupon):
    assert AuditEntry.objects.filter(action="request_type.create", object_id=str(coupon.pk)).exists()


# --- filing -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_filing_applies_the_defaults_and_stores_the_values(coupon, requester):
    ticket = make_ticket(
        requester, type="", urgency="", request_type=coupon, custom_fields=valid(channel="web")
    )
    assert (ticket.type, ticket.urgency) == ("system_config", "urgent")
    ticket.refresh_from_db()
    assert ticket.request_type == coupon
    assert ticket.custom_fields == {"sku": "SKU-1", "amount": 30, "channel": "web"}


@pytest.mark.django_db
def test_the_default_assignee_gets_the_request(coupon, requester, agent, manager):
    coupon.default_assignee = agent
    coupon.save()
    ticket = make_ticket(requester, request_type=coupon, custom_fields=valid())
    assert ticket.assignee == agent


@pytest.mark.django_db
def test_bad_values_file_nothing(coupon, requester):
    with pytest.raises(request_types.CustomFieldsInvalid):
        make_ticket(requester, request_type=coupon, custom_fields={"sku": "x"})
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_another_teams_request_type_is_refused(coupon, other_requester):
    with pytest.raises(DjangoValidationError) as caught:
        make_ticket(other_requester, request_type=coupon, custom_fields=valid())
    assert "request_type" in caught.value.message_dict


# --- API ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_lists_a_teams_request_types_to_its_members(api_for, coupon, requester):
    response = api_for(requester).get(f"{API}/teams/{requester.team_id}/request-types/")
    assert response.status_code == 200
    (item,) = response.json()["results"]
    assert item["name"] == "Coupon setup"
    assert [f["name"] for f in item["fields"]] == [f["name"] for f in FIELDS]
    assert item["fields"][3]["choices"] == ["app", "web", "mini"]


@pytest.mark.django_db
def test_api_hides_a_teams_request_types_from_other_teams(api_for, coupon, requester, other_requester):
    assert api_for(other_requester).get(f"{API}/teams/{requester.team_id}/request-types/").status_code == 404
    assert api_for(None).get(f"{API}/teams/{requester.team_id}/request-types/").status_code in (401, 403)


@pytest.mark.django_db
def test_api_list_query_count(api_for, coupon, requester, manager, django_assert_max_num_queries):
    for n in range(5):
        request_types.request_type_save(team=requester.team, by=manager, name=f"T{n}", fields=FIELDS[:2])
    client = api_for(manager)
    # session/auth + team + count + page + fields prefetch + skills prefetch (+ permission lookups)
    with django_assert_max_num_queries(10):
        response = client.get(f"{API}/teams/{requester.team_id}/request-types/")
    assert response.json()["count"] == 6


@pytest.mark.django_db
def test_api_manager_creates_a_request_type(api_for, requester, manager, agent):
    body = {
        "name": "Data export",
        "default_urgency": "routine",
        "default_assignee": agent.username,
        "fields": [{"name": "table", "label": "Table", "kind": "text", "required": True}],
    }
    response = api_for(manager).post(f"{API}/teams/{requester.team_id}/request-types/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["fields"][0]["name"] == "table"
    created = RequestType.objects.get(name="Data export")
    assert created.default_assignee == agent and created.team_id == requester.team_id


@pytest.mark.django_db
def test_api_create_denied_to_agents_and_requesters(api_for, requester, agent):
    body = {"name": "Data export", "fields": []}
    for person in (agent, requester):
        response = api_for(person).post(
            f"{API}/teams/{requester.team_id}/request-types/", body, format="json"
        )
        assert response.status_code == 403
    assert not RequestType.objects.exists()


@pytest.mark.django_db
def test_api_bad_field_definition_names_the_field(api_for, requester, manager):
    body = {"name": "X", "fields": [{"name": "ok"}, {"name": "pick", "kind": "choice"}]}
    response = api_for(manager).post(f"{API}/teams/{requester.team_id}/request-types/", body, format="json")
    assert response.status_code == 400
    assert "pick" in str(response.json())


@pytest.mark.django_db
def test_api_ticket_custom_fields_read_and_write(api_for, coupon, requester):
    client = api_for(requester)
    response = client.post(
        f"{API}/tickets/",
        {"title": "Coupon for 11.11", "request_type": coupon.pk, "custom_fields": valid(channel="app")},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["custom_fields"] == {"sku": "SKU-1", "amount": 30, "channel": "app"}
    assert (data["request_type"], data["type"], data["urgency"]) == (coupon.pk, "system_config", "urgent")
    key = data["key"]
    assert client.get(f"{API}/tickets/{key}/").json()["custom_fields"]["sku"] == "SKU-1"
    patched = client.patch(
        f"{API}/tickets/{key}/custom-fields/", {"custom_fields": {"amount": 45}}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["custom_fields"] == {"sku": "SKU-1", "amount": 45, "channel": "app"}


@pytest.mark.django_db
def test_api_unknown_custom_field_is_a_400_naming_it(api_for, coupon, requester):
    client = api_for(requester)
    response = client.post(
        f"{API}/tickets/",
        {"title": "x", "request_type": coupon.pk, "custom_fields": valid(colour="red")},
        format="json",
    )
    assert response.status_code == 400
    assert "colour" in str(response.json())
    assert not Ticket.objects.exists()
    key = make_ticket(requester, request_type=coupon, custom_fields=valid()).key
    patched = client.patch(
        f"{API}/tickets/{key}/custom-fields/", {"custom_fields": {"colour": "red"}}, format="json"
    )
    assert patched.status_code == 400
    assert any("colour" in e["field"] for e in patched.json()["errors"])


@pytest.mark.django_db
def test_api_without_type_or_default_says_type_is_required(api_for, requester):
    response = api_for(requester).post(f"{API}/tickets/", {"title": "x", "urgency": "routine"}, format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["type"]


@pytest.mark.django_db
def test_api_custom_fields_out_of_reach_is_404(api_for, coupon, requester, other_requester):
    key = make_ticket(requester, request_type=coupon, custom_fields=valid()).key
    response = api_for(other_requester).patch(
        f"{API}/tickets/{key}/custom-fields/", {"custom_fields": {"amount": 1}}, format="json"
    )
    assert response.status_code == 404
    assert Ticket.objects.get(key=key).custom_fields["amount"] == 30


@pytest.mark.django_db
def test_the_schema_documents_request_types_and_custom_fields():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/teams/{id}/request-types/"])
    assert "patch" in paths["/api/v1/tickets/{key}/custom-fields/"]
    components = schema["components"]["schemas"]
    assert "custom_fields" in components["Ticket"]["properties"]
    assert "request_type" in components["TicketCreateRequest"]["properties"]
    assert "fields" in components["RequestType"]["properties"]


# --- queue filter and exports -------------------------------------------------------------------------------


@pytest.fixture
def filed(coupon, requester):
    tickets = [
        make_ticket(requester, title=f"C{n}", request_type=coupon, custom_fields=valid(amount=n, channel=ch))
        for n, ch in ((10, "app"), (20, "web"), (30, "app"))
    ]
    make_ticket(requester, title="plain")
    return tickets


@pytest.mark.django_db
def test_queue_filters_by_custom_field(client_for, agent, filed, coupon):
    client = client_for(agent)
    body = client.get(f"/requests/queue/?cf_channel=app&request_type={coupon.pk}").content.decode()
    assert body.count("data-key=") == 2
    assert "C1" not in body.replace("C10", "").replace("C30", "")
    body = client.get("/requests/queue/?cf_amount=20").content.decode()
    assert body.count("data-key=") == 1 and filed[1].key in body


@pytest.mark.django_db
def test_api_list_filters_by_custom_field(api_for, agent, filed):
    response = api_for(agent).get(f"{API}/tickets/?cf_channel=app&cf_amount=30")
    assert [t["key"] for t in response.json()["results"]] == [filed[2].key]


@pytest.mark.django_db
def test_queue_custom_filter_query_count(client_for, agent, filed, django_assert_max_num_queries):
    client = client_for(agent)
    # as the default queue (16) plus one query for the kinds of the filtered fields, once per use
    with django_assert_max_num_queries(19):
        response = client.get("/requests/queue/?cf_channel=app&per_page=100")
    assert response.content.decode().count("data-key=") == 2


@pytest.mark.django_db
def test_the_custom_filter_uses_the_gin_index(filed):
    from django.db import connection

    qs = request_types.custom_fields_filter(Ticket.objects.all(), {"channel": "app"})
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        plan = qs.explain()
        cursor.execute("SET enable_seqscan = on")
    assert "ticket_custom_fields" in plan


@pytest.mark.django_db
def test_queue_csv_export_has_a_column_per_field_of_the_chosen_type(client_for, agent, filed, coupon):
    response = client_for(agent).get(f"/requests/queue/export/?request_type={coupon.pk}&status=all")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    header = rows[0]
    assert header[-6:] == ["cf_sku", "cf_amount", "cf_starts", "cf_channel", "cf_owner", "cf_promo"]
    by_key = {row[0]: row for row in rows[1:]}
    assert by_key[filed[1].key][header.index("cf_amount")] == "20"
    assert by_key[filed[1].key][header.index("cf_channel")] == "web"
    assert len(by_key) == 3


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_ticket_report_has_a_column_per_field_of_the_chosen_type(agent, coupon, requester, file_format):
    from openpyxl import load_workbook

    from analytics import services as analytics_services
    from analytics.models import ReportJob

    make_ticket(requester, request_type=coupon, custom_fields=valid(sku="=HYPERLINK(1)", channel="mini"))
    make_ticket(requester, title="plain")
    job = ReportJob.objects.create(
        owner=agent, kind="tickets", params={"request_type": coupon.pk}, format=file_format, dedupe_key="rt"
    )
    analytics_services.report_job_run(job_id=job.pk)
    job.refresh_from_db()
    with job.file.open("rb") as handle:
        raw = handle.read()
    if file_format == "csv":
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    else:
        sheet = load_workbook(io.BytesIO(raw), read_only=True).active
        rows = [[("" if c.value is None else str(c.value)) for c in row] for row in sheet.iter_rows()]
    header = rows[0]
    assert header[-6:] == ["cf_sku", "cf_amount", "cf_starts", "cf_channel", "cf_owner", "cf_promo"]
    assert len(rows) == 2  # only the chosen type's requests
    row = rows[1]
    assert row[header.index("cf_channel")] == "mini"
    assert row[header.index("cf_amount")] == "30"
    assert not row[header.index("cf_sku")].startswith("=")  # formula-guarded


@pytest.mark.django_db
def test_report_params_accept_a_request_type():
    from analytics.reports import ReportParamsForm

    form = ReportParamsForm({"request_type": "3"})
    assert form.is_valid() and form.normalised() == {"request_type": 3}
    assert not ReportParamsForm({"request_type": "x"}).is_valid()
