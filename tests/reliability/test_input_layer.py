"""The shared input layer (config/inputs.py) on its own: JSON limits without recursion, text, numbers, days;
and the schema (config/openapi.py) documenting what the API answers."""

import sys
from datetime import date
from decimal import Decimal

import pytest
import yaml

from config.inputs import (
    InvalidInput,
    calendar_day,
    decimal_number,
    moment,
    parse_json,
    whole_number,
)

# --- JSON -------------------------------------------------------------------------------------------


def test_deep_json_is_refused_without_recursing():
    # given a recursion limit only a little above the current stack: any recursive parser would overflow it
    depth = 100_000
    text = "[" * depth + "]" * depth
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(_stack()) + 40)
    try:
        # when it is parsed
        with pytest.raises(InvalidInput) as refused:
            parse_json(text)
    finally:
        sys.setrecursionlimit(limit)
    # then the scan refused it, naming where it got too deep
    assert refused.value.code == "too_deep"
    assert refused.value.field.startswith("[0][0][0]")


def _stack() -> list:
    import inspect

    return inspect.stack(0)


def test_json_at_the_depth_limit_is_accepted_and_one_more_level_is_not(settings):
    settings.API_JSON_MAX_DEPTH = 5
    assert parse_json("[[[[[1]]]]]") == [[[[[1]]]]]
    with pytest.raises(InvalidInput):
        parse_json("[[[[[[1]]]]]]")


def test_brackets_inside_strings_do_not_count_as_depth(settings):
    settings.API_JSON_MAX_DEPTH = 2
    assert parse_json('{"a": "[[[[[[[[{{{{{{"}') == {"a": "[[[[[[[[{{{{{{"}


@pytest.mark.parametrize(
    ("text", "field", "code"),
    [
        ('{"a": {"b": ["ok", "x\\u0000"]}}', "a.b[1]", "null_characters"),
        ('{"a": "\\ud800"}', "a", "surrogate_characters"),
        ('{"\\udc00": 1}', "(key)", "surrogate_characters"),
        ('{"n": NaN}', "n", "invalid_number"),
        ('{"n": -Infinity}', "n", "invalid_number"),
        ('{"n": 1e400}', "n", "invalid_number"),
    ],
)
def test_bad_text_and_numbers_in_json_are_named_by_their_path(text, field, code):
    with pytest.raises(InvalidInput) as refused:
        parse_json(text)
    assert (refused.value.field, refused.value.code) == (field, code)


def test_valid_surrogate_pairs_and_escaped_backslashes_are_text():
    assert parse_json('["\\ud83d\\ude00", "\\\\u0000"]') == ["\U0001f600", "\\u0000"]


