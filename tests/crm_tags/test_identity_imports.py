"""Imports resolve identifiers: a customer file's identifier columns link and merge profiles, an events
file may name its customers by an identifier column."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from config.csv_import import ImportRejected
from crm_tags import importers, services
from crm_tags.identity import IdentifierInvalid, normalise
from crm_tags.identity import imports as identity_imports
from crm_tags.identity.rules import BUILTIN_BLOCKED, BUILTIN_RULES, IdentityRules
from crm_tags.models import Customer, CustomerIdentifier, CustomerMerge, Event, MergeRule, TagMembership
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


# --- the identity step is set-based and costs what the file brings ----------------------------------


def _file(rows: int, *, start: int = 1, identifiers: bool = True) -> str:
    lines = ["external_id,name,email,phone,member_no"]
    for i in range(start, start + rows):
        if identifiers:
            lines.append(f"R{i},R{i},Person{i}@Example.com ,139 {i:04d} {i:04d},M{i}")
        else:
            lines.append(f"R{i},R{i},,,")
    return "\n".join(lines) + "\n"


def _statements(text: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        _customers(text)
    return [query["sql"] for query in captured.captured_queries]


def test_the_identity_steps_statements_do_not_grow_with_the_rows():
    # given two files of new rows with e-mail, phone and member number, one ten times the other
    small = _statements(_file(3))
    large = _statements(_file(30, start=100))
    # then both take the same statements (one per step, none per row or per identifier)
    assert len(small) == len(large)
    assert CustomerIdentifier.objects.exclude(kind="external_id").count() == 3 * 33


def test_a_file_without_identifier_values_skips_the_identity_step():
    # when a file's rows carry no e-mail, phone or member number
    statements = _statements(_file(20, identifiers=False))
    # then nothing is staged or stored for identity: one look-up of merged-away external ids only
    assert not any("crm_stage_identifiers" in sql for sql in statements)
    assert sum("crm_tags_customeridentifier" in sql for sql in statements) == 1
    assert not CustomerIdentifier.objects.exists()
    assert Customer.objects.count() == 20


def test_a_merged_away_external_id_imported_again_merges_into_its_profile_again():
    # given NEW merged into OLD by an earlier import
    _aged(factories.customer(external_id="OLD", phone="13912345678", email=""), days=30)
    _customers("external_id,name,phone\nNEW,New,139 1234 5678\n")
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["OLD"]
    # when NEW is imported again, without any identifier
    _customers("external_id,name\nNEW,New again\n")
    # then it is one profile with OLD again (a second merge), not a duplicate person
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["OLD"]
    assert CustomerMerge.objects.filter(merged_external_id="NEW").count() == 2


def test_an_import_that_links_stores_only_the_files_identifiers_not_the_whole_bases():
    # given a profile that holds its e-mail only as a column, unrelated to the file
    bystander = factories.customer(external_id="BY", email="by@example.com", phone="")
    _aged(factories.customer(external_id="OLD", phone="13912345678", email=""), days=30)
    # when a row links to another profile (and merges into it)
    _customers("external_id,name,phone\nNEW,New,139 1234 5678\n")
    # then the merge is made and the bystander is not touched
    assert CustomerMerge.objects.get().merged_external_id == "NEW"
    assert not CustomerIdentifier.objects.filter(customer=bystander).exists()


def test_a_link_whose_merge_would_pass_a_limit_is_refused_and_the_rows_value_stays_with_its_row():
    # given at most one member number per profile, and OLD holding one
    MergeRule.objects.filter(kind__slug="member_no").update(max_per_profile=1)
    old = _aged(factories.customer(external_id="OLD", phone="13912345678", email=""), days=30)
    CustomerIdentifier.objects.create(customer=old, kind="member_no", value="M1")
    # when a row shares OLD's phone but brings another member number
    _customers("external_id,name,phone,member_no\nNEW,New,139 1234 5678,M2\n")
    # then the two stay apart, each with its own member number
    assert not CustomerMerge.objects.exists()
    assert CustomerIdentifier.objects.get(value="M2").customer.external_id == "NEW"
    assert CustomerIdentifier.objects.get(value="M1").customer_id == old.pk


def test_a_value_past_its_kinds_limit_is_not_stored():
    # given at most one e-mail per profile, and A holding one
    MergeRule.objects.filter(kind__slug="email").update(max_per_profile=1)
    _customers("external_id,name,email\nA,A,a@example.com\n")
    # when A is imported with another e-mail
    _customers("external_id,name,email\nA,A,a2@example.com\n")
    # then the second is not stored (the column still says what the file said)
    assert list(CustomerIdentifier.objects.filter(kind="email").values_list("value", flat=True)) == [
        "a@example.com"
    ]
    assert Customer.objects.get().email == "a2@example.com"


CELLS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            " Li.Na@Example.COM ",
            "TEST@test.com",
            "138 0000 0000",
            "+86 138-1234-5678",
            "008613812345678",
            "(021) 6123 4567",
            "+1 650 253 0000",
            "NULL",
            " null ",
            "wx9:o-1",
            "o-1",
            "x" * 300,
            "\u3000M-1\u3000",
        ]
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(identity_imports.IDENTIFIER_COLUMNS.values())),
    cells=st.lists(st.tuples(CELLS, st.sampled_from(["", "wx9", " wx1 "])), max_size=8),
)
def test_a_column_is_normalised_and_filtered_as_each_cell_would_be(kind, cells):
    rules = IdentityRules(kinds=dict(BUILTIN_RULES), blocked=set(BUILTIN_BLOCKED))
    values = [cell for cell, _app in cells]
    app_ids = [app for _cell, app in cells]

    def one(cell: str, app_id: str) -> str | None:
        if not cell.strip():
            return None
        try:
            value = normalise(kind, cell.strip(), app_id if kind == "wechat_openid" else "")
        except IdentifierInvalid:
            return None
        return None if rules.is_blocked(kind, value) else value

    expected = [one(cell, app) for cell, app in cells]
    assert identity_imports.column_identifiers(kind, values, app_ids, rules) == expected


def test_a_big_load_rebuilds_the_identifier_indexes_and_key_and_still_links(monkeypatch):
    # given any load counts as big (the identifiers' indexes and key are dropped and rebuilt)
    monkeypatch.setattr("crm_tags.importers.bulk_indexes.BULK_MIN_ROWS", 1)
    old = _aged(factories.customer(external_id="OLD", phone="13912345678", email=""), days=30)
    CustomerIdentifier.objects.create(customer=old, kind="member_no", value="M0")
    # when a file with identifiers, one row sharing OLD's stored member number, is imported
    _customers("external_id,name,email,member_no\nNEW,New,new@example.com,M0\nB,B,b@example.com,M2\n")
    # then the values are stored, the linking row merged, and the unique key, primary key and
    # foreign key are back
    assert CustomerMerge.objects.get().merged_external_id == "NEW"
    assert CustomerIdentifier.objects.get(value="new@example.com").customer_id == old.pk
    assert CustomerIdentifier.objects.get(value="M2").customer.external_id == "B"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT contype FROM pg_constraint WHERE conrelid = 'crm_tags_customeridentifier'::regclass"
        )
        assert sorted(row[0] for row in cursor.fetchall()) == ["f", "p", "u"]
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'crm_identifier_customer'")
        assert cursor.fetchone() is not None
