"""The Celery app: Redis broker, configuration from Django settings (CELERY_*), tasks from every app.

Sending a task never fails a request: when the broker cannot be reached, the message is kept in the
database outbox (accounts.OutboxMessage) and re-sent by `accounts.tasks.flush_outbox` once Redis is back.
"""

import logging
import os

from celery import Celery, Task
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

log = logging.getLogger(__name__)
BROKER_ERRORS = (OperationalError, RedisConnectionError, RedisTimeoutError, ConnectionError)
# Options that can be kept as JSON and given back to apply_async when the message is re-sent.
_KEPT_OPTIONS = ("countdown", "queue", "priority", "expires")


class OutboxTask(Task):
    """A task whose sending falls back to the database outbox when the broker is down."""

    def apply_async(
        self,
        args=None,
        kwargs=None,
        task_id=None,
        producer=None,
        link=None,
        link_error=None,
        shadow=None,
        **options,
    ):
        try:
            return super().apply_async(args, kwargs, task_id, producer, link, link_error, shadow, **options)
        except BROKER_ERRORS as exc:
            if self.app.conf.task_always_eager:
                raise
            from accounts.models import OutboxMessage

            kept = {
                k: v for k, v in options.items() if k in _KEPT_OPTIONS and isinstance(v, (int, str, float))
            }
            OutboxMessage.objects.create(
                task_name=self.name,
                args=list(args or []),
                kwargs=dict(kwargs or {}),
                options=kept,
                error=str(exc)[:500],
            )
            log.warning("broker unreachable; task %s kept in the outbox: %s", self.name, exc)
            return None


app = Celery("martech", task_cls=OutboxTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
