"""The identity API contracts: resolve, merge, unmerge, and the customer detail's identity fields."""

import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from crm_tags.models import Customer, CustomerIdentifier, CustomerMerge, MergeRule
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

EMAIL, PHONE = "planted.person@example.com", "+8613912345678"
RESOLVE, MERGE = "/api/v1/customers/resolve/", "/api/v1/customers/merge/"
# auth, locks, limits, the moves per table (events, totals, memberships, consent, touchpoints, every
# other table that points at customers), the record and its audit entry
MERGE_QUERIES = 45


def _with(customer: Customer, *pairs: tuple[str, str]) -> Customer:
    for kind, value in pairs:
        CustomerIdentifier.objects.create(customer=customer, kind=kind, value=value)
    return customer


@pytest.fixture
def pair(db):
    older = _with(factories.customer(external_id="OLD1", email=EMAIL, phone=PHONE), ("email", EMAIL))
    newer = _with(factories.customer(external_id="NEW1"), ("phone", PHONE))
    return older, newer


def _merge(api, into: str = "OLD1", source: str = "NEW1"):
    return api.post(MERGE, {"into": into, "from": source}, format="json")


# --- resolve ---------------------------------------------------------------------------------------


def test_an_agent_resolves_identifiers_and_the_profiles_they_link_merge(api_for, agent, pair):
    response = api_for(agent).post(
        RESOLVE,
        {
            "identifiers": [
                {"kind": "email", "value": " Planted.Person@Example.com"},
                {"kind": "phone", "value": "139 1234 5678"},
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {"external_id": "OLD1", "merged_from": ["NEW1"], "rejected": []}
    assert not Customer.objects.filter(external_id="NEW1").exists()


def test_a_requester_may_not_resolve(api_for, requester, pair):
    response = api_for(requester).post(
        RESOLVE, {"identifiers": [{"kind": "email", "value": EMAIL}]}, format="json"
    )
    assert response.status_code == 403
    assert Customer.objects.filter(external_id="NEW1").exists()


def test_anonymous_may_not_resolve(api_for, pair):
    assert api_for(None).post(
        RESOLVE, {"identifiers": [{"kind": "email", "value": EMAIL}]}, format="json"
    ).status_code in (
        401,
        403,
    )


def test_identifiers_nobody_holds_are_a_404(api_for, agent):
    response = api_for(agent).post(
        RESOLVE, {"identifiers": [{"kind": "email", "value": "x@example.com"}]}, format="json"
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "identifiers"),
        ({"identifiers": "a@b.cn"}, "identifiers"),
        ({"identifiers": [{"kind": "fax", "value": "1"}]}, "fax"),
        ({"identifiers": [{"kind": "email", "value": "nope"}]}, "email"),
        ({"identifiers": [{"value": "a@b.cn"}]}, "identifiers[0]"),
        ({"identifiers": [{"kind": "wechat_openid", "value": "oAbc"}]}, "wechat_openid"),
    ],
)
def test_bad_identifiers_are_a_400_naming_what_is_wrong(api_for, agent, body, field):
    response = api_for(agent).post(RESOLVE, body, format="json")
    assert response.status_code == 400
    assert field in response.content.decode()


def test_rejected_values_are_masked_for_a_viewer_without_view_pii(api_for, agent):
    MergeRule.objects.filter(kind__slug="email").update(max_per_profile=1)
    MergeRule.objects.filter(kind__slug="phone").update(max_per_profile=0)
    _with(factories.customer(external_id="HOLD"), ("member_no", "M1"), ("email", "first@example.com"))
    response = api_for(agent).post(
        RESOLVE,
        {
            "identifiers": [
                {"kind": "member_no", "value": "M1"},
                {"kind": "email", "value": EMAIL},
                {"kind": "phone", "value": PHONE},
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    assert [r["reason"] for r in response.json()["rejected"]] == ["limit", "limit"]
    body = response.content.decode()
    assert EMAIL not in body and PHONE not in body and "13912345678" not in body


# --- merge and unmerge -----------------------------------------------------------------------------


def test_a_manager_merges_two_profiles(api_for, manager, pair):
    response = _merge(api_for(manager))
    assert response.status_code == 200
    merge = CustomerMerge.objects.get()
    assert response.json() == {"into": "OLD1", "merge_id": merge.pk}
    assert not Customer.objects.filter(external_id="NEW1").exists()


def test_an_agent_may_not_merge(api_for, agent, pair):
    assert _merge(api_for(agent)).status_code == 403
    assert Customer.objects.filter(external_id="NEW1").exists()


@pytest.mark.parametrize(
    ("into", "source", "field"),
    [("OLD1", "GONE", "from"), ("GONE", "NEW1", "into"), ("OLD1", "OLD1", "from")],
)
def test_a_bad_merge_is_a_400_naming_the_field(api_for, manager, pair, into, source, field):
    response = _merge(api_for(manager), into, source)
    assert response.status_code == 400
    assert (
        field in response.json().get("errors", [{}])[0].get("field", "") or field in response.content.decode()
    )


def test_the_survivor_shows_the_merge_and_a_manager_unmerges_it(api_for, manager, pair):
    api = api_for(manager)
    merge_id = _merge(api).json()["merge_id"]
    detail = api.get("/api/v1/customers/OLD1/").json()
    assert detail["merged_from"] == ["NEW1"]
    assert [(m["merge_id"], m["from"]) for m in detail["merges"]] == [(merge_id, "NEW1")]
    assert {"kind": "external_id", "value": "NEW1"} in detail["identifiers"]

    response = api.post("/api/v1/customers/OLD1/unmerge/", {"merge_id": merge_id}, format="json")

    assert response.status_code == 200
    assert response.json() == {"external_id": "OLD1", "restored": "NEW1"}
    assert api.get("/api/v1/customers/OLD1/").json()["merges"] == []
    assert {"kind": "phone", "value": PHONE} in api.get("/api/v1/customers/NEW1/").json()["identifiers"]


def test_an_agent_may_not_unmerge(api_for, manager, agent, pair):
    merge_id = _merge(api_for(manager)).json()["merge_id"]
    response = api_for(agent).post("/api/v1/customers/OLD1/unmerge/", {"merge_id": merge_id}, format="json")
    assert response.status_code == 403
    assert not Customer.objects.filter(external_id="NEW1").exists()


@pytest.mark.parametrize("merge_id", [None, "x", -1, True, 99999])
def test_a_bad_merge_id_is_a_400_naming_it(api_for, manager, pair, merge_id):
    _merge(api_for(manager))
    response = api_for(manager).post("/api/v1/customers/OLD1/unmerge/", {"merge_id": merge_id}, format="json")
    assert response.status_code == 400
    assert "merge_id" in response.content.decode()


def test_unmerge_on_a_profile_that_does_not_exist_is_a_404(api_for, manager):
    assert (
        api_for(manager).post("/api/v1/customers/NOPE/unmerge/", {"merge_id": 1}, format="json").status_code
        == 404
    )


# --- the customer detail ---------------------------------------------------------------------------


def test_identifiers_are_masked_for_a_viewer_without_view_pii(api_for, agent, pair):
    _with(pair[0], ("member_no", "MEMBER-PLANTED"))
    response = api_for(agent).get("/api/v1/customers/OLD1/")
    assert response.status_code == 200
    body = response.content.decode()
    assert (
        EMAIL not in body and PHONE not in body and "13912345678" not in body and "MEMBER-PLANTED" not in body
    )
    kinds = {i["kind"] for i in response.json()["identifiers"]}
    assert kinds == {"email", "member_no", "external_id"}  # its own external id is always one


def test_identifiers_are_shown_to_a_viewer_with_view_pii(api_for, manager, pair):
    identifiers = api_for(manager).get("/api/v1/customers/OLD1/").json()["identifiers"]
    assert identifiers == [{"kind": "email", "value": EMAIL}, {"kind": "external_id", "value": "OLD1"}]


def test_the_detail_reads_a_bounded_number_of_queries(api_for, manager, pair, django_assert_max_num_queries):
    api = api_for(manager)
    _merge(api)
    with django_assert_max_num_queries(20):
        assert api.get("/api/v1/customers/OLD1/").status_code == 200


# --- schema ----------------------------------------------------------------------------------------


def test_the_schema_documents_the_identity_contracts():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    for path in (RESOLVE, MERGE, "/api/v1/customers/{external_id}/unmerge/"):
        assert paths[path]["post"]["responses"], path
    detail = schema["components"]["schemas"]["CustomerDetail"]["properties"]
    assert {"identifiers", "merged_from", "merges"} <= set(detail)
    assert {"into", "from"} <= set(schema["components"]["schemas"]["MergeRequest"]["properties"])


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    assert "/api/v1/customers/resolve/" in out.read_text()


@pytest.mark.parametrize("events", [1, 30])
def test_merge_and_unmerge_read_a_number_of_queries_that_does_not_grow_with_the_rows(
    api_for, manager, pair, events, django_assert_max_num_queries
):
    # a merge's statements are per table, never per row: the same bound with 1 event or 30
    at = datetime(2026, 1, 1, tzinfo=UTC)
    factories.events([(pair[1], "order", at + timedelta(days=d), Decimal("5")) for d in range(events)])
    api = api_for(manager)
    with django_assert_max_num_queries(MERGE_QUERIES):
        merge_id = _merge(api).json()["merge_id"]
    with django_assert_max_num_queries(MERGE_QUERIES):
        assert (
            api.post("/api/v1/customers/OLD1/unmerge/", {"merge_id": merge_id}, format="json").status_code
            == 200
        )


def test_resolve_reads_a_bounded_number_of_queries(api_for, agent, pair, django_assert_max_num_queries):
    body = {"identifiers": [{"kind": "email", "value": EMAIL}, {"kind": "phone", "value": PHONE}]}
    with django_assert_max_num_queries(MERGE_QUERIES + 10):
        assert api_for(agent).post(RESOLVE, body, format="json").status_code == 200
