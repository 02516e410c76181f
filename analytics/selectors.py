"""Reads for analytics, always scoped to the person asking."""

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from accounts.models import User
from accounts.roles import is_agent
from analytics.models import ReportDelivery, ReportJob, ReportSubscription
from analytics.permissions import DashboardScope, dashboard_scope


def dashboard_scope_for_user(*, user: User, dashboard: str) -> DashboardScope:
    """The part of the data the person's figures cover; PermissionDenied when the dashboard is not theirs."""
    scope = dashboard_scope(user, dashboard)
    if scope is None:
        raise PermissionDenied
    return scope


def links_to_queue(*, user: User) -> bool:
    """Chart clicks open the queue for support staff and the team's own request list for everyone else."""
    return is_agent(user)


def report_jobs_for_user(*, user: User) -> QuerySet[ReportJob]:
    """A person's own report jobs, newest first."""
    return ReportJob.objects.filter(owner=user).order_by("-created_at", "-id")


def report_job_get_for_user(*, user: User, job_id: int) -> ReportJob:
    """One of the person's own jobs, or 404 (other people's jobs do not exist for them)."""
    job = report_jobs_for_user(user=user).filter(pk=job_id).first()
    if job is None:
        raise Http404("No such report.")
    return job


def subscriptions_for_user(*, user: User) -> QuerySet[ReportSubscription]:
    """A person's weekly reports with their last deliveries (failed ones included)."""
    recent = ReportDelivery.objects.order_by("-created_at", "-id")
    return (
        ReportSubscription.objects.filter(owner=user)
        .prefetch_related(Prefetch("deliveries", queryset=recent, to_attr="recent_deliveries"))
        .order_by("kind", "id")
    )


def subscription_get_for_user(*, user: User, subscription_id: int) -> ReportSubscription:
    subscription = ReportSubscription.objects.filter(owner=user, pk=subscription_id).first()
    if subscription is None:
        raise Http404("No such subscription.")
    return subscription
