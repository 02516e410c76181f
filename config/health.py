"""`/healthz`: the state of the database, Redis and the Celery workers."""

import logging
import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app

log = logging.getLogger(__name__)


def check_database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down", reported with its message
        return {"ok": False, "error": str(exc)[:200]}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_redis() -> dict:
    started = time.monotonic()
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except redis.RedisError as exc:
        return {"ok": False, "error": str(exc)[:200]}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_workers(timeout: float = 1.0) -> dict:
    try:
        replies = celery_app.control.ping(timeout=timeout, limit=1)
    except Exception as exc:  # noqa: BLE001 - broker unreachable is reported, not raised
        return {"ok": False, "workers": 0, "error": str(exc)[:200]}
    return {"ok": bool(replies), "workers": len(replies)}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = check_database()
    cache = check_redis()
    workers = check_workers() if cache["ok"] else {"ok": False, "workers": 0, "error": "redis down"}
    checks = {"database": database, "redis": cache, "workers": workers}
    healthy = all(check["ok"] for check in checks.values())
    if not healthy:
        log.warning("healthz unhealthy: %s", {name: c["ok"] for name, c in checks.items()})
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "checks": checks}, status=200 if healthy else 503
    )
