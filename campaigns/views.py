"""Campaign pages (HTML + htmx): thin, calling the same services and selectors as the API."""

import datetime as dt
import io
import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.value_labels import channel_label
from campaigns import attribution, forms, permissions, selectors, services
from campaigns import figures as fig
from campaigns.models import ABVariant, Campaign, CampaignReview, CampaignTask
from config.concurrency import EditConflict, VersionRequired, conflict_status
from config.csv_export import stream_csv
from config.csv_import import ImportRejected
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
    rows = (
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


# Tasks -----------------------------------------------------------------------------------------


def _tasks_partial(
    request: HttpRequest, campaign: Campaign, form: Any = None, status: int = 200
) -> HttpResponse:
    context = _tab_context(request, campaign, "plan")
    if form is not None:
        context["task_form"] = form
    return render(request, "campaigns/partials/tab_plan.html", context, status=status)


@login_required
@require_POST
def task_add(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    form = forms.TaskForm(request.POST, campaign=campaign)
    if not form.is_valid():
        if request.htmx:
            # htmx swaps only 2xx answers: the form comes back with its errors under the fields.
            return _tasks_partial(request, campaign, form)
        messages.error(request, _("The task was not added: check the fields."))
        return redirect(_detail_url(campaign, "plan"))
    services.task_create(campaign=campaign, by=request.user, **form.cleaned_data)
    if request.htmx:
        return _tasks_partial(request, campaign)
    return redirect(_detail_url(campaign, "plan"))


@login_required
@require_POST
def task_toggle(request: HttpRequest, code: str, task_id: int) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    task = get_object_or_404(CampaignTask, pk=task_id, campaign=campaign)
    services.task_set_done(task=task, by=request.user, done=not task.done)
    if request.htmx:
        return _tasks_partial(request, campaign)
    return redirect(_detail_url(campaign, "plan"))


# Imports ---------------------------------------------------------------------------------------


def _import(request: HttpRequest, code: str, importer: Any, tab: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    if not permissions.can_edit_campaign(request.user, campaign):
        raise PermissionDenied(_("You cannot change this campaign."))
    form = forms.UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Choose a CSV file to import."))
        return redirect(_detail_url(campaign, tab))
    try:
        count = importer(campaign=campaign, upload=form.cleaned_data["file"], by=request.user)
    except ImportRejected as exc:
        return _import_rejected(request, campaign, exc, tab)
    messages.success(request, _("%(count)s row(s) imported.") % {"count": count})
    return redirect(_detail_url(campaign, tab))


def _import_rejected(request: HttpRequest, campaign: Campaign, exc: ImportRejected, tab: str) -> HttpResponse:
    context = {
        "nav_active": "campaigns",
        "campaign": campaign,
        "errors": exc.errors,
        "total": exc.total,
        "tab": tab,
    }
    return render(request, "campaigns/import_errors.html", context, status=400)


# A metrics file with rows to confirm is carried to the confirm step signed (not stored): what is confirmed
# is exactly the file that was checked, by the same person for the same campaign, within the hour.
PENDING_SALT = "campaigns.metrics_import.pending"
PENDING_MAX_AGE = 3600
PENDING_MAX_CHARS = 2 * 1024 * 1024  # a bigger file is chosen again on the confirm step


def _pending_sign(campaign: Campaign, user: Any, upload: Any) -> str:
    upload.seek(0)
    text = upload.read().decode("utf-8-sig")  # the import has read it as UTF-8 already
    payload = {"campaign": campaign.pk, "user": user.pk, "csv": text}
    signed = signing.dumps(payload, salt=PENDING_SALT, compress=True)
    return signed if len(signed) <= PENDING_MAX_CHARS else ""


def _pending_open(token: str, campaign: Campaign, user: Any) -> io.StringIO | None:
    """The file a confirm step carries, or None when it is not this person's for this campaign, or stale."""
    try:
        payload = signing.loads(token, salt=PENDING_SALT, max_age=PENDING_MAX_AGE)
    except signing.BadSignature:
        return None
    if payload.get("campaign") != campaign.pk or payload.get("user") != user.pk:
        return None
    return io.StringIO(payload["csv"])


@login_required
@require_POST
def metrics_import(request: HttpRequest, code: str) -> HttpResponse:
    """Import daily metrics; rows that look wrong (more clicks than impressions, days to come) are shown
    for the person to confirm before anything is written."""
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    if not permissions.can_edit_campaign(request.user, campaign):
        raise PermissionDenied(_("You cannot change this campaign."))
    pending = request.POST.get("pending", "")
    if pending:
        upload = _pending_open(pending, campaign, request.user)
        if upload is None:
            messages.error(request, _("This confirmation has expired: import the file again."))
            return redirect(_detail_url(campaign, "figures"))
    else:
        form = forms.UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            messages.error(request, _("Choose a CSV file to import."))
            return redirect(_detail_url(campaign, "figures"))
        upload = form.cleaned_data["file"]
    confirm = request.POST.get("confirm") == "1"
    try:
        count = services.metrics_import(campaign=campaign, upload=upload, by=request.user, confirm=confirm)
    except ImportRejected as exc:
        return _import_rejected(request, campaign, exc, "figures")
    except services.ImportNeedsConfirmation as exc:
        context = {
            "nav_active": "campaigns",
            "campaign": campaign,
            "warnings": exc.warnings,
            "total": exc.total,
            "pending": pending or _pending_sign(campaign, request.user, upload),
            "upload_form": forms.UploadForm(),
        }
        return render(request, "campaigns/import_confirm.html", context)
    messages.success(request, _("%(count)s row(s) imported.") % {"count": count})
    return redirect(_detail_url(campaign, "figures"))


@login_required
@require_POST
def touchpoints_import(request: HttpRequest, code: str) -> HttpResponse:
    return _import(request, code, services.touchpoints_import, "attribution")


@login_required
@require_POST
def conversions_import(request: HttpRequest, code: str) -> HttpResponse:
    return _import(request, code, services.conversions_import, "attribution")


# A/B tests -------------------------------------------------------------------------------------


@login_required
@require_POST
def ab_test_add(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    form = forms.ABTestForm(request.POST)
    if form.is_valid():
        services.ab_test_create(campaign=campaign, by=request.user, **form.cleaned_data)
        messages.success(request, _("A/B test added."))
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect(_detail_url(campaign, "ab_tests"))


@login_required
@require_POST
def variant_update(request: HttpRequest, code: str, variant_id: int) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    variant = get_object_or_404(ABVariant, pk=variant_id, test__campaign=campaign)
    form = forms.VariantCountsForm(request.POST)
    if form.is_valid():
        services.ab_variant_update(variant=variant, by=request.user, **form.cleaned_data)
        messages.success(request, _("Counts saved."))
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect(_detail_url(campaign, "ab_tests"))


@login_required
@require_POST
def ab_variants_import(request: HttpRequest, code: str, test_id: int) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    test = selectors.ab_test_get(campaign=campaign, test_id=test_id)
    return _import(
        request,
        code,
        lambda campaign, upload, by: services.ab_variants_import(test=test, upload=upload, by=by),
        "ab_tests",
    )


# Review ----------------------------------------------------------------------------------------


@login_required
@require_POST
def review_save(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    form = forms.ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write what worked and what to improve."))
        return redirect(_detail_url(campaign, "review"))
    services.review_save(campaign=campaign, by=request.user, **form.cleaned_data)
    messages.success(request, _("Review saved; the figures are frozen as of now."))
    return redirect(_detail_url(campaign, "review"))


@login_required
@require_POST
def review_publish(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    article = services.review_publish(campaign=campaign, by=request.user)
    # The article starts as a draft (the knowledge base's review workflow): say so, and open it.
    messages.success(
        request,
        _(
            "The retrospective is saved as a draft article in the knowledge base. Check it, then submit it "
            "for review: it is published once approved."
        ),
    )
    return redirect(article.get_absolute_url())


# UTM builder -----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def utm_builder(request: HttpRequest) -> HttpResponse:
    """Build UTM links for a campaign; the links are kept with the campaign."""
    campaigns = selectors.campaigns_for_user(user=request.user).order_by("-start_date")
    initial = {"campaign": request.GET.get("campaign")} if request.GET.get("campaign") else None
    form = forms.UtmForm(request.POST or None, campaigns=campaigns, initial=initial)
    link = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = dict(form.cleaned_data)
            campaign = data.pop("campaign")
            link = services.utm_link_create(campaign=campaign, by=request.user, **data)
        else:
            status = 422
    chosen = link.campaign if link else None
    context = {
        "nav_active": "campaigns",
        "form": form,
        "link": link,
        "recent": list(selectors.campaign_utm_links(campaign=chosen)[:20]) if chosen else [],
        "campaign": chosen,
    }
    return render(request, "campaigns/utm.html", context, status=status)
