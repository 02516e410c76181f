"""Free attribute columns of a customers import are stored typed, so rules on numbers, booleans and dates
work end to end (issue 17: `attributes.vip_level >= 3` matched nobody)."""

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.csv_import import ImportRejected
from crm_tags import importers, services
from crm_tags.models import Customer, TagMembership
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db
BUILT_IN = "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel"


def customers_csv(extra_header: str, rows: list[str]) -> io.StringIO:
    lines = [f"{BUILT_IN},{extra_header}"]
    lines += [f"V{i},n,,,,,,,,{row}" for i, row in enumerate(rows, start=1)]
    return io.StringIO("\n".join(lines) + "\n")


def attributes() -> dict[str, dict]:
    return dict(Customer.objects.order_by("external_id").values_list("external_id", "attributes"))


def json_types(key: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT jsonb_typeof(attributes -> %s) FROM crm_tags_customer WHERE attributes ? %s",
            [key, key],
        )
        return {row[0] for row in cursor.fetchall()}


# --- end to end: import -> rule -> members ------------------------------------------------------


def test_rule_on_an_imported_numeric_attribute_finds_its_members(django_capture_on_commit_callbacks):
    # given customers imported from CSV with a vip_level column
    importers.import_customers(customers_csv("vip_level", ["1", "3", "5", "2.5", ""]))
    # when a rule tag asks for vip_level >= 3 and is released to everyone
    tag = factories.rule_tag("vip3", {"attr": "attributes.vip_level", "op": ">=", "value": 3})
    with django_capture_on_commit_callbacks(execute=True):
        services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=None)
    # then exactly the customers at level 3 and 5 are members
    members = TagMembership.objects.filter(tag=tag).values_list("customer__external_id", flat=True)
    assert sorted(members) == ["V2", "V3"]


def test_rule_between_on_an_imported_date_attribute(django_capture_on_commit_callbacks):
    importers.import_customers(customers_csv("joined", ["2024/1/5", "2024-03-01", "2023-12-31"]))
    tag = factories.rule_tag(
        "joined-2024", {"attr": "attributes.joined", "op": "between", "value": ["2024-01-01", "2024-12-31"]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=None)
    members = TagMembership.objects.filter(tag=tag).values_list("customer__external_id", flat=True)
    assert sorted(members) == ["V1", "V2"]


def test_rule_on_an_imported_boolean_attribute(django_capture_on_commit_callbacks):
    importers.import_customers(customers_csv("newsletter", ["true", "FALSE", "True"]))
    tag = factories.rule_tag("news", {"attr": "attributes.newsletter", "op": "=", "value": True})
    with django_capture_on_commit_callbacks(execute=True):
        services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=None)
    members = TagMembership.objects.filter(tag=tag).values_list("customer__external_id", flat=True)
    assert sorted(members) == ["V1", "V3"]


# --- inference ----------------------------------------------------------------------------------


def test_numbers_booleans_and_dates_are_inferred_per_column():
    importers.import_customers(
        customers_csv("level,vip,since,note", ["3,true,2024-01-05,hi", "-2.50,false,2024/2/9,", "0,TRUE,,x"])
    )
    stored = attributes()
    assert stored["V1"] == {"level": 3, "vip": True, "since": "2024-01-05", "note": "hi"}
    assert stored["V2"] == {"level": -2.5, "vip": False, "since": "2024-02-09"}
    assert stored["V3"] == {"level": 0, "vip": True, "note": "x"}
    assert json_types("level") == {"number"} and json_types("vip") == {"boolean"}


@pytest.mark.parametrize(
    "cells",
    [
        ["007", "12"],  # a leading zero is an identifier (zip, code)
        ["3", "three"],  # one text cell makes the column text
        ["1e3", "2"],  # no exponents
        ["1,000", "2"],  # no thousands separators (quoted below)
        ["1234567890123456", "1"],  # more than 15 digits: an id, not a quantity
        ["NaN", "1"],
        ["2024-02-30", "2024-01-01"],  # not a day
    ],
)
def test_a_column_with_anything_else_stays_text_as_read(cells):
    rows = [f'"{c}"' for c in cells]
    importers.import_customers(customers_csv("code", rows))
    assert [a["code"] for a in attributes().values()] == cells
    assert json_types("code") == {"string"}


