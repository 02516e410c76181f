"""Erasing a person with an identity and a value: their identifiers and merge records (which hold their
e-mail, phone and old ids) go, their stored value and purchase days move to the surrogate with their
events, and every table that references a customer is one the erasure knows how to handle."""

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from crm_tags import erasure
from crm_tags.identity_tables import CustomerIdentifier, CustomerMerge
from crm_tags.models import Customer, CustomerValue
from crm_tags.value.tables import CustomerPurchaseDays
from tests.privacy import rights_factories as rf
from tests.privacy.conftest import PLANTED_EMAIL, PLANTED_PHONE
from tests.privacy.test_erasure import _where_found

pytestmark = pytest.mark.django_db


def test_an_erasure_removes_identifiers_and_merges_and_moves_value_and_purchase_days(
    planted, manager, django_capture_on_commit_callbacks
):
    # given the person has identifiers, absorbed an old profile (its snapshot holds their values), a
    # stored customer value and purchase days
    CustomerIdentifier.objects.create(customer=planted, kind="email", value=PLANTED_EMAIL)
    CustomerIdentifier.objects.create(customer=planted, kind="phone", value=PLANTED_PHONE)
    CustomerMerge.objects.create(
        survivor=planted,
        merged_external_id="PLANTED-OLD",
        merged_customer_id=planted.pk + 100000,
        snapshot={"email": PLANTED_EMAIL, "phone": PLANTED_PHONE},
        at=timezone.now(),
    )
    CustomerValue.objects.create(
        customer=planted, lead_score=42, clv_12m=120.5, computed_at=timezone.now(), as_of=dt.date(2026, 12, 1)
    )
    CustomerPurchaseDays.objects.create(
        customer=planted,
        first_day=dt.date(2026, 1, 3),
        last_day=dt.date(2026, 11, 3),
        days=4,
        orders=5,
        spent=Decimal("320.00"),
        first_day_spent=Decimal("80.00"),
        last_at=dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC),
    )
    assert _where_found("PLANTED-OLD")
    # when the person is erased
    req = rf.erased(planted, manager, django_capture_on_commit_callbacks)
    rf.check_deferred_keys()  # the person's row could go: nothing references it any more
    assert req.status == "done", req.error
    # then their identifiers and merge records are gone, their values and old id nowhere
    surrogate = Customer.objects.get(external_id__startswith=erasure.SURROGATE_PREFIX)
    assert not CustomerIdentifier.objects.exists() and not CustomerMerge.objects.exists()
    assert {v: _where_found(v) for v in (PLANTED_EMAIL, PLANTED_PHONE, "PLANTED-OLD")} == {
        PLANTED_EMAIL: [],
        PLANTED_PHONE: [],
        "PLANTED-OLD": [],
    }
    # and the derived figures stay, on the surrogate
    assert CustomerValue.objects.get().customer_id == surrogate.pk
    assert CustomerValue.objects.get().lead_score == 42
    assert CustomerPurchaseDays.objects.get().customer_id == surrogate.pk
    assert req.report["identifiers"] == 2 and req.report["merges"] == 1


def test_every_table_that_references_a_customer_is_handled_by_the_erasure():
    # a new table pointing at customers must say what an erasure does with its rows: it is added to
    # erasure.CUSTOMER_REFERENCES (and done there), or this fails
    found = {
        f"{model._meta.label}.{field.name}"
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if field.concrete and getattr(field, "related_model", None) is Customer
    }
    assert found == set(erasure.CUSTOMER_REFERENCES)
