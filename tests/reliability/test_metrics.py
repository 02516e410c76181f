import pytest

from accounts.models import OutboxMessage


@pytest.mark.django_db
def test_metrics_from_loopback_lists_components_and_outbox(client):
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
