"""Who may do what with journeys and destinations; built on accounts.roles, reused by the API and pages.

- a journey is seen and edited by its team (marketing staff build their own) and by support staff;
- activating it for up to GRAY_LIMIT % of its trigger's customers is theirs too; more needs a manager
  (that activation is the approval);
- destinations carry secrets and where customer data goes: support staff create them.
"""

from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from accounts.roles import is_agent, is_manager
from journeys.models import Journey

GRAY_LIMIT = 10


def sees_all_journeys(user: User | AnonymousUser) -> bool:
    return is_agent(user) or (user.is_authenticated and user.is_superuser)


def can_view_journey(user: User | AnonymousUser, journey: Journey) -> bool:
    if not user.is_authenticated:
        return False
    return sees_all_journeys(user) or (user.team_id is not None and user.team_id == journey.team_id)


def can_dry_run_journey(user: User | AnonymousUser, journey: Journey) -> bool:
    """A dry run reads and writes nothing but its own result: whoever may see the journey."""
    return can_view_journey(user, journey)


def can_create_journey(user: User | AnonymousUser) -> bool:
    """Anyone in a team may draft a journey for their team."""
    return user.is_authenticated and (user.team_id is not None or sees_all_journeys(user))


def can_edit_journey(user: User | AnonymousUser, journey: Journey) -> bool:
    return can_view_journey(user, journey) and journey.status != Journey.Status.ARCHIVED


def can_activate_journey(user: User | AnonymousUser, journey: Journey, percent: int) -> bool:
    """Up to GRAY_LIMIT % by whoever may edit it; above, a manager (the approval)."""
    if not can_edit_journey(user, journey):
        return False
    return percent <= GRAY_LIMIT or is_manager(user)


def can_pause_journey(user: User | AnonymousUser, journey: Journey) -> bool:
    return can_edit_journey(user, journey)


def can_manage_destinations(user: User | AnonymousUser) -> bool:
    return is_agent(user)


# --- audience activation (docs/journeys.md, "Audience activation") ---------------------------------------


def can_sync_audience(user: User | AnonymousUser) -> bool:
    """Starting and retrying a sync sends customers out: whoever manages destinations."""
    return can_manage_destinations(user)


def can_view_sync_log(user: User | AnonymousUser) -> bool:
    """The sync log carries counts, codes and external ids of nobody: support staff."""
    return can_manage_destinations(user)


def can_send_personal_fields(user: User | AnonymousUser) -> bool:
    """Setting up (or changing) a destination that receives e-mail / phone: support staff with view_pii."""
    from privacy import personal_data

    return can_manage_destinations(user) and personal_data.can_see(user)
