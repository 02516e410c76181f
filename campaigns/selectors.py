"""Reads for campaigns, always scoped to the person asking."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from campaigns import figures as fig
from campaigns.models import ABTest, Campaign, CampaignTask, Conversion, DailyMetric, Touchpoint, UtmLink
from campaigns.permissions import sees_all_campaigns


def campaigns_for_user(*, user: User) -> QuerySet[Campaign]:
    """Campaigns a person may see: staff see all, everyone else their own team's."""
    qs = Campaign.objects.all()
    if not user.is_authenticated:
        return qs.none()
    if sees_all_campaigns(user):
        return qs
    if user.team_id is None:
        return qs.none()
    return qs.filter(team_id=user.team_id)


def campaign_get_for_user(*, user: User, code: str) -> Campaign:
    """One campaign by code, or 404 when it does not exist or is outside the person's reach."""
    campaign = (
        campaigns_for_user(user=user).select_related("owner", "team", "approved_by").filter(code=code).first()
    )
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


def campaign_list(
    *,
    user: User,
    status: str = "",
    team_id: int | None = None,
    channel: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    q: str = "",
) -> QuerySet[Campaign]:
    """The campaign list with its filters; a date range keeps campaigns that overlap it."""
    qs = campaigns_for_user(user=user).select_related("owner", "team")
    if status:
        qs = qs.filter(status=status)
    if team_id:
        qs = qs.filter(team_id=team_id)
    if channel:
        qs = qs.filter(channels__contains=[channel])
    if date_from:
        qs = qs.filter(end_date__gte=date_from)
    if date_to:
        qs = qs.filter(start_date__lte=date_to)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(code__icontains=q))
    # A correlated subquery sums spend for the rows of the page only (a join + GROUP BY would aggregate
    # every campaign's metrics before paginating, and the count would carry the join too).
    spend = (
        DailyMetric.objects.filter(campaign=OuterRef("pk"))
        .order_by()
        .values("campaign")
        .annotate(total=Sum("spend"))
        .values("total")
    )
    return qs.annotate(
        spend_total=Coalesce(
            Subquery(spend), Value(Decimal("0")), output_field=DecimalField(max_digits=18, decimal_places=2)
        )
    ).order_by("-start_date", "-id")


def campaign_timeline(*, user: User, date_from: dt.date, date_to: dt.date) -> QuerySet[Campaign]:
    """Campaigns overlapping a window, for the calendar; with open and overdue task counts."""
    today = timezone.localdate()
    return (
        campaigns_for_user(user=user)
        .filter(end_date__gte=date_from, start_date__lte=date_to)
        .select_related("team", "owner")
        .annotate(
            open_tasks=Count("tasks", filter=Q(tasks__done=False)),
            overdue_tasks=Count("tasks", filter=Q(tasks__done=False, tasks__due_date__lt=today)),
        )
        .order_by("start_date", "id")
    )


def campaign_totals(*, campaign: Campaign) -> dict[str, Any]:
    """Spend, revenue, impressions, clicks, leads and conversions summed in SQL."""
    return DailyMetric.objects.filter(campaign=campaign).aggregate(**fig.totals_annotations())


def campaign_spend(*, campaign: Campaign) -> Any:
    return DailyMetric.objects.filter(campaign=campaign).aggregate(s=fig.totals_annotations()["spend"])["s"]


def campaign_summary(*, campaign: Campaign, by_day: bool = False) -> dict[str, Any]:
    """Figures overall and per channel (the API's summary shape); per day too when asked."""
    totals = campaign_totals(campaign=campaign)
    summary = fig.figures(totals, campaign.budget)
    rows = (
        DailyMetric.objects.filter(campaign=campaign)
        .values("channel")
        .annotate(**fig.totals_annotations())
        .order_by("channel")
    )
    summary["by_channel"] = [{"channel": row["channel"], **fig.figures(row, None)} for row in rows]
    summary["funnel"] = fig.funnel(summary)
    if by_day:
        summary["by_day"] = campaign_daily(campaign=campaign)
    return summary