def test_an_api_body_over_the_size_limit_is_a_413_in_the_error_shape(api_for, requester, settings):
    settings.API_JSON_MAX_BYTES = 100
    response = api_for(requester).post(
        "/api/v1/tickets/", {"title": "x" * 200, "type": "incident", "urgency": "routine"}, format="json"
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "request_too_large"


def test_a_nul_in_a_multipart_field_is_a_400_naming_it(api_for, agent):
    import io

    upload = io.BytesIO(b"external_id\nX1\n")
    upload.name = "c.csv"
    response = api_for(agent).post(
        "/api/v1/customers/import/", {"file": upload, "note": "a\x00b"}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "note"


def test_a_session_cookie_holding_a_nul_is_dropped_not_looked_up(client):
    # given a cookie that unquotes to a NUL (`"\000…"`): looked up, it would reach the database
    client.cookies["sessionid"] = "\x00" + "a" * 31
    # when a page is opened with it, the visitor is simply not signed in
    response = client.get("/accounts/login/")
    assert response.status_code == 200


# --- numbers and days -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["²", "٣", "1e3", "1.0", "0x10", "", "- 1", "1_000"])
def test_whole_numbers_are_ascii_digits_only(text):
    with pytest.raises(InvalidInput):
        whole_number(text)


def test_whole_numbers_are_bounded():
    assert whole_number(" 42 ") == 42
    assert whole_number("-5", minimum=-10) == -5
    with pytest.raises(InvalidInput, match="from 0 to 2147483647"):
        whole_number("12345678901234567890")
    with pytest.raises(InvalidInput):
        whole_number(True)


def test_decimals_are_finite_bounded_and_have_few_places():
    assert decimal_number("12.50") == Decimal("12.50")
    for bad in ("NaN", "Infinity", "1e3", "1.234", "1000000000000", "１２"):
        with pytest.raises(InvalidInput):
            decimal_number(bad)


def test_days_are_iso_and_between_1900_and_2999():
    assert calendar_day("2026-06-18") == date(2026, 6, 18)
    for bad in ("0001-01-02", "9999-12-31", "2026-6-18", "18/06/2026", "２０２６-06-18"):
        with pytest.raises(InvalidInput):
            calendar_day(bad)


def test_moments_are_aware_and_bounded():
    assert moment("2026-06-18").tzinfo is not None
    with pytest.raises(InvalidInput):
        moment("0001-01-02T00:00:00")


# --- the schema tells the truth ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return yaml.safe_load(yaml.safe_dump(SchemaGenerator().get_schema(request=None, public=True)))


def test_every_operation_documents_bad_requests_and_throttling(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"400", "429"} <= set(operation["responses"]), (method, path)


def test_operations_on_an_object_document_404_and_writes_409(schema):
    assert "404" in schema["paths"]["/api/v1/tickets/{key}/"]["get"]["responses"]
    assert "409" in schema["paths"]["/api/v1/tickets/{key}/transition/"]["post"]["responses"]
    assert "403" in schema["paths"]["/api/v1/tags/{slug}/publish/"]["post"]["responses"]


def test_error_answers_have_the_error_shape(schema):
    bad_request = schema["components"]["responses"]["BadRequest"]
    assert bad_request["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiError"}
    assert "Retry-After" in schema["components"]["responses"]["Throttled"]["headers"]


def test_page_size_is_documented_from_1_to_500(schema):
    [page_size] = [
        p for p in schema["paths"]["/api/v1/tickets/"]["get"]["parameters"] if p["name"] == "page_size"
    ]
    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}


def test_csv_downloads_are_typed_as_csv(schema):
    report = schema["paths"]["/api/v1/reports/{id}/download/"]["get"]["responses"]["200"]["content"]
    members = schema["paths"]["/api/v1/tags/{slug}/members/"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in report and "application/octet-stream" not in report
    assert "text/csv" in members


def test_the_im_intake_documents_its_answers_without_its_header(schema):
    intake = schema["paths"]["/api/v1/intake/im/"]["post"]
    assert {"201", "400", "403", "404", "429"} <= set(intake["responses"])
    assert "401" not in intake["responses"]  # it takes no credentials but its header


# --- JSON types as the schema says (found by the schema fuzz) -------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"body": 2705}, "body"),
        ({"body": "ok", "internal": 0.0}, "internal"),
        ({"body": "ok", "internal": "yes"}, "internal"),
    ],
)
def test_a_json_body_must_use_the_types_the_schema_names(api_for, agent, requester, body, field):
    from tests.tickets.factories import make_ticket

    ticket = make_ticket(requester)
    response = api_for(agent).post(f"/api/v1/tickets/{ticket.key}/comments/", body, format="json")
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert not ticket.comments.exists()


@pytest.mark.django_db
def test_a_date_out_of_every_range_is_refused_before_arithmetic_on_it(api_for, agent):
    # `to=0001-01-01` without `from` made the default range start before year 1: OverflowError, a 500
    response = api_for(agent).get("/api/v1/analytics/marketing/?to=0001-01-01")
    assert response.status_code == 400
    assert "to" in [error["field"] for error in response.json()["errors"]]


def test_a_control_character_is_no_empty_query_value():
    # found by the schema fuzzer: ?model=%1C was read as absent (str.strip takes \x1c for a space)
    from rest_framework.exceptions import ValidationError as ApiValidationError

    from config.inputs import query_choice

    assert query_choice({"model": " "}, "model", ["a", "b"], default="a") == "a"
    with pytest.raises(ApiValidationError):
        query_choice({"model": "\x1c"}, "model", ["a", "b"], default="a")
