"""Queue a Celery task by name after the current transaction commits.

Services enqueue through here instead of importing their app's tasks module, so tasks can import services
at module load without a cycle. The task object is looked up in the app's registry (importing every app's
tasks on first use), so `CELERY_TASK_ALWAYS_EAGER` runs it inline and a broker outage falls back to the
database outbox (config/celery.py) exactly as `.delay()` does.
"""

from typing import Any

from celery import Task
from django.db import transaction


class UnknownTask(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"No Celery task is named {name!r}; check the dotted name (app.tasks.function).")


def registered_task(name: str) -> Task:
    """The task registered under `name`; raises UnknownTask when no app defines it."""
    from config.celery import app

    task = app.tasks.get(name)
    if task is None:
        app.loader.import_default_modules()  # autodiscovery is lazy outside a worker
        task = app.tasks.get(name)
    if task is None:
        raise UnknownTask(name)
    return task


def enqueue(name: str, *args: Any, **kwargs: Any) -> None:
    """Send task `name` with JSON-able arguments once the caller's transaction commits (at once outside
    one). The name is checked now, so a typo fails the write instead of a later callback."""
    task = registered_task(name)
    transaction.on_commit(lambda: task.apply_async(args=args, kwargs=kwargs))
