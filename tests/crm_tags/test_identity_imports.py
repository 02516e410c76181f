"""Imports resolve identifiers: a customer file's identifier columns link and merge profiles, an events
file may name its customers by an identifier column."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from config.csv_import import ImportRejected
from crm_tags import importers, services
from crm_tags.identity import imports as identity_imports
from crm_tags.models import Customer, CustomerIdentifier, CustomerMerge, Event, TagMembership
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _customers(text: str) -> importers.ImportResult:
    """Import the rows of `text`, the customer columns it leaves out empty."""
    given = csv.reader(io.StringIO(text))
    header = next(given)
    full = importers.CUSTOMER_COLUMNS + [h for h in header if h not in importers.CUSTOMER_COLUMNS]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(full)
    for row in given:
        cells = dict(zip(header, row, strict=True))
        writer.writerow([cells.get(column, "") for column in full])
    out.seek(0)
    return importers.import_customers(out)


def _events(text: str) -> importers.ImportResult:
    return importers.import_events(io.StringIO(text))


def _aged(customer: Customer, days: int) -> Customer:
    Customer.objects.filter(pk=customer.pk).update(created_at=AT - timedelta(days=days))
    return Customer.objects.get(pk=customer.pk)


def _state() -> tuple:
    return (
        sorted(Customer.objects.values_list("external_id", "phone")),
        sorted(CustomerIdentifier.objects.values_list("kind", "value", "customer_id")),
        CustomerMerge.objects.count(),
        sorted(Event.objects.values_list("customer_id", "amount")),
    )


def test_customer_import_stores_normalised_identifiers():
    _customers(
        "external_id,name,email,phone,member_no,wechat_unionid,wechat_openid,wechat_app_id\n"
        "A,Li, Li.Na@Example.COM ,138 1234 5678,M-1,u-1,o-1,wx9\n"
    )
    customer = Customer.objects.get(external_id="A")
    assert set(customer.identifiers.values_list("kind", "value")) == {
        ("external_id", "A"),
        ("email", "li.na@example.com"),
        ("phone", "+8613812345678"),
        ("member_no", "M-1"),
        ("wechat_unionid", "u-1"),
        ("wechat_openid", "wx9:o-1"),
    }


def test_import_row_sharing_a_phone_merges_into_the_older_profile_with_events_and_tags(
    django_capture_on_commit_callbacks,
):
    older = _aged(factories.customer(external_id="OLD", phone="139 1234 5678"), days=30)
    newer = _aged(factories.customer(external_id="NEW", phone="13700000001"), days=1)
    factories.events([(newer, "order", AT, Decimal("30"))])
    tag = factories.rule_tag("buyers", {"event": "order", "agg": "count", "op": ">=", "value": 1})
    with django_capture_on_commit_callbacks(execute=True):
        services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=None)
    assert list(TagMembership.objects.values_list("customer_id", flat=True)) == [newer.pk]

    _customers("external_id,name,phone\nNEW,New,+86 139-1234-5678\n")

    assert not Customer.objects.filter(pk=newer.pk).exists()
    merge = CustomerMerge.objects.get()
    assert (merge.survivor_id, merge.merged_external_id) == (older.pk, "NEW")
    assert list(Event.objects.values_list("customer_id", flat=True)) == [older.pk]
    assert list(TagMembership.objects.values_list("customer_id", flat=True)) == [older.pk]
    assert CustomerIdentifier.objects.get(kind="phone", value="+8613912345678").customer_id == older.pk


def test_two_rows_of_one_file_sharing_an_email_become_one_profile():
    _customers("external_id,name,email\nA,Li,li@example.com\nB,Li,LI@example.com \n")

    assert list(Customer.objects.values_list("external_id", flat=True)) == ["A"]
    assert CustomerMerge.objects.get().merged_external_id == "B"
    assert set(CustomerIdentifier.objects.values_list("kind", "value")) >= {
        ("external_id", "A"),
        ("external_id", "B"),
        ("email", "li@example.com"),
    }


def test_a_blocked_identifier_never_merges():
    _customers(
        "external_id,name,phone,email\nA,A,13800000000,test@test.com\nB,B,138 0000 0000,TEST@test.com\n"
    )

    assert Customer.objects.count() == 2
    assert not CustomerMerge.objects.exists()
    assert not CustomerIdentifier.objects.filter(kind__in=["phone", "email"]).exists()


def test_an_import_failing_midway_changes_nothing(monkeypatch):
    factories.customer(external_id="OLD", phone="13912345678", email="old@example.com")
    _customers("external_id,name,email\nOLD,Old,old@example.com\n")
    before = _state()

    def fail(cursor, rules):
        raise RuntimeError("disk full")

    # the merge has happened when storing the identifiers fails
    monkeypatch.setattr(identity_imports, "_identifiers_store", fail)
    with pytest.raises(RuntimeError):
        _customers("external_id,name,phone,member_no\nNEW,New,13912345678,M-7\n")

    assert _state() == before


def test_an_event_row_named_by_email_lands_on_its_profile():
    _customers("external_id,name,email\nA,A,a@example.com\nB,B,li.na@example.com\n")

    result = _events(
        "email,event_type,occurred_at,amount,channel\n Li.Na@Example.COM ,order,2026-03-01T12:00:00+00:00,12.50,web\n"
    )

    assert result.rows == 1
    event = Event.objects.get()
    assert event.customer.external_id == "B"
    assert "li.na" not in str(event.properties).lower()


def test_an_event_row_named_by_phone_lands_on_its_profile():
    _customers("external_id,name,phone\nA,A,13912345678\n")

    _events("phone,event_type,occurred_at,amount,channel\n+86 139 1234 5678,visit,2026-03-01,,web\n")

    assert Event.objects.get().customer.external_id == "A"


def test_an_event_identifier_no_profile_holds_is_a_bad_row_naming_row_and_column():
    _customers("external_id,name,email\nA,A,a@example.com\n")

    with pytest.raises(ImportRejected) as caught:
        _events(
            "email,event_type,occurred_at,amount,channel\n"
            "a@example.com,order,2026-03-01,1,web\n"
            "ghost@example.com,order,2026-03-01,1,web\n"
        )

    [error] = caught.value.errors
    assert (error.row, error.column) == (3, "email")
    assert "ghost" not in error.message  # the personal value is not echoed
    assert not Event.objects.exists()


def test_an_invalid_event_identifier_names_row_and_column():
    _customers("external_id,name,phone\nA,A,13912345678\n")

    with pytest.raises(ImportRejected) as caught:
        _events("phone,event_type,occurred_at,amount,channel\nnot a phone,order,2026-03-01,1,web\n")

    [error] = caught.value.errors
    assert (error.row, error.column) == (2, "phone")
    assert "not a phone" not in error.message  # the value is not echoed


def test_an_events_file_without_any_customer_column_is_rejected_clearly():
    with pytest.raises(ImportRejected) as caught:
        _events("event_type,occurred_at,amount,channel\norder,2026-03-01,1,web\n")

    [error] = caught.value.errors
    assert error.column == "customer_external_id"
    assert "email" in error.message
