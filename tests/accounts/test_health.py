import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate, timeout: float = 60.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)  # polling a condition, bounded by the deadline
    return False


@pytest.fixture
def live_worker(settings):
    """A real Celery worker on the test broker, gone when the test ends."""
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"healthtest-{os.getpid()}@%h",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for(lambda: bool(celery_app.control.ping(timeout=0.5))), "worker did not answer"
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.django_db
def test_healthz_without_worker_is_503(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["workers"]["ok"] is False


@pytest.mark.django_db
def test_healthz_with_worker_is_200(client, live_worker):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["workers"]["workers"] >= 1


@pytest.mark.django_db
def test_healthz_reports_redis_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
