"""Who may do what with campaigns; built on accounts.roles and reused by views and the API."""

from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from accounts.roles import is_agent, is_manager
from campaigns.models import Campaign


def sees_all_campaigns(user: User | AnonymousUser) -> bool:
    """Support staff (agents and managers) see every team's campaigns; requesters their own team's."""
    return is_agent(user) or (user.is_authenticated and user.is_superuser)


def can_view_campaign(user: User | AnonymousUser, campaign: Campaign) -> bool:
    if not user.is_authenticated:
        return False
    return sees_all_campaigns(user) or (user.team_id is not None and user.team_id == campaign.team_id)


def can_create_campaign(user: User | AnonymousUser) -> bool:
    """Anyone in a team may draft a campaign for their team."""
    return user.is_authenticated and user.team_id is not None


def can_edit_campaign(user: User | AnonymousUser, campaign: Campaign) -> bool:
    """The plan is edited by the owning team (or support staff) until it is reviewed."""
    return can_view_campaign(user, campaign) and campaign.status != Campaign.Status.REVIEWED


def can_approve_campaign(user: User | AnonymousUser, campaign: Campaign) -> bool:
    return is_manager(user) and campaign.status == Campaign.Status.PLANNING


def can_change_status(user: User | AnonymousUser, campaign: Campaign) -> bool:
    """Moving between running and completed by hand: the owner's team or staff, after approval."""
    return can_view_campaign(user, campaign) and campaign.status in (
        Campaign.Status.APPROVED,
        Campaign.Status.RUNNING,
        Campaign.Status.COMPLETED,
    )


def can_review_campaign(user: User | AnonymousUser, campaign: Campaign) -> bool:
    return can_view_campaign(user, campaign) and campaign.status in (
        Campaign.Status.COMPLETED,
        Campaign.Status.REVIEWED,
    )


def can_publish_review(user: User | AnonymousUser, campaign: Campaign) -> bool:
    return can_view_campaign(user, campaign) and campaign.status == Campaign.Status.REVIEWED


def can_edit_kpi_targets(user: User | AnonymousUser, campaign: Campaign) -> bool:
    """KPI targets are set by the campaign's owner or a manager, until the campaign is reviewed."""
    if not can_view_campaign(user, campaign) or campaign.status == Campaign.Status.REVIEWED:
        return False
    return user.pk == campaign.owner_id or is_manager(user)
