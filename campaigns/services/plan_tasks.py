"""The tasks of a campaign's plan: add, tick off or reopen, remove."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record, notify
from campaigns.models import Campaign, CampaignTask
from campaigns.services.guards import _require_edit
from campaigns.services.lifecycle import _json_value


@transaction.atomic
def task_create(
    *, campaign: Campaign, by: User, title: str, owner: User | None = None, due_date: dt.date | None = None
) -> CampaignTask:
    """Add a task to a campaign's plan."""
    _require_edit(by, campaign)
    task = CampaignTask(campaign=campaign, title=title.strip(), owner=owner, due_date=due_date)
    task.full_clean()
    task.save()
    audit_record(
        actor=by,
        action="campaign.task_create",
        obj=task,
        changes={"campaign": campaign.code, "title": task.title, "due_date": _json_value(due_date)},
    )
    if owner is not None and owner != by:
        notify(
            recipients=[owner],
            kind="campaign.task",
            params={"campaign": campaign.name, "title": task.title},
            url=campaign.get_absolute_url(),
        )
    return task


@transaction.atomic
def task_set_done(*, task: CampaignTask, by: User, done: bool) -> CampaignTask:
    """Tick a task off (or reopen it)."""
    task = CampaignTask.objects.select_for_update().select_related("campaign").get(pk=task.pk)
    _require_edit(by, task.campaign)
    if task.done == done:
        return task
    task.done = done
    task.done_at = timezone.now() if done else None
    task.save(update_fields=["done", "done_at"])
    audit_record(actor=by, action="campaign.task_done" if done else "campaign.task_reopen", obj=task)
    return task


@transaction.atomic
def task_delete(*, task: CampaignTask, by: User) -> None:
    """Remove a task from the plan."""
    _require_edit(by, task.campaign)
    audit_record(actor=by, action="campaign.task_delete", obj=task, changes={"title": task.title})
    task.delete()
