"""UTM-tagged links built for a campaign and kept with it."""

from django.db import transaction

from accounts.models import User
from accounts.services import audit_record
from campaigns.models import Campaign, UtmLink
from campaigns.services.guards import _require_edit
from campaigns.utm import build_utm_url, normalise


@transaction.atomic
def utm_link_create(
    *,
    campaign: Campaign,
    by: User,
    url: str,
    source: str,
    medium: str,
    utm_campaign: str = "",
    content: str = "",
    term: str = "",
) -> UtmLink:
    """Build a UTM-tagged link (campaign defaults to the code) and keep it with the campaign."""
    _require_edit(by, campaign)
    values = {
        "source": normalise(source),
        "medium": normalise(medium),
        "utm_campaign": normalise(utm_campaign) or campaign.code,
        "content": normalise(content),
        "term": normalise(term),
    }
    tagged = build_utm_url(
        url=url,
        source=values["source"],
        medium=values["medium"],
        campaign=values["utm_campaign"],
        content=values["content"],
        term=values["term"],
    )
    link = UtmLink(campaign=campaign, base_url=url.strip(), url=tagged, created_by=by, **values)
    link.full_clean()
    link.save()
    audit_record(
        actor=by, action="campaign.utm_link", obj=link, changes={"campaign": campaign.code, "url": tagged}
    )
    return link
