"""Every output path that can carry a customer's personal values, read by an agent without view_pii: a
planted e-mail, phone and name never appear anywhere in the response body (issue 15)."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry, Notification
from analytics import services as report_services
from analytics.models import ReportJob
from crm_tags import services as tag_services
from crm_tags.models import TagBuild
from privacy.models import UnmaskedAccess
from tests.crm_tags import factories
from tests.privacy.conftest import PLANTED_EMAIL, PLANTED_NAME, PLANTED_PHONE

pytestmark = pytest.mark.django_db

PERSONAL_FIELDS = ("email", "phone", "name", "birth_date")
CITY_RULE = {"attr": "city", "op": "=", "value": "Shanghai"}


def assert_clean(body: bytes | str) -> None:
    """None of the planted values, in any form the body could carry them."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    for value in (PLANTED_EMAIL, PLANTED_PHONE, PLANTED_NAME):
        assert value not in text, f"{value!r} leaked"
    # JSON escapes non-ASCII: the name must not appear escaped either
    assert PLANTED_NAME.encode("unicode_escape").decode() not in text


@pytest.fixture
def city_tag(planted, manager, django_capture_on_commit_callbacks):
    """A published tag whose only member is the planted customer."""
    tag = factories.rule_tag("shanghai", CITY_RULE, by=manager)
    with django_capture_on_commit_callbacks(execute=True):
        tag_services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=manager)
    assert tag.memberships.filter(customer=planted).exists()
    return tag


# --- customers -----------------------------------------------------------------------------------


def test_customer_list_page_and_api_are_masked(client_for, api_for, agent, planted):
    page = client_for(agent).get("/customers/")
    api = api_for(agent).get("/api/v1/customers/")
    assert page.status_code == 200 and b"PLANTED1" in page.content
    assert api.status_code == 200 and api.json()["results"][0]["email"] == "z***@example.com"
    assert_clean(page.content)
    assert_clean(api.content)


def test_customer_page_and_api_are_masked(client_for, api_for, agent, planted):
    planted.birth_date = "1990-05-17"
    planted.attributes = {"wechat_openid": "oPLANTEDopenid123", "level": "gold"}
    planted.save()
    page = client_for(agent).get("/customers/c/PLANTED1/")
    api = api_for(agent).get("/api/v1/customers/PLANTED1/")
    assert page.status_code == api.status_code == 200
    body = api.json()
    assert body["name"] == "张***" and body["birth_date"] == "****-**-**"
    assert body["attributes"] == {"wechat_openid": "o***", "level": "gold"}
    for response in (page, api):
        assert_clean(response.content)
        assert b"1990-05-17" not in response.content and b"oPLANTEDopenid123" not in response.content


def test_a_search_on_a_personal_value_finds_nothing_without_view_pii(client_for, api_for, agent, planted):
    for q in (PLANTED_EMAIL, PLANTED_PHONE, PLANTED_NAME[:2], "planted"):
        api = api_for(agent).get("/api/v1/customers/", {"q": q})
        page = client_for(agent).get("/customers/", {"q": q})
        assert api.json()["count"] == 0, q  # no yes/no oracle on hidden values
        assert b"PLANTED1" not in page.content


def test_a_search_on_a_personal_value_works_with_view_pii(api_for, manager, planted):
    assert api_for(manager).get("/api/v1/customers/", {"q": PLANTED_PHONE}).json()["count"] == 1


# --- tags: members, exports ------------------------------------------------------------------------


def test_member_list_json_csv_and_page_are_masked(client_for, api_for, agent, city_tag):
    responses = [
        api_for(agent).get("/api/v1/tags/shanghai/members/"),
        api_for(agent).get("/api/v1/tags/shanghai/members/", {"format": "csv"}),
        client_for(agent).get("/customers/tags/shanghai/members/"),
        client_for(agent).get("/customers/tags/shanghai/members.csv"),
    ]
    for response in responses:
        assert response.status_code == 200
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"PLANTED1" in body
        assert_clean(body)


def test_report_files_are_masked_without_view_pii(agent, city_tag):
    for kind, params in (("customers", {}), ("tag_members", {"tag": "shanghai"})):
        job = ReportJob.objects.create(
            owner=agent, kind=kind, params=params, format="csv", dedupe_key=f"{kind}-{agent.pk}"
        )
        report_services.report_job_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.status == "done"
        with job.file.open("rb") as handle:
            text = handle.read().decode("utf-8-sig")
        assert "PLANTED1" in text
        assert_clean(text)


