import pytest

from accounts.models import OutboxMessage


@pytest.mark.django_db
def test_metrics_from_loopback_lists_components_and_outbox(client, settings):
    settings.METRICS_ALLOW_LOOPBACK = True
    OutboxMessage.objects.create(task_name="x.y")
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'martech_up{component="database"} 1' in text
    assert 'martech_up{component="redis"} 1' in text
    assert "martech_outbox_pending 1" in text
    assert "# TYPE martech_up gauge" in text


@pytest.mark.django_db
def test_metrics_refuses_remote_callers_without_token(client):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403


@pytest.mark.django_db
def test_metrics_accepts_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200
    assert (
        client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer nope").status_code == 403
    )


@pytest.mark.django_db
def test_metrics_refuses_anonymous_loopback_callers_by_default(client, settings):
    # given the default settings (a same-host proxy makes every caller look like loopback)
    settings.METRICS_TOKEN = "s3cret"
    # when a loopback caller asks without the token
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    # then it is refused, and nothing about the portal is shown
    assert response.status_code == 403
    assert b"martech_up" not in response.content


@pytest.mark.django_db
def test_metrics_from_loopback_with_the_token_is_served(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    response = client.get("/metrics", REMOTE_ADDR="::1", HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200
    assert b"martech_up" in response.content


@pytest.mark.django_db
def test_metrics_without_a_configured_token_refuses_any_bearer(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403


@pytest.mark.django_db
def test_metrics_with_a_non_ascii_authorization_header_is_refused_not_an_error(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3crét")
    assert response.status_code == 403
