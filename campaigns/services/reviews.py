"""The review of a finished campaign: written with its figures frozen, published to the knowledge base."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from campaigns import permissions
from campaigns.models import Campaign, CampaignReview
from campaigns.services.guards import TransitionNotAllowed


@transaction.atomic
def review_save(*, campaign: Campaign, by: User, what_worked: str, what_to_improve: str) -> CampaignReview:
    """Write (or edit) the review; the first save freezes the figures and marks the campaign reviewed."""
    from campaigns.selectors import campaign_summary

    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not permissions.can_review_campaign(by, campaign):
        raise TransitionNotAllowed(campaign.status, Campaign.Status.REVIEWED)
    review = CampaignReview.objects.filter(campaign=campaign).first()
    created = review is None
    if review is None:
        review = CampaignReview(campaign=campaign, author=by, figures=campaign_summary(campaign=campaign))
        review.figures["frozen_at"] = timezone.now().isoformat()
    review.what_worked = what_worked.strip()
    review.what_to_improve = what_to_improve.strip()
    review.full_clean()
    review.save()
    old = campaign.status
    if campaign.status != Campaign.Status.REVIEWED:
        campaign.status = Campaign.Status.REVIEWED
        campaign.save(update_fields=["status", "updated_at"])
    audit_record(
        actor=by,
        action="campaign.review" if created else "campaign.review_edit",
        obj=campaign,
        changes={"status": [old, campaign.status]},
    )
    return review


def _review_markdown(campaign: Campaign, review: CampaignReview) -> str:
    f = review.figures

    def pct(value: Any) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    def num(value: Any) -> str:
        return "—" if value is None else f"{value:,.2f}"

    lines = [
        f"## {_('Figures at review time')}",
        "",
        f"| {_('Spend')} | {_('Revenue')} | ROI | ROAS | CAC | CTR | CVR | {_('Budget used')} |",
        "|---|---|---|---|---|---|---|---|",
        f"| {num(f.get('spend'))} | {num(f.get('revenue'))} | {pct(f.get('roi'))} | {num(f.get('roas'))} "
        f"| {num(f.get('cac'))} | {pct(f.get('ctr'))} | {pct(f.get('cvr'))} | {pct(f.get('budget_used_pct'))} |",
        "",
        f"## {_('What worked')}",
        "",
        review.what_worked,
        "",
        f"## {_('What to improve')}",
        "",
        review.what_to_improve,
    ]
    return "\n".join(lines)


def knowledge_base_available() -> bool:
    try:
        from knowledge_base import services as kb_services
    except ImportError:
        return False
    return hasattr(kb_services, "article_create")


@transaction.atomic
def review_publish(*, campaign: Campaign, by: User) -> Any:
    """Publish the review to the knowledge base as a retrospective article; returns the article."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not permissions.can_publish_review(by, campaign):
        raise PermissionDenied(_("Only a reviewed campaign can be published."))
    if not knowledge_base_available():
        raise PermissionDenied(_("The knowledge base is not available."))
    from knowledge_base import services as kb_services

    review = CampaignReview.objects.select_for_update().get(campaign=campaign)
    article = kb_services.article_create(
        author=by,
        title=_("Retrospective: %(name)s") % {"name": campaign.name},
        summary=(review.what_worked.splitlines() or [""])[0][:300],
        body=_review_markdown(campaign, review),
        kind="retrospective",
        language=getattr(by, "language", "zh-hans") or "zh-hans",
        related_campaign=campaign,
    )
    review.kb_article_id = article.pk
    review.published_at = timezone.now()
    review.save(update_fields=["kb_article_id", "published_at"])
    audit_record(actor=by, action="campaign.review_publish", obj=campaign, changes={"article": article.pk})
    return article