def test_a_report_that_fails_quoting_a_value_notifies_without_it(agent, planted, monkeypatch):
    def boom(*args, **kwargs):
        raise ValueError(f"duplicate key value ({PLANTED_EMAIL}, {PLANTED_PHONE})")

    monkeypatch.setattr(report_services.reports, "report_source", boom)
    job = ReportJob.objects.create(owner=agent, kind="customers", params={}, format="csv", dedupe_key="x")
    report_services.report_job_run(job_id=job.pk)
    job.refresh_from_db()
    notification = Notification.objects.get(recipient=agent)
    assert job.status == "failed"
    assert_clean(job.error + notification.title + notification.body)


# --- previews ---------------------------------------------------------------------------------------


def _rules_on(field: str, value: str) -> list[dict]:
    return [
        {"attr": field, "op": "contains", "value": value[:3]},
        {"attr": field, "op": "=", "value": value},
        {"attr": field, "op": "in", "value": [value]},
        {"attr": field, "op": "is_null", "value": False},
    ]


@pytest.mark.parametrize("field", PERSONAL_FIELDS)
def test_a_preview_that_reads_a_personal_field_is_refused_naming_it(api_for, agent, planted, field):
    factories.rule_tag("probe", by=None)
    value = (
        "1990-05-17"
        if field == "birth_date"
        else {"email": PLANTED_EMAIL, "phone": PLANTED_PHONE}.get(field, PLANTED_NAME)
    )
    rules = [r for r in _rules_on(field, value) if not (field == "birth_date" and r["op"] == "contains")]
    for rule in rules:
        response = api_for(agent).post("/api/v1/tags/probe/preview/", {"definition": rule}, format="json")
        assert response.status_code == 403, rule
        assert field in response.json()["detail"]
        assert_clean(response.content)


