"""Celery entry points of audience activation (registered through journeys.tasks)."""

from celery import shared_task


@shared_task(name="journeys.tasks.activation_sync", acks_late=True)
def activation_sync(run_id: int) -> None:
    """Run a queued audience sync (its first attempt or a retry)."""
    from journeys.activation.sync import sync_execute

    sync_execute(run_id=run_id)


@shared_task(name="journeys.tasks.activation_schedules", acks_late=True)
def activation_schedules() -> None:
    """Every minute (beat): start the hourly and daily audience syncs that are due."""
    from journeys.activation.schedules import schedules_run

    schedules_run()


@shared_task(name="journeys.tasks.activation_after_build", acks_late=True)
def activation_after_build(tag_id: int) -> None:
    """A build of the tag committed: run its "after each build" syncs."""
    from journeys.activation.schedules import after_build

    after_build(tag_id=tag_id)
