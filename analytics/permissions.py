"""Who may see which dashboard and run which report; built on accounts.roles, reused by views and the API."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from accounts.roles import can_view_dashboards, can_view_pii, is_agent, is_manager

if TYPE_CHECKING:
    from analytics.models import ReportJob

SUPPORT, MARKETING, CUSTOMERS = "support", "marketing", "customers"
DASHBOARDS = (SUPPORT, MARKETING, CUSTOMERS)
# Dashboards whose figures can be cut down to one team; the customers dashboard has no team dimension.
TEAM_SCOPED_DASHBOARDS = (SUPPORT, MARKETING)


@dataclass(frozen=True)
class DashboardScope:
    """What part of the data a person's figures cover: every team, or only their own (`team_id`)."""

    team_id: int | None

    @property
    def all_teams(self) -> bool:
        return self.team_id is None


def sees_all_dashboards(user: User | AnonymousUser) -> bool:
    """Managers (or anyone granted `view_dashboards`) see every dashboard across all teams."""
    return can_view_dashboards(user)


def dashboard_scope(user: User | AnonymousUser, dashboard: str) -> DashboardScope | None:
    """The scope of a dashboard for a person, or None when they may not open it at all.

    Without `view_dashboards`, a person who belongs to a team sees the support and marketing
    figures of their own team only; nobody else sees anything.
    """
    if not user.is_authenticated or dashboard not in DASHBOARDS:
        return None
    if sees_all_dashboards(user):
        return DashboardScope(team_id=None)
    if dashboard in TEAM_SCOPED_DASHBOARDS and user.team_id is not None:
        return DashboardScope(team_id=user.team_id)
    return None


def can_open_dashboard_index(user: User | AnonymousUser) -> bool:
    """The dashboards landing page (all dashboards side by side) is for managers."""
    return sees_all_dashboards(user)


def can_run_reports(user: User | AnonymousUser) -> bool:
    """Support staff and dashboard viewers export reports."""
    return is_agent(user) or can_view_dashboards(user)


def can_cancel_report(user: User | AnonymousUser, job: "ReportJob") -> bool:
    """A report job is cancelled by the person who started it (nobody else sees it)."""
    return user.is_authenticated and job.owner_id == user.pk


def report_unmasked(user: User | AnonymousUser) -> bool:
    """Customer contact data in exports is unmasked only for `view_pii`."""
    return can_view_pii(user)


def can_subscribe_reports(user: User | AnonymousUser) -> bool:
    """Weekly e-mail reports are for managers."""
    return is_manager(user) or can_view_dashboards(user)