def campaign_daily(*, campaign: Campaign) -> list[dict[str, Any]]:
    """Figures per day (all channels together)."""
    rows = (
        DailyMetric.objects.filter(campaign=campaign)
        .values("date")
        .annotate(**fig.totals_annotations())
        .order_by("date")
    )
    return [{"date": row["date"].isoformat(), **fig.figures(row)} for row in rows]


def campaign_daily_by_channel(*, campaign: Campaign) -> list[dict[str, Any]]:
    """Spend and revenue per day and channel, for the charts."""
    rows = (
        DailyMetric.objects.filter(campaign=campaign)
        .values("date", "channel")
        .annotate(**fig.totals_annotations())
        .order_by("date", "channel")
    )
    return [{"date": row["date"].isoformat(), "channel": row["channel"], **fig.figures(row)} for row in rows]


def campaign_tasks(*, campaign: Campaign) -> QuerySet[CampaignTask]:
    return campaign.tasks.select_related("owner").order_by("done", "due_date", "id")


def campaign_utm_links(*, campaign: Campaign) -> QuerySet[UtmLink]:
    return campaign.utm_links.order_by("-created_at", "-id")


def campaign_ab_tests(*, campaign: Campaign) -> QuerySet[ABTest]:
    return campaign.ab_tests.prefetch_related("variants").order_by("-created_at", "-id")


def ab_test_get(*, campaign: Campaign, test_id: int) -> ABTest:
    test = campaign_ab_tests(campaign=campaign).filter(pk=test_id).first()
    if test is None:
        raise Http404("No such A/B test.")
    return test


def campaign_linked_tickets(*, campaign: Campaign, user: User) -> list[Any]:
    """Tickets linked to the campaign that the person may see (the tickets app's own scoping)."""
    from tickets.selectors import tickets_for_user

    return list(tickets_for_user(user=user).filter(campaign=campaign).order_by("-id")[:50])


def audience_available() -> bool:
    """True once the tags app offers audience counts."""
    try:
        from crm_tags import selectors as tag_selectors
    except ImportError:
        return False
    return hasattr(tag_selectors, "audience_count")


def audience_size(
    *, include: list[str], include_mode: str = "any", exclude: list[str] | None = None
) -> int | None:
    """How many customers an audience reaches right now (None while the tags app is not there)."""
    if not include or not audience_available():
        return None if not audience_available() else 0
    from crm_tags import selectors as tag_selectors

    return tag_selectors.audience_count(include=include, include_mode=include_mode, exclude=exclude or [])


def campaign_audience_size(*, campaign: Campaign) -> int | None:
    return audience_size(
        include=list(campaign.audience_include),
        include_mode=campaign.audience_include_mode,
        exclude=list(campaign.audience_exclude),
    )


def known_tag_slugs(slugs: list[str]) -> set[str] | None:
    """Which of these tag slugs exist (None while the tags app has no Tag model)."""
    try:
        from crm_tags.models import Tag
    except ImportError:
        return None
    return set(Tag.objects.filter(slug__in=slugs).values_list("slug", flat=True))


def audience_tag_choices() -> list[dict[str, str]]:
    """Every tag as {slug, name}, by name, for the audience picker (every signed-in person sees every tag)."""
    try:
        from crm_tags.models import Tag
    except ImportError:
        return []
    return [
        {"slug": slug, "name": name}
        for slug, name in Tag.objects.order_by("name").values_list("slug", "name")
    ]


def customer_touchpoints(*, external_id: str) -> QuerySet[Touchpoint]:
    """A person's touchpoints across campaigns, oldest first (their data export; not scoped: the caller
    checked the right to it)."""
    return (
        Touchpoint.objects.filter(customer_external_id=external_id)
        .order_by("occurred_at", "id")
        .values("campaign__code", "occurred_at", "channel", "utm_source", "utm_medium", "utm_campaign")
    )


def customer_conversions(*, external_id: str) -> QuerySet[Conversion]:
    """A person's conversions across campaigns, oldest first (their data export)."""
    return (
        Conversion.objects.filter(customer_external_id=external_id)
        .order_by("occurred_at", "id")
        .values("campaign__code", "occurred_at", "revenue")
    )
