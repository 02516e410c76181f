"""`/metrics`: Prometheus text exposition of the portal's health and work in flight.

Figures are read at scrape time from Postgres and Redis (so every web process answers the same),
plus each app's optional `<app>.metrics.collect()` returning `(name, help, labels, value)` tuples.
Asks for `Authorization: Bearer $METRICS_TOKEN`; anonymous loopback callers are let in only with
METRICS_ALLOW_LOOPBACK (behind a proxy on the same host every caller is a loopback caller).
"""

import hmac
import importlib
import ipaddress
import logging
from collections.abc import Iterable

import redis
from django.apps import apps
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.health import check_database, check_redis

log = logging.getLogger(__name__)
Sample = tuple[str, str, dict[str, str], float]


def _allowed(request: HttpRequest) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    # bytes: compare_digest refuses str with non-ASCII characters, which a header may carry
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    if not settings.METRICS_ALLOW_LOOPBACK:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _core_samples() -> Iterable[Sample]:
    from accounts.models import OutboxMessage

    database = check_database()
    cache = check_redis()
    yield (
        "martech_up",
        "1 when the component answers",
        {"component": "database"},
        1.0 if database["ok"] else 0.0,
    )
    yield ("martech_up", "1 when the component answers", {"component": "redis"}, 1.0 if cache["ok"] else 0.0)
    if database["ok"]:
        yield (
            "martech_outbox_pending",
            "tasks waiting for the broker",
            {},
            float(OutboxMessage.objects.count()),
        )
    if cache["ok"]:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
        yield (
            "martech_celery_queue_length",
            "messages waiting in the Celery queue",
            {"queue": "celery"},
            float(client.llen("celery")),
        )


def _app_samples() -> Iterable[Sample]:
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.metrics")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.metrics":
                raise
            continue
        yield from module.collect()


def render(samples: Iterable[Sample]) -> str:
    lines: list[str] = []
    described: set[str] = set()
    for name, help_text, labels, value in samples:
        if name not in described:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            described.add(name)
        label_text = ",".join(
            f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
            for k, v in sorted(labels.items())
        )
        lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
    return "\n".join(lines) + "\n"


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    samples = list(_core_samples())
    try:
        samples += list(_app_samples())
    except Exception:  # noqa: BLE001 - one app's figures failing must not hide the core ones
        log.exception("app metrics failed")
    return HttpResponse(render(samples), content_type="text/plain; version=0.0.4; charset=utf-8")
