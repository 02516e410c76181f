"""Wake-ups: a tag build that commits (or an import, whose builds follow) queues a journey tick, so
customers who enter a tag are enrolled and acted on within seconds instead of at the next beat; an events
import that commits queues a pass over the new events (event triggers, goals, waits for an event). The beat
tick reads the same cursors, so a lost wake-up only delays."""

from typing import Any

from django.db.models.signals import post_save

from config.task_queue import enqueue


def _tag_build_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    from crm_tags.models import TagBuild

    if instance.status == TagBuild.Status.DONE and (instance.entered or instance.exited):
        enqueue("journeys.tasks.tag_build_done", instance.tag_id)


def _events_committed(sender: Any, rows: int, **kwargs: Any) -> None:
    enqueue("journeys.tasks.events_arrived")


def connect_signals() -> None:
    from crm_tags.models import TagBuild
    from crm_tags.signals import events_committed

    post_save.connect(_tag_build_saved, sender=TagBuild, dispatch_uid="journeys-tag-build-done")
    events_committed.connect(_events_committed, dispatch_uid="journeys-events-arrived")
