"""Consent: the service (history, audit, validation), the API (allow, deny, 400 naming the key) and the schema."""

import warnings

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection

from accounts.models import AuditEntry
from privacy import consent
from privacy.models import Consent, ConsentChange
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db


def _url(external_id: str) -> str:
    return f"/api/v1/customers/{external_id}/consent/"


# --- service ---------------------------------------------------------------------------------------


def test_setting_consent_upserts_rows_and_writes_history_and_audit(agent):
    # given a customer with no consent recorded
    customer = factories.customer(external_id="K1")
    # when an agent withdraws personalisation and grants marketing e-mail
    result = consent.consent_set(
        customer=customer,
        states={"personalisation": "withdrawn", "marketing_email": "granted"},
        source="api",
        by=agent,
    )
    # then both states are stored with their source, each change is in the history and the audit trail
    assert result["purposes"]["personalisation"]["state"] == "withdrawn"
    assert result["purposes"]["marketing_email"]["source"] == "api"
    assert set(Consent.objects.filter(customer=customer).values_list("purpose", "state")) == {
        ("personalisation", "withdrawn"),
        ("marketing_email", "granted"),
    }
    history = set(
        ConsentChange.objects.filter(customer=customer).values_list("purpose", "old_state", "new_state", "by")
    )
    assert history == {
        ("personalisation", "unknown", "withdrawn", agent.pk),
        ("marketing_email", "unknown", "granted", agent.pk),
    }
    entry = AuditEntry.objects.get(action="privacy.consent_set")
    assert entry.object_id == str(customer.pk)
    assert entry.changes == {
        "personalisation": ["unknown", "withdrawn"],
        "marketing_email": ["unknown", "granted"],
    }


def test_changing_a_state_records_the_old_one(agent):
    # given a customer who granted personalisation
    customer = factories.customer()
    consent.consent_set(customer=customer, states={"personalisation": "granted"}, source="import", by=None)
    # when they withdraw it
    consent.consent_set(customer=customer, states={"personalisation": "withdrawn"}, source="web", by=agent)
    # then the row is updated in place and the history has both steps, newest first
    row = Consent.objects.get(customer=customer, purpose="personalisation")
    assert (row.state, row.source) == ("withdrawn", "web")
    steps = list(consent.consent_history(customer).values_list("old_state", "new_state", "source"))
    assert steps == [("granted", "withdrawn", "web"), ("unknown", "granted", "import")]


def test_setting_the_same_state_again_writes_nothing(agent):
    # given a customer who granted e-mail
    customer = factories.customer()
    consent.consent_set(customer=customer, states={"marketing_email": "granted"}, source="api", by=agent)
    # when the same state is set again (and unknown for a purpose without a row)
    consent.consent_set(
        customer=customer,
        states={"marketing_email": "granted", "analytics": "unknown"},
        source="web",
        by=agent,
    )
    # then no history, audit entry or row is added, and the source stays the first one
    assert ConsentChange.objects.filter(customer=customer).count() == 1
    assert AuditEntry.objects.filter(action="privacy.consent_set").count() == 1
    assert list(Consent.objects.filter(customer=customer).values_list("purpose", "source")) == [
        ("marketing_email", "api")
    ]


@pytest.mark.parametrize(
    ("states", "key"),
    [
        ({"newsletter": "granted"}, "newsletter"),
        ({"personalisation": "maybe"}, "personalisation"),
        ({"marketing_sms": 1}, "marketing_sms"),
        ({"analytics": "granted", "marketing_push": ""}, "marketing_push"),
    ],
)
def test_an_unknown_purpose_or_state_is_refused_naming_the_key(agent, states, key):
    # given a customer
    customer = factories.customer()
    # when a bad purpose or state is set
    with pytest.raises(consent.ConsentInvalid) as caught:
        consent.consent_set(customer=customer, states=states, source="api", by=agent)
    # then the error names the key and nothing is written, not even the valid part
    assert caught.value.key == key
    assert not Consent.objects.filter(customer=customer).exists()
    assert not ConsentChange.objects.filter(customer=customer).exists()


def test_a_requester_may_not_set_consent(requester):
    # given a customer
    customer = factories.customer()
    # when a requester tries to record consent
    with pytest.raises(PermissionDenied):
        consent.consent_set(customer=customer, states={"analytics": "granted"}, source="api", by=requester)
    # then nothing is written
    assert not Consent.objects.exists()


def test_consent_for_lists_every_purpose_unknown_ones_without_source_or_time(agent):
    # given a customer who only granted SMS
    customer = factories.customer()
    consent.consent_set(customer=customer, states={"marketing_sms": "granted"}, source="api", by=agent)
    # when their consent is read
    purposes = consent.consent_for(customer)["purposes"]
    # then every purpose is there, the unknown ones with an empty source and no time
    assert set(purposes) == set(consent.PURPOSES)
    assert purposes["marketing_sms"]["state"] == "granted"
    assert purposes["marketing_sms"]["at"] is not None
    assert purposes["analytics"] == {"state": "unknown", "source": "", "at": None}


def test_purpose_allowed_sql_refuses_an_unknown_purpose():
    with pytest.raises(consent.ConsentInvalid):
        consent.purpose_allowed_sql("c.id", "telepathy")


def test_sql_helpers_refuse_anything_but_a_column_reference():
    with pytest.raises(ValueError):
        consent.personalisation_withdrawn_sql("c.id) OR (1=1")