def test_the_html_preview_refuses_a_personal_rule(client_for, agent, planted):
    factories.rule_tag("probe", by=None)
    response = client_for(agent).post(
        "/customers/tags/probe/preview/",
        {"definition": '{"attr": "email", "op": "contains", "value": "@"}'},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 403 and b"email" in response.content
    assert_clean(response.content)


def test_a_preview_of_a_saved_personal_version_is_refused(api_for, agent, manager, planted):
    tag = factories.rule_tag("probe", {"attr": "email", "op": "=", "value": PLANTED_EMAIL}, by=manager)
    response = api_for(agent).post(f"/api/v1/tags/{tag.slug}/preview/", {"version": 1}, format="json")
    assert response.status_code == 403
    assert_clean(response.content)


def test_a_preview_with_view_pii_shows_the_values_and_is_logged(api_for, manager, planted):
    factories.rule_tag("probe", by=None)
    response = api_for(manager).post(
        "/api/v1/tags/probe/preview/",
        {"definition": {"attr": "email", "op": "contains", "value": "planted"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["sample"][0]["values"]["email"] == PLANTED_EMAIL
    assert UnmaskedAccess.objects.filter(user=manager, kind="preview", rows=1).exists()


def test_preview_sample_of_a_plain_rule_holds_no_personal_value(api_for, agent, planted):
    factories.rule_tag("probe", by=None)
    response = api_for(agent).post("/api/v1/tags/probe/preview/", {"definition": CITY_RULE}, format="json")
    assert response.status_code == 200 and response.json()["sample"][0]["external_id"] == "PLANTED1"
    assert_clean(response.content)


def test_personal_attribute_values_in_a_sample_show_as_hidden(api_for, agent, planted):
    """An attribute an admin marks personal later: an older rule on it previews without its values."""
    from privacy import personal_data

    planted.attributes = {"vip_code": "SECRET-CODE-1"}
    planted.save()
    factories.rule_tag("probe", by=None)
    rule = {"attr": "attributes.vip_code", "op": "is_null", "value": False}
    response = api_for(agent).post("/api/v1/tags/probe/preview/", {"definition": rule}, format="json")
    assert response.status_code == 200 and b"SECRET-CODE-1" in response.content
    from privacy.models import PersonalAttributeKey

    PersonalAttributeKey.objects.create(key="vip_code")
    personal_data.forget_attribute_keys()
    refused = api_for(agent).post("/api/v1/tags/probe/preview/", {"definition": rule}, format="json")
    assert refused.status_code == 403 and b"SECRET-CODE-1" not in refused.content
    assert personal_data.sample_values_for({"attributes.vip_code": "SECRET-CODE-1"}, viewer=agent) == {
        "attributes.vip_code": "(hidden)"
    }


# --- rules: save, versions ------------------------------------------------------------------------


def test_saving_a_personal_rule_without_view_pii_is_refused_naming_the_field(api_for, client_for, agent):
    factories.rule_tag("probe", by=None)
    rule = {"all": [CITY_RULE, {"attr": "phone", "op": "=", "value": PLANTED_PHONE}]}
    api = api_for(agent).post(
        "/api/v1/tags/probe/versions/", {"definition": rule, "base_version": 0}, format="json"
    )
    page = client_for(agent).post(
        "/customers/tags/probe/versions/", {"definition": str(rule).replace("'", '"'), "version": "0"}
    )
    assert api.status_code == 403 and "phone" in api.json()["detail"]
    assert page.status_code == 403
    assert_clean(api.content)


def test_a_manager_with_view_pii_may_build_a_birthday_rule(api_for, manager):
    factories.rule_tag("birthday", by=None)
    rule = {"attr": "birth_date", "op": "between", "value": ["1990-01-01", "1990-12-31"]}
    response = api_for(manager).post(
        "/api/v1/tags/birthday/versions/", {"definition": rule}, format="json", HTTP_IF_MATCH='"0"'
    )
    assert response.status_code == 201


@pytest.mark.parametrize("role", ["agent", "requester"])
def test_rule_versions_mask_literal_personal_values(api_for, client_for, manager, role, request):
    viewer = request.getfixturevalue(role)
    rule = {
        "any": [
            {"attr": "email", "op": "in", "value": [PLANTED_EMAIL, "other@example.com"]},
            {"not": {"attr": "phone", "op": "=", "value": PLANTED_PHONE}},
            {"attr": "name", "op": "contains", "value": PLANTED_NAME},
            CITY_RULE,
        ]
    }
    factories.rule_tag("probe", rule, by=manager)
    response = api_for(viewer).get("/api/v1/tags/probe/versions/")
    assert response.status_code == 200
    definition = response.json()[0]["definition"]
    assert definition["any"][0]["value"] == ["***", "***"] and definition["any"][3] == CITY_RULE
    assert_clean(response.content)
    page = client_for(viewer).get("/customers/tags/probe/")
    assert page.status_code == 200
    assert_clean(page.content)


def test_rule_versions_are_whole_for_view_pii(api_for, manager):
    rule = {"attr": "email", "op": "=", "value": PLANTED_EMAIL}
    factories.rule_tag("probe", rule, by=manager)
    assert api_for(manager).get("/api/v1/tags/probe/versions/").json()[0]["definition"] == rule


# --- imports, builds, audit -----------------------------------------------------------------------


def test_import_errors_never_echo_a_personal_value(api_for, agent):
    csv_text = (
        "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n"
        f"N1,{PLANTED_NAME},{PLANTED_EMAIL},{PLANTED_PHONE},Shanghai,f,not-a-date,,web\n"
        f"N2,{PLANTED_NAME},not-an-email {PLANTED_PHONE},{PLANTED_PHONE},Shanghai,f,,yesterday,web\n"
        f"N3,{PLANTED_NAME},{PLANTED_EMAIL},{PLANTED_PHONE * 4},Shanghai,f,,,web\n"
    )
    upload = io.BytesIO(csv_text.encode())
    upload.name = "customers.csv"
    response = api_for(agent).post("/api/v1/customers/import/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {(e["row"], e["column"]) for e in errors} >= {(2, "birth_date"), (3, "email"), (3, "signup_at")}
    assert_clean(response.content)


def test_a_failed_build_stores_its_error_scrubbed(planted, monkeypatch):
    tag = factories.rule_tag("shanghai", CITY_RULE)
    build = TagBuild.objects.create(tag=tag, version=tag.versions.get(), trigger="manual")

    def boom(**kwargs):
        raise ValueError(f'invalid input syntax: "{PLANTED_EMAIL}" / {PLANTED_PHONE}')

    monkeypatch.setattr(tag_services, "_apply_membership", boom)
    build = tag_services.tag_build_run(build=build)
    assert build.status == "failed"
    assert_clean(build.error)


def test_the_audit_trail_of_customers_and_tags_holds_no_personal_value(api_for, manager):
    csv_text = (
        "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n"
        f"N1,{PLANTED_NAME},{PLANTED_EMAIL},{PLANTED_PHONE},Shanghai,f,,,web\n"
    )
    upload = io.BytesIO(csv_text.encode())
    upload.name = "customers.csv"
    assert (
        api_for(manager).post("/api/v1/customers/import/", {"file": upload}, format="multipart").status_code
        == 201
    )
    factories.rule_tag("probe", {"attr": "email", "op": "=", "value": PLANTED_EMAIL}, by=manager)
    entries = AuditEntry.objects.filter(object_type__startswith="crm_tags")
    assert entries.count() >= 3
    assert_clean(" ".join(f"{e.action} {e.object_id} {e.changes}" for e in entries))


# --- the access log and caching ------------------------------------------------------------------


def test_unmasked_reads_are_logged_and_masked_ones_are_not(client_for, api_for, manager, agent, city_tag):
    client_for(agent).get("/customers/c/PLANTED1/")
    assert not UnmaskedAccess.objects.exists()
    client_for(manager).get("/customers/c/PLANTED1/")
    response = api_for(manager).get("/api/v1/tags/shanghai/members/", {"format": "csv"})
    b"".join(response.streaming_content)
    entry = UnmaskedAccess.objects.get(kind="customer")
    export = UnmaskedAccess.objects.get(kind="export")
    assert (entry.user, entry.customer.external_id, entry.rows) == (manager, "PLANTED1", 1)
    assert (export.user, export.rows) == (manager, 1)


def test_the_access_log_api_filters_by_customer_for_managers(api_for, client_for, manager, agent, planted):
    other = factories.customer(external_id="OTHER1")
    client_for(manager).get("/customers/c/PLANTED1/")
    client_for(manager).get(f"/customers/c/{other.external_id}/")
    response = api_for(manager).get("/api/v1/privacy/access-log/", {"customer": "PLANTED1"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["customer"], r["user"], r["kind"]) for r in results] == [
        ("PLANTED1", manager.username, "customer")
    ]
    assert api_for(agent).get("/api/v1/privacy/access-log/").status_code == 403
    assert api_for(manager).get("/api/v1/privacy/access-log/", {"kind": "nope"}).status_code == 400


def test_the_access_log_page_for_managers_only(client_for, manager, agent, planted):
    client_for(manager).get("/customers/c/PLANTED1/")
    page = client_for(manager).get("/privacy/access-log/", {"customer": "PLANTED1"})
    assert page.status_code == 200 and b'id="access-log"' in page.content and b"PLANTED1" in page.content
    assert client_for(agent).get("/privacy/access-log/").status_code == 403


def test_the_access_log_list_runs_a_fixed_number_of_queries(api_for, manager, django_assert_num_queries):
    customers = [factories.customer() for _ in range(5)]
    for customer in customers:
        UnmaskedAccess.objects.create(user=manager, kind="customer", customer=customer, rows=1)
    api = api_for(manager)
    # 1 session user, 2 the user's groups/permissions for the role check, 3 count, 4 the page with
    # its user and customer joined
    with django_assert_num_queries(4, exact=False):
        response = api.get("/api/v1/privacy/access-log/")
    assert response.json()["count"] == 5


@pytest.mark.parametrize(
    "path",
    [
        "/customers/",
        "/customers/c/PLANTED1/",
        "/customers/tags/shanghai/members/",
        "/customers/tags/shanghai/members.csv",
    ],
)
def test_pages_with_personal_values_are_not_stored(client_for, manager, city_tag, path):
    response = client_for(manager).get(path)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(
    "path", ["/api/v1/customers/PLANTED1/", "/api/v1/me/", "/api/v1/tags/shanghai/members/"]
)
def test_api_answers_with_personal_values_are_not_stored(api_for, manager, city_tag, path):
    response = api_for(manager).get(path)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]


def test_a_dashboard_is_still_cacheable(client_for, manager):
    response = client_for(manager).get("/kb/")
    assert "no-store" not in response.get("Cache-Control", "")


def test_events_timeline_keeps_working_for_masked_viewers(client_for, agent, planted):
    factories.events([(planted, "order", timezone.now() - timedelta(days=1), 120)])
    response = client_for(agent).get("/customers/c/PLANTED1/")
    assert response.status_code == 200 and b"order" in response.content
    assert_clean(response.content)


def test_csv_reader_sanity_of_masked_members(api_for, agent, city_tag):
    response = api_for(agent).get("/api/v1/tags/shanghai/members/", {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[1][:4] == ["PLANTED1", "张***", "z***@example.com", "139****5678"]
