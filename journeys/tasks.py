"""Entry points (thin): the beat tick, the wake-up after a tag build, sending deliveries."""

from celery import shared_task

from journeys import admission, delivery, engine, timed


@shared_task(acks_late=True)
def tick() -> None:
    """Every few seconds (beat): admit from new tag builds, events, dates and schedules, run due steps, send
    deliveries."""
    admission.admit_tag_triggers()
    timed.admit_time_triggers()
    admission.process_new_events()
    engine.run_due()
    delivery.send_due()


@shared_task(acks_late=True)
def tag_build_done(tag_id: int) -> None:
    """A build of the tag committed (an event import's rebuilds too): admit its entered/exited customers,
    read new events, and run what became due, now rather than at the next beat."""
    admission.admit_tag_triggers(tag_id=tag_id)
    admission.process_new_events()
    engine.run_due()
    delivery.send_due()


@shared_task(acks_late=True)
def events_arrived() -> None:
    """An events import committed: read its events now (event triggers admit, goals convert, waits for an
    event wake), run what became due and send it, rather than at the next beat."""
    admission.process_new_events()
    engine.run_due()
    delivery.send_due()


@shared_task(acks_late=True)
def send_deliveries() -> None:
    delivery.send_due()


@shared_task(acks_late=True)
def dry_run(dry_run_id: int) -> None:
    """A dry run (back-test) of a journey: reads only, stores its result on the DryRun row."""
    from journeys.dryrun import dry_run_execute

    dry_run_execute(dry_run_id=dry_run_id)


# audience activation's tasks, registered with the app when this module is imported
from journeys.activation.tasks import (  # noqa: E402, F401
    activation_after_build,
    activation_schedules,
    activation_sync,
)
