"""Redis down: pages keep serving, writes commit, their background work waits in the outbox and is
sent when Redis is back; /healthz says what is wrong."""

import pytest
import redis
from django.core.cache import caches
from django.db import transaction

from accounts.models import Notification, OutboxMessage
from accounts.services import notify, outbox_flush
from config.celery import app as celery_app

DEAD = "redis://127.0.0.1:1/0"


def _point_broker_at(url: str) -> None:
    celery_app.conf.broker_url = url
    celery_app.conf.broker_write_url = None
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_down(settings):
    """The broker and the cache point at a port where nothing listens; eager mode off."""
    live_broker = celery_app.conf.broker_url
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": DEAD}}
    settings.REDIS_URL = DEAD
    caches._settings = None
    celery_app.conf.task_always_eager = False
    _point_broker_at(DEAD)
    yield live_broker
    celery_app.conf.task_always_eager = True
    _point_broker_at(live_broker)


@pytest.mark.django_db(transaction=True)
def test_pages_and_api_keep_serving(redis_down, client_for, api_for, agent):
    assert client_for(agent).get("/accounts/preferences/").status_code == 200
    assert api_for(agent).get("/api/v1/me/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_healthz_reports_redis_down(redis_down, client):
    body = client.get("/healthz").json()
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_write_commits_and_its_task_is_sent_when_redis_is_back(redis_down, agent, settings):
    # given Redis is down, when a write that queues background work commits
    with transaction.atomic():
        notify(recipients=[agent], kind="ticket.assigned", params={"key": "MT-9001"})
    # then the write is there and its task waits in the outbox
    assert Notification.objects.filter(recipient=agent, params={"key": "MT-9001"}).exists()
    kept = OutboxMessage.objects.get()
    assert kept.task_name == "accounts.tasks.send_notification_emails"
    # and a flush while Redis is still down keeps it
    assert outbox_flush() == 0
    assert OutboxMessage.objects.count() == 1

    # when Redis is back
    live = redis_down
    _point_broker_at(live)
    client = redis.Redis.from_url(live)
    client.delete("email")  # notification e-mails have a queue of their own (config/settings.py)
    assert outbox_flush() == 1
    # then the outbox is empty and the message is on the broker's queue
    assert OutboxMessage.objects.count() == 0
    assert client.llen("email") == 1
    client.delete("email")
