import warnings

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_token_for_good_credentials_authenticates_me(requester):
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/", {"username": "req", "password": "pw-req-123"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/v1/me/").json()
    assert me["username"] == "req"
    assert me["role"] == "requester"
    assert me["team"] == "E-commerce ops"
    assert me["permissions"] == []


@pytest.mark.django_db
def test_token_for_bad_password_is_400_in_the_error_shape(requester):
    response = APIClient().post("/api/v1/auth/token/", {"username": "req", "password": "bad"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["message"].startswith("Unable to log in")
    assert "detail" in body


@pytest.mark.django_db
def test_token_missing_fields_name_the_field():
    body = APIClient().post("/api/v1/auth/token/", {"username": "x"}, format="json").json()
    assert body["errors"] == [{"message": "This field is required.", "code": "required", "field": "password"}]


@pytest.mark.django_db
def test_me_without_credentials_is_401_in_the_error_shape():
    response = APIClient().get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_me_lists_manager_permissions(api_for, manager):
    me = api_for(manager).get("/api/v1/me/").json()
    assert me["role"] == "manager"
    assert me["permissions"] == ["manage_support", "view_dashboards", "view_pii", "work_queue"]


@pytest.mark.django_db
def test_openapi_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    text = out.read_text()
    assert "/api/v1/auth/token/" in text
    assert "/api/v1/me/" in text


@pytest.mark.django_db
def test_schema_endpoint_and_offline_docs(client, requester):
    assert client.get("/api/schema/").status_code == 200
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert "https://" not in html and "http://" not in html  # every asset from our own static files


@pytest.mark.django_db
def test_every_api_operation_declares_a_response():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("responses"), f"{method} {path} has no responses"