@pytest.mark.parametrize(
    ("withdrawn", "table"),
    [(1, [0, 1, 3, 4]), (4, [0, 1, 3, 4]), (22, [0])],
    ids=["ids-probe-the-table", "as-many-withdrawn-as-rows", "each-row-looks-up-its-consent"],
)
def test_withdrawn_delete_removes_exactly_who_withdrew_personalisation(agent, withdrawn, table):
    # given customers of whom some withdrew personalisation (and one withdrew only e-mail)
    people = [factories.customer() for _ in range(24)]
    for person in people[:withdrawn]:
        consent.consent_set(customer=person, states={"personalisation": "withdrawn"}, source="api", by=agent)
    consent.consent_set(customer=people[23], states={"marketing_email": "withdrawn"}, source="api", by=agent)
    # and a keyed table holding some of them (the one who withdrew only e-mail among them)
    kept_ids = [people[i].pk for i in table] + [people[23].pk]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE consent_probe (customer_id bigint PRIMARY KEY)")
        cursor.execute("INSERT INTO consent_probe SELECT unnest(%s::bigint[])", [kept_ids])
        # when whoever withdrew is deleted from it
        deleted = consent.personalisation_withdrawn_delete(
            cursor=cursor, table="consent_probe", column="customer_id", rows=len(kept_ids)
        )
        cursor.execute("SELECT customer_id FROM consent_probe ORDER BY customer_id")
        left = [row[0] for row in cursor.fetchall()]
        cursor.execute("DROP TABLE consent_probe")
    # then exactly the withdrawn ones in the table are gone, whichever side was walked
    gone = {p.pk for p in people[:withdrawn]} & set(kept_ids)
    assert deleted == len(gone) > 0
    assert left == sorted(set(kept_ids) - gone)


# --- API -------------------------------------------------------------------------------------------


def test_anyone_signed_in_reads_a_customers_consent(api_for, requester, agent):
    # given a customer who withdrew personalisation
    customer = factories.customer(external_id="K2")
    consent.consent_set(customer=customer, states={"personalisation": "withdrawn"}, source="web", by=agent)
    # when a requester reads it
    response = api_for(requester).get(_url("K2"))
    # then every purpose is listed with state, source and time
    assert response.status_code == 200
    purposes = response.json()["purposes"]
    assert set(purposes) == set(consent.PURPOSES)
    assert purposes["personalisation"]["state"] == "withdrawn"
    assert purposes["personalisation"]["source"] == "web"
    assert purposes["personalisation"]["at"]
    assert purposes["analytics"] == {"state": "unknown", "source": "", "at": None}


def test_an_agent_sets_consent_through_the_api(api_for, agent):
    # given a customer
    factories.customer(external_id="K3")
    # when an agent withdraws personalisation
    response = api_for(agent).put(_url("K3"), {"personalisation": "withdrawn"}, format="json")
    # then the answer is the new consent, recorded with source "api" and the agent in the history
    assert response.status_code == 200
    assert response.json()["purposes"]["personalisation"]["state"] == "withdrawn"
    assert response.json()["purposes"]["personalisation"]["source"] == "api"
    change = ConsentChange.objects.get(customer__external_id="K3")
    assert (change.new_state, change.source, change.by_id) == ("withdrawn", "api", agent.pk)


def test_a_requester_may_not_set_consent_through_the_api(api_for, requester):
    # given a customer
    factories.customer(external_id="K4")
    # when a requester tries to withdraw personalisation
    response = api_for(requester).put(_url("K4"), {"personalisation": "withdrawn"}, format="json")
    # then it is forbidden and nothing is written
    assert response.status_code == 403
    assert not Consent.objects.exists()


@pytest.mark.parametrize("method", ["get", "put"])
def test_anonymous_callers_are_refused(api_for, method):
    # given a customer
    factories.customer(external_id="K5")
    # when nobody signed in asks
    response = getattr(api_for(None), method)(_url("K5"), {"analytics": "granted"}, format="json")
    # then they are refused and nothing is written
    assert response.status_code in (401, 403)
    assert not Consent.objects.exists()


@pytest.mark.parametrize(
    ("body", "key"),
    [({"newsletter": "granted"}, "newsletter"), ({"marketing_email": "yes please"}, "marketing_email")],
)
def test_a_bad_purpose_or_state_answers_400_naming_the_key(api_for, agent, body, key):
    # given a customer
    factories.customer(external_id="K6")
    # when an agent sends an unknown purpose or state
    response = api_for(agent).put(_url("K6"), body, format="json")
    # then the error names the key, and nothing is written
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == key
    assert key in response.json()["detail"]
    assert not Consent.objects.exists()


def test_a_body_that_is_not_an_object_answers_400(api_for, agent):
    factories.customer(external_id="K7")
    response = api_for(agent).put(_url("K7"), ["personalisation"], format="json")
    assert response.status_code == 400
    assert not Consent.objects.exists()


@pytest.mark.parametrize("method", ["get", "put"])
def test_an_unknown_customer_answers_404(api_for, agent, method):
    response = getattr(api_for(agent), method)(_url("NOBODY"), {"analytics": "granted"}, format="json")
    assert response.status_code == 404


def test_consent_read_query_count(api_for, agent, django_assert_max_num_queries):
    # given a customer with every purpose recorded
    customer = factories.customer(external_id="K8")
    consent.consent_set(
        customer=customer, states={p: "granted" for p in consent.PURPOSES}, source="api", by=agent
    )
    client = api_for(agent)
    # when the consent is read: (1) the customer, (2) the consent rows (permissions come from the cache)
    with django_assert_max_num_queries(2):
        response = client.get(_url("K8"))
    assert response.status_code == 200


# --- schema ----------------------------------------------------------------------------------------


def test_openapi_schema_still_validates_and_documents_consent(tmp_path):
    out = tmp_path / "schema.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    text = out.read_text()
    assert "/api/v1/customers/{external_id}/consent/" in text
    assert "excluded_by_consent" in text
    assert "name: purpose" in text