def test_spaces_around_an_inferred_number_are_trimmed_and_blank_cells_dropped():
    importers.import_customers(customers_csv("level", ['" 4 "', '"  "']))
    assert attributes() == {"V1": {"level": 4}, "V2": {}}


def test_a_reimport_converts_values_stored_as_text_before(django_capture_on_commit_callbacks):
    # given a customer whose level was stored as text by an earlier import
    factories.customer(external_id="V1", attributes={"vip_level": "4", "kept": "yes"})
    # when the file is imported again
    importers.import_customers(customers_csv("vip_level", ["4"]))
    # then the value is a number, and the other attributes stay
    assert attributes()["V1"] == {"vip_level": 4, "kept": "yes"}


# --- declared types -----------------------------------------------------------------------------


def test_a_declared_type_is_used_instead_of_inference():
    importers.import_customers(
        customers_csv("zip:text,score:number,opt_in:boolean", ["200001,007,yes", "1,+1.5,0"])
    )
    stored = attributes()
    assert stored["V1"] == {"zip": "200001", "score": 7, "opt_in": True}
    assert stored["V2"] == {"zip": "1", "score": 1.5, "opt_in": False}


def test_cells_that_do_not_fit_a_declared_type_reject_the_file_naming_row_and_column():
    with pytest.raises(ImportRejected) as info:
        importers.import_customers(
            customers_csv(
                "score:number,opt_in:boolean,since:date", ["1,true,2024-01-01", "NaN,maybe,01/02/2024"]
            )
        )
    assert [(e.row, e.column, e.message) for e in info.value.errors] == [
        (3, "score:number", "Must be a number."),
        (3, "opt_in:boolean", "Must be true or false."),
        (3, "since:date", "Must be a date (YYYY-MM-DD)."),
    ]
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("level:integer", "Unknown column type 'integer'"),
        (":number", "Name the column before its type."),
        ("city:text", "Column appears twice in the header."),
    ],
)
def test_a_bad_type_declaration_rejects_the_header(header, message):
    with pytest.raises(ImportRejected) as info:
        importers.import_customers(customers_csv(header, ["1"]))
    assert (info.value.errors[0].row, info.value.errors[0].column) == (1, header)
    assert message in info.value.errors[0].message


# --- speed: set-based ---------------------------------------------------------------------------


def test_typed_import_runs_the_same_statements_for_10_or_500_rows():
    def statements(count: int) -> int:
        Customer.objects.all().delete()
        rows = [f"{i % 7},{'true' if i % 2 else 'false'},2024-01-{1 + i % 28:02d}" for i in range(count)]
        with CaptureQueriesContext(connection) as captured:
            importers.import_customers(customers_csv("level,vip,since", rows))
        return len(captured.captured_queries)

    assert statements(10) == statements(500)
    assert Customer.objects.count() == 500


# --- through the API ----------------------------------------------------------------------------


def _file(text: str) -> io.BytesIO:
    upload = io.BytesIO(text.encode())
    upload.name = "customers.csv"
    return upload


def test_api_import_stores_typed_values(api_for, agent):
    text = customers_csv("vip_level", ["4"]).getvalue()
    response = api_for(agent).post("/api/v1/customers/import/", {"file": _file(text)}, format="multipart")
    assert response.status_code == 201
    assert attributes() == {"V1": {"vip_level": 4}}


def test_api_names_the_row_and_column_of_a_cell_that_does_not_fit(api_for, agent):
    text = customers_csv("vip_level:number", ["4", "high"]).getvalue()
    response = api_for(agent).post("/api/v1/customers/import/", {"file": _file(text)}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"row": 3, "column": "vip_level:number", "message": "Must be a number."}
    ]
    assert not Customer.objects.exists()


def test_api_typed_import_is_denied_to_a_requester(api_for, requester):
    text = customers_csv("vip_level:number", ["4"]).getvalue()
    response = api_for(requester).post("/api/v1/customers/import/", {"file": _file(text)}, format="multipart")
    assert response.status_code == 403
    assert not Customer.objects.exists()
