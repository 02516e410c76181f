"""Campaign pages (HTML + htmx): thin, calling the same services and selectors as the API.

Here: the list (and its CSV), the calendar, the plan form and the campaign page with its tabs. The tabs'
actions live by page area: plan_views (tasks, UTM builder), import_views (CSV imports), abtest_views and
review_views.
"""

import datetime as dt
import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.value_labels import channel_label
from campaigns import attribution, forms, kpi, permissions, selectors, services
from campaigns import figures as fig
from campaigns.models import Campaign, CampaignReview
from config.concurrency import EditConflict, VersionRequired, conflict_status
from config.csv_export import stream_csv
from config.db_router import replica_reads_iter
from config.inputs import InvalidInput, calendar_day

log = logging.getLogger(__name__)

TABS = ("plan", "audience", "figures", "ab_tests", "attribution", "review")


def _detail_url(campaign: Campaign, tab: str = "") -> str:
    url = reverse("campaigns:detail", kwargs={"code": campaign.code})
    return f"{url}?tab={tab}" if tab else url


# List, export, calendar ------------------------------------------------------------------------


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The campaign list with filters; `?export=csv` downloads the filtered list."""
    form = forms.CampaignFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_valid():
        data = form.cleaned_data
        filters = {
            "q": data.get("q") or "",
            "status": data.get("status") or "",
            "team_id": data["team"].pk if data.get("team") else None,
            "channel": (data.get("channel") or "").strip().lower(),
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }
    campaigns = selectors.campaign_list(user=request.user, **filters)
    if request.GET.get("export") == "csv":
        return _export_csv(campaigns)
    page = Paginator(campaigns, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "nav_active": "campaigns",
        "form": form,
        "page_obj": page,
        "query": query.urlencode(),
        "can_create": permissions.can_create_campaign(request.user),
        "today": timezone.localdate(),
    }
    template = "campaigns/partials/list_table.html" if request.htmx else "campaigns/index.html"
    return render(request, template, context)


def _export_csv(campaigns: Any) -> StreamingHttpResponse:
    header = [
        "code",
        "name",
        "status",
        "team",
        "owner",
        "start_date",
        "end_date",
        "budget",
        "spend",
        "channels",
    ]
    # read from the replica when it serves (config/db_router.py), while the body streams; who may see
    # which campaigns was decided on the primary, in the view (campaigns_for_user)
    rows = replica_reads_iter(
        lambda: (
            [
                c.code,
                c.name,
                c.status,
                c.team.name,
                c.owner.username,
                c.start_date.isoformat(),
                c.end_date.isoformat(),
                c.budget,
                c.spend_total,
                " ".join(c.channels),
            ]
            for c in campaigns.iterator(chunk_size=500)
        )
    )
    response = StreamingHttpResponse(stream_csv(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="campaigns.csv"'
    return response


@login_required
@require_GET
def calendar(request: HttpRequest) -> HttpResponse:
    """A timeline of campaigns across teams over a window of months."""
    today = timezone.localdate()
    try:
        start = calendar_day(request.GET.get("start", ""))  # bounded: the months around it stay dates
    except InvalidInput:
        start = today.replace(day=1) - dt.timedelta(days=31)
    start = start.replace(day=1)
    months = 4
    end_month = start
    for _i in range(months):
        end_month = (end_month + dt.timedelta(days=32)).replace(day=1)
    end = end_month - dt.timedelta(days=1)
    span = (end - start).days + 1
    rows = []
    for campaign in selectors.campaign_timeline(user=request.user, date_from=start, date_to=end):
        left = max((campaign.start_date - start).days, 0)
        right = min((campaign.end_date - start).days, span - 1)
        rows.append(
            {
                "campaign": campaign,
                "offset": round(100 * left / span, 2),
                "width": max(round(100 * (right - left + 1) / span, 2), 1),
            }
        )
    month_marks = []
    cursor = start
    while cursor <= end:
        month_marks.append({"date": cursor, "offset": round(100 * (cursor - start).days / span, 2)})
        cursor = (cursor + dt.timedelta(days=32)).replace(day=1)
    context = {
        "nav_active": "campaigns",
        "rows": rows,
        "months": month_marks,
        "start": start,
        "end": end,
        "previous": (start - dt.timedelta(days=1)).replace(day=1),
        "next": (start + dt.timedelta(days=32)).replace(day=1),
        "today_offset": round(100 * (today - start).days / span, 2) if start <= today <= end else None,
    }
    return render(request, "campaigns/calendar.html", context)


# Create / edit ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    if not permissions.can_create_campaign(request.user):
        raise PermissionDenied(_("You need a team to draft a campaign."))
    form = forms.CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(
                by=request.user, code=form.cleaned_data["code"], **form.plan()
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Campaign drafted. A manager approves it before it runs."))
            return redirect(_detail_url(campaign))
    context = {"nav_active": "campaigns", "form": form, "title": _("New campaign")}
    return render(request, "campaigns/form.html", context, status=422 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    if not permissions.can_edit_campaign(request.user, campaign):
        raise PermissionDenied(_("You cannot change this campaign."))
    form = forms.CampaignForm(request.POST or None, instance=campaign)
    context = {"nav_active": "campaigns", "form": form, "campaign": campaign, "title": _("Edit plan")}
    if request.method == "POST" and form.is_valid():
        try:
            services.campaign_update(
                campaign=campaign, by=request.user, expected_version=form.submitted_version(), **form.plan()
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except (EditConflict, VersionRequired) as exc:
            # Nothing saved: the form again, filled from the campaign as it now is.
            campaign = selectors.campaign_get_for_user(user=request.user, code=code)
            current = forms.CampaignForm(instance=campaign)
            context |= {
                "form": current,
                "campaign": campaign,
                "conflict": str(exc),
                "unsaved": form.unsaved_values(current),
            }
            return render(request, "campaigns/form.html", context, status=conflict_status(exc))
        else:
            messages.success(request, _("Plan saved."))
            return redirect(_detail_url(campaign))
    return render(request, "campaigns/form.html", context, status=422 if form.errors else 200)


@login_required
@require_GET
def audience_size(request: HttpRequest) -> HttpResponse:
    """The live size of the audience typed in the form (htmx)."""
    include = [
        s.strip().lower()
        for s in request.GET.get("include_text", "").replace("，", ",").split(",")
        if s.strip()
    ]
    exclude = [
        s.strip().lower()
        for s in request.GET.get("exclude_text", "").replace("，", ",").split(",")
        if s.strip()
    ]
    mode = request.GET.get("audience_include_mode", "any")
    mode = mode if mode in Campaign.IncludeMode.values else "any"
    size = selectors.audience_size(include=include, include_mode=mode, exclude=exclude)
    return render(
        request,
        "campaigns/partials/audience_size.html",
        {"size": size, "available": selectors.audience_available(), "include": include},
    )


# The campaign page -----------------------------------------------------------------------------


def _tab_context(request: HttpRequest, campaign: Campaign, tab: str) -> dict[str, Any]:
    user = request.user
    can_edit = permissions.can_edit_campaign(user, campaign)
    context: dict[str, Any] = {"campaign": campaign, "tab": tab, "can_edit": can_edit}
    if tab == "plan":
        tasks = list(selectors.campaign_tasks(campaign=campaign))
        context.update(
            tasks=tasks,
            task_form=forms.TaskForm(campaign=campaign),
            linked_tickets=selectors.campaign_linked_tickets(campaign=campaign, user=user),
            utm_links=list(selectors.campaign_utm_links(campaign=campaign)[:20]),
        )
    elif tab == "audience":
        context.update(
            audience_size=selectors.campaign_audience_size(campaign=campaign),
            audience_available=selectors.audience_available(),
        )
    elif tab == "figures":
        summary = selectors.campaign_summary(campaign=campaign, by_day=True)
        daily = summary["by_day"]
        by_day_channel = selectors.campaign_daily_by_channel(campaign=campaign)
        funnel = summary["funnel"]
        context.update(
            summary=summary,
            # KPI targets against the actuals (issue 21, campaigns.kpi)
            kpi=kpi.kpi_shown(kpi.kpi_rows(campaign.kpi_targets, summary)),
            can_edit_kpi=permissions.can_edit_kpi_targets(user, campaign),
            daily=daily,
            funnel=funnel,
            funnel_by_channel=[
                {"channel": r["channel"], "steps": fig.funnel(r)} for r in summary["by_channel"]
            ],
            chart_data={
                "daily": daily,
                "by_day_channel": by_day_channel,
                "by_channel": summary["by_channel"],
                "funnel": funnel,
                "labels": {
                    "spend": _("Spend"),
                    "revenue": _("Revenue"),
                    "conversions": _("Conversions"),
                    "roas": "ROAS",
                    "funnel": _("Funnel"),
                    "by_day": _("Spend and revenue by day"),
                    "by_channel": _("Spend and revenue by channel"),
                    "channels": {r["channel"]: channel_label(r["channel"]) for r in summary["by_channel"]},
                    "steps": {
                        "impressions": _("Impressions"),
                        "clicks": _("Clicks"),
                        "leads": _("Leads"),
                        "conversions": _("Conversions"),
                    },
                },
            },
            upload_form=forms.UploadForm(),
        )
    elif tab == "ab_tests":
        tests = list(selectors.campaign_ab_tests(campaign=campaign))
        context.update(
            tests=[{"test": t, "result": services.ab_test_result(t)} for t in tests],
            ab_form=forms.ABTestForm(),
        )
    elif tab == "attribution":
        form = forms.AttributionForm(request.GET)
        # a bad parameter is named under its field (the page answers 400) and nothing is credited
        valid = form.is_valid()
        context.update(
            attribution=attribution.attribute(campaign=campaign, conversion_places=2, **form.cleaned_data)
            if valid
            else None,
            attribution_form=form,
            model=form.cleaned_data.get("model", ""),
            touchpoint_count=campaign.touchpoints.count(),
            conversion_count=campaign.conversions.count(),
            upload_form=forms.UploadForm(),
            status=200 if valid else 400,
        )
    elif tab == "review":
        review = CampaignReview.objects.filter(campaign=campaign).select_related("author").first()
        context.update(
            review=review,
            review_form=forms.ReviewForm(
                initial={"what_worked": review.what_worked, "what_to_improve": review.what_to_improve}
                if review
                else None
            ),
            can_review=permissions.can_review_campaign(user, campaign),
            can_publish=permissions.can_publish_review(user, campaign)
            and services.knowledge_base_available(),
        )
    return context


@login_required
@require_GET
def detail(request: HttpRequest, code: str) -> HttpResponse:
    """Header with status, dates and budget burn; one tab's content (an htmx request gets just the tab)."""
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    tab = request.GET.get("tab", "plan")
    tab = tab if tab in TABS else "plan"
    context = _tab_context(request, campaign, tab)
    status = context.get("status", 200)
    if request.htmx and request.htmx.target == "tab-content":
        return render(request, f"campaigns/partials/tab_{tab}.html", context, status=status)
    spend = selectors.campaign_spend(campaign=campaign)
    used = fig.ratios({"spend": spend}, campaign.budget)["budget_used_pct"]
    context.update(
        nav_active="campaigns",
        spend=spend,
        budget_used=used,
        budget_used_bar=min(round((used or 0) * 100, 1), 100),
        tabs=[
            ("plan", _("Plan & tasks")),
            ("audience", _("Audience")),
            ("figures", _("Figures")),
            ("ab_tests", _("A/B tests")),
            ("attribution", _("Attribution")),
            ("review", _("Review")),
        ],
        can_approve=permissions.can_approve_campaign(request.user, campaign),
        status_choices=[
            (s, Campaign.Status(s).label) for s in services.MANUAL_TRANSITIONS.get(campaign.status, ())
        ]
        if permissions.can_change_status(request.user, campaign)
        else [],
    )
    return render(request, "campaigns/detail.html", context, status=status)


@login_required
@require_POST
def approve(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    services.campaign_approve(campaign=campaign, by=request.user)
    messages.success(request, _("Campaign approved."))
    return redirect(_detail_url(campaign))


@login_required
@require_POST
def set_status(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    services.campaign_set_status(campaign=campaign, to=request.POST.get("status", ""), by=request.user)
    messages.success(request, _("Status changed."))
    return redirect(_detail_url(campaign))
