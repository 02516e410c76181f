"""The refusals campaign writes share: a change by someone who may not edit the campaign, a status move
the campaign does not allow."""

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from accounts.models import User
from campaigns import permissions
from campaigns.models import Campaign


class TransitionNotAllowed(PermissionDenied):
    def __init__(self, current: str, to: str) -> None:
        super().__init__(
            _("A campaign cannot go from %(current)s to %(to)s.") % {"current": current, "to": to}
        )


def _require_edit(by: User, campaign: Campaign) -> None:
    if not permissions.can_edit_campaign(by, campaign):
        raise PermissionDenied(_("You cannot change this campaign."))
