"""Warnings when a campaign's spend reaches 80 % and 100 % of its budget."""

import logging
from decimal import Decimal

from django.utils import timezone

from accounts.selectors import managers
from accounts.services import audit_record, notify
from campaigns.models import Campaign

log = logging.getLogger(__name__)


def _budget_warnings(campaign: Campaign) -> None:
    """Warn owner and managers once when spend reaches 80 % and once at 100 % of the budget (in a transaction)."""
    from campaigns.selectors import campaign_spend

    if not campaign.budget:
        return
    spend = campaign_spend(campaign=campaign)
    used = spend / campaign.budget
    now = timezone.now()
    for threshold, field in ((Decimal("1"), "budget_warned_100_at"), (Decimal("0.8"), "budget_warned_80_at")):
        if used >= threshold and getattr(campaign, field) is None:
            # Jumping straight past 100 % sends the 100 % warning only; the 80 % one counts as sent.
            stamps = ["budget_warned_100_at", "budget_warned_80_at"] if threshold == 1 else [field]
            for stamp in stamps:
                if getattr(campaign, stamp) is None:
                    setattr(campaign, stamp, now)
            campaign.save(update_fields=stamps)
            audit_record(
                actor=None,
                action="campaign.budget_warning",
                obj=campaign,
                changes={"threshold": str(threshold), "spend": str(spend), "budget": str(campaign.budget)},
            )
            notify(
                recipients=[campaign.owner, *managers()],
                kind="campaign.budget",
                params={
                    "name": campaign.name,
                    "pct": int(threshold * 100),
                    "spend": spend,
                    "budget": campaign.budget,
                },
                url=campaign.get_absolute_url(),
            )
            log.info("campaign %s budget warning at %s", campaign.code, threshold)
            return
