"""Consent columns of the customer import: written set-based with history, kept out of attributes,
all-or-nothing on a bad value."""

import io

import pytest

from config.csv_import import ImportRejected
from crm_tags import services
from crm_tags.models import Customer
from privacy import consent
from privacy.models import Consent, ConsentChange
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

HEADER = "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel,tier,"


def _upload(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def test_consent_columns_are_written_with_history_and_kept_out_of_attributes(agent):
    # given a file with consent columns (an empty cell for one of them) beside a free attribute
    text = (
        HEADER + "consent_personalisation,consent_marketing_email\n"
        "I1,Ann,,,Shanghai,,,,,gold,withdrawn,granted\n"
        "I2,Bo,,,Beijing,,,,,,Granted,\n"
    )
    # when an agent imports it
    services.customers_import(upload=_upload(text), by=agent)
    # then the states are stored with source "import", each change in the history with the importer
    states = set(Consent.objects.values_list("customer__external_id", "purpose", "state", "source"))
    assert states == {
        ("I1", "personalisation", "withdrawn", "import"),
        ("I1", "marketing_email", "granted", "import"),
        ("I2", "personalisation", "granted", "import"),
    }
    history = set(
        ConsentChange.objects.values_list("customer__external_id", "purpose", "old_state", "new_state", "by")
    )
    assert history == {
        ("I1", "personalisation", "unknown", "withdrawn", agent.pk),
        ("I1", "marketing_email", "unknown", "granted", agent.pk),
        ("I2", "personalisation", "unknown", "granted", agent.pk),
    }
    # and the consent columns are not attributes, while the free column still is
    assert Customer.objects.get(external_id="I1").attributes == {"tier": "gold"}
    assert Customer.objects.get(external_id="I2").attributes == {}


def test_an_import_changes_only_what_differs_and_an_empty_cell_leaves_consent_alone(agent):
    # given a known customer who granted e-mail and withdrew personalisation through the API
    customer = factories.customer(external_id="I3")
    consent.consent_set(
        customer=customer,
        states={"marketing_email": "granted", "personalisation": "withdrawn"},
        source="api",
        by=agent,
    )
    # when a file grants e-mail again, leaves personalisation empty and withdraws SMS
    text = (
        HEADER + "consent_marketing_email,consent_personalisation,consent_marketing_sms\n"
        "I3,Cy,,,,,,,,,granted,,withdrawn\n"
    )
    services.customers_import(upload=_upload(text), by=agent)
    # then only SMS changed (one history row, source import); the others keep their API source
    rows = {
        p: (s, src)
        for p, s, src in Consent.objects.filter(customer=customer).values_list("purpose", "state", "source")
    }
    assert rows == {
        "marketing_email": ("granted", "api"),
        "personalisation": ("withdrawn", "api"),
        "marketing_sms": ("withdrawn", "import"),
    }
    imported = ConsentChange.objects.filter(customer=customer, source="import")
    assert list(imported.values_list("purpose", "old_state", "new_state")) == [
        ("marketing_sms", "unknown", "withdrawn")
    ]


def test_a_bad_consent_value_rejects_the_whole_file_naming_row_and_column(agent):
    # given a file whose third row has a made-up consent state
    text = HEADER + "consent_analytics\nI4,Di,,,,,,,,,granted\nI5,Ed,,,,,,,,,secretvalue42\n"
    # when it is imported
    with pytest.raises(ImportRejected) as caught:
        services.customers_import(upload=_upload(text), by=agent)
    # then the error names row 3 and the column without echoing the cell, and nothing was written
    assert [(e.row, e.column) for e in caught.value.errors] == [(3, "consent_analytics")]
    assert "secretvalue42" not in str(caught.value) and "secretvalue42" not in str(caught.value.detail)
    assert not Customer.objects.filter(external_id__in=["I4", "I5"]).exists()
    assert not Consent.objects.exists()
    assert not ConsentChange.objects.exists()


def test_the_api_import_answers_400_for_a_bad_consent_value(api_for, agent):
    # given a file with a bad consent value
    text = HEADER + "consent_marketing_push\nI6,Fa,,,,,,,,,perhaps\n"
    # when it is uploaded through the API
    response = api_for(agent).post(
        "/api/v1/customers/import/", {"file": io.BytesIO(text.encode())}, format="multipart"
    )
    # then it is rejected naming the row and column, and nothing was written
    assert response.status_code == 400
    assert response.json()["errors"][0]["row"] == 2
    assert response.json()["errors"][0]["column"] == "consent_marketing_push"
    assert "perhaps" not in response.content.decode()
    assert not Customer.objects.filter(external_id="I6").exists()


def test_an_import_without_consent_columns_writes_no_consent(agent):
    # given a plain customer file
    text = HEADER.rstrip(",") + "\nI7,Gu,,,,,,,,\n"
    # when it is imported
    services.customers_import(upload=_upload(text), by=agent)
    # then the customer is there and no consent was recorded
    assert Customer.objects.filter(external_id="I7").exists()
    assert not Consent.objects.exists()
