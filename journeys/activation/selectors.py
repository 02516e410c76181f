"""Reads of audience activation, scoped to the viewer: destinations, their schedules and the sync log.
Nothing here reads a customer's value: the log holds counts, codes and paths."""

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from journeys import permissions
from journeys.models import ActivationSchedule, Destination, SyncRun


def destination_get_for_user(*, user: User | AnonymousUser, destination_id: int) -> Destination:
    """The destination, or 404 outside the viewer's reach (only support staff manage destinations)."""
    if not permissions.can_manage_destinations(user):
        raise Http404
    destination = Destination.objects.filter(pk=destination_id).first()
    if destination is None:
        raise Http404
    return destination


def sync_log(*, user: User | AnonymousUser, destination: Destination | None = None) -> QuerySet[SyncRun]:
    """Syncs newest first with what their rows show (one query: tag, campaign and destination joined)."""
    if not permissions.can_view_sync_log(user):
        return SyncRun.objects.none()
    runs = SyncRun.objects.select_related("tag", "campaign", "destination", "requested_by").order_by(
        "-created_at", "-id"
    )
    if destination is not None:
        runs = runs.filter(destination=destination)
    return runs


def sync_get_for_user(*, user: User | AnonymousUser, destination: Destination, sync_id: int) -> SyncRun:
    run = sync_log(user=user, destination=destination).filter(pk=sync_id).first()
    if run is None:
        raise Http404
    return run


def schedules_for(*, destination: Destination | None = None) -> QuerySet[ActivationSchedule]:
    schedules = ActivationSchedule.objects.select_related("tag", "campaign", "destination").order_by(
        "destination__name", "id"
    )
    if destination is not None:
        schedules = schedules.filter(destination=destination)
    return schedules
