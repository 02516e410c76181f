"""Dashboard pages (charts load separately, from their own JSON endpoints), reports and weekly subscriptions."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from analytics import selectors, services
from analytics.charts import CHARTS, chart_get, chart_payload
from analytics.filters import DashboardFilterForm, viewer_time_zone
from analytics.forms import ReportJobForm, SubscriptionForm
from analytics.permissions import (
    CUSTOMERS,
    DASHBOARDS,
    MARKETING,
    SUPPORT,
    can_open_dashboard_index,
    can_run_reports,
    can_subscribe_reports,
    dashboard_scope,
)


def _dashboard_titles() -> dict[str, str]:
    return {SUPPORT: _("Support operations"), MARKETING: _("Marketing"), CUSTOMERS: _("Customers")}


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """The managers' landing page: the three dashboards, reports and weekly e-mails."""
    if not can_open_dashboard_index(request.user):
        raise PermissionDenied
    titles = _dashboard_titles()
    return render(
        request,
        "analytics/index.html",
        {
            "nav_active": "dashboards",
            "dashboards": [(name, titles[name]) for name in DASHBOARDS],
        },
    )


@login_required
@require_GET
def dashboard(request: HttpRequest, name: str) -> HttpResponse:
    """A dashboard page: filter bar and a grid of chart cards that fetch their own figures."""
    if name not in DASHBOARDS:
        raise Http404
    scope = selectors.dashboard_scope_for_user(user=request.user, dashboard=name)
    form = DashboardFilterForm(request.GET, tz=viewer_time_zone(request.user))
    valid = form.is_valid()
    filters = form.filters().scoped(scope) if valid else None
    if not scope.all_teams:
        form.fields.pop("team")
    if name == CUSTOMERS:
        for field in ("team", "campaign", "urgency"):
            form.fields.pop(field, None)
    elif name == MARKETING:
        form.fields.pop("urgency")
    query = urlencode(filters.query()) if filters else ""
    titles = _dashboard_titles()
    visible = [d for d in DASHBOARDS if dashboard_scope(request.user, d) is not None]
    return render(
        request,
        "analytics/dashboard.html",
        {
            "nav_active": "dashboards",
            "dashboard": name,
            "title": titles[name],
            "tabs": [(d, titles[d]) for d in visible],
            "form": form,
            "filters": filters,
            "scope": scope,
            "charts": CHARTS[name] if valid else [],
            "query": query,
            "time_zone": viewer_time_zone(request.user),
        },
        status=200 if valid else 400,
    )


@login_required
@require_GET
def chart_data(request: HttpRequest, name: str, key: str) -> JsonResponse:
    """One chart's figures as JSON (cached per filter set; `refresh=1` recomputes)."""
    chart = chart_get(name, key)
    if chart is None:
        raise Http404
    scope = selectors.dashboard_scope_for_user(user=request.user, dashboard=name)
    form = DashboardFilterForm(request.GET, tz=viewer_time_zone(request.user))
    if not form.is_valid():
        return JsonResponse(
            {"detail": _("Invalid filters."), "errors": form.errors.get_json_data()}, status=400
        )
    filters = form.filters().scoped(scope)
    payload = chart_payload(
        chart,
        filters,
        staff=selectors.links_to_queue(user=request.user),
        refresh=request.GET.get("refresh") == "1",
    )
    return JsonResponse(payload)


def _require_reports(request: HttpRequest) -> None:
    if not can_run_reports(request.user):
        raise PermissionDenied


@login_required
def reports(request: HttpRequest) -> HttpResponse:
    """Start a report and follow the progress of one's own reports."""
    _require_reports(request)
    # Bound only to a POST (an empty one included); the page after a start is a GET: a fresh form.
    form = ReportJobForm(request.POST if request.method == "POST" else None, initial={"format": "csv"})
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                job, created = services.report_job_request(
                    owner=request.user,
                    kind=form.cleaned_data["kind"],
                    params=form.params(),
                    file_format=form.cleaned_data["format"],
                )
            except services.ReportQuotaExceeded as exc:
                form.add_error(None, exc.message())
                status = 429
            else:
                if not created:
                    messages.info(request, _("The same report is already being prepared; you joined it."))
                return redirect(f"{request.path}?started={job.pk}")
    else:
        status = 200
    jobs = selectors.report_jobs_for_user(user=request.user)[:25]
    return render(
        request,
        "analytics/reports.html",
        {
            "nav_active": "dashboards",
            "form": form,
            "jobs": jobs,
            "started": request.GET.get("started", ""),
            "report_limit": settings.REPORT_JOBS_PER_USER,
        },
        status=status,
    )


@login_required
@require_GET
def report_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """One job's row (htmx polls it while the job is queued or running)."""
    _require_reports(request)
    job = selectors.report_job_get_for_user(user=request.user, job_id=pk)
    return render(request, "analytics/partials/report_row.html", {"job": job})


@login_required
@require_POST
def report_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel one of one's queued or running reports; htmx gets the job's row in its new state."""
    _require_reports(request)
    job = selectors.report_job_get_for_user(user=request.user, job_id=pk)
    try:
        job = services.report_job_cancel(job=job, by=request.user)
    except services.ReportJobFinished as exc:
        job = exc.job
        if not request.htmx:
            messages.info(request, _("The report had already ended; nothing was cancelled."))
    else:
        if not request.htmx:
            messages.success(request, _("Report cancelled."))
    if request.htmx:
        return render(request, "analytics/partials/report_row.html", {"job": job})
    return redirect("analytics:reports")


@login_required
def subscriptions(request: HttpRequest) -> HttpResponse:
    """A manager's weekly e-mail reports, with the last deliveries (failures shown)."""
    if not can_subscribe_reports(request.user):
        raise PermissionDenied
    form = SubscriptionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            services.subscription_save(owner=request.user, **form.cleaned_data)
            messages.success(request, _("Subscribed."))
            return redirect("analytics:subscriptions")
        status = 422
    return render(
        request,
        "analytics/subscriptions.html",
        {
            "nav_active": "dashboards",
            "form": form,
            "subscriptions": selectors.subscriptions_for_user(user=request.user),
        },
        status=status,
    )


@login_required
@require_POST
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    if not can_subscribe_reports(request.user):
        raise PermissionDenied
    subscription = selectors.subscription_get_for_user(user=request.user, subscription_id=pk)
    services.subscription_delete(subscription=subscription, by=request.user)
    messages.success(request, _("Unsubscribed."))
    return redirect("analytics:subscriptions")
