"""Audience activation pages: destinations (list, settings), their schedules, starting a sync, and the sync
log with a retry for failed syncs. Support staff only; the same services, selectors and permissions as the
API. No page here shows a customer: the log holds counts, codes and paths."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from journeys import permissions
from journeys import services as journey_services
from journeys.activation import forms, selectors, services
from journeys.definition import DefinitionInvalid
from journeys.models import ActivationSchedule, Destination, SyncRun

SYNC_BADGES = {"queued": "secondary", "running": "info", "done": "success", "failed": "danger"}
LOG_PAGE = 50


def _require_manager(request: HttpRequest) -> None:
    if not permissions.can_manage_destinations(request.user):
        raise PermissionDenied(_("Destinations are managed by support staff."))


def _destination(request: HttpRequest, destination_id: int) -> Destination:
    _require_manager(request)
    return selectors.destination_get_for_user(user=request.user, destination_id=destination_id)


def _list_page(request: HttpRequest, form: forms.DestinationForm, status: int = 200) -> HttpResponse:
    last = SyncRun.objects.filter(destination=OuterRef("pk")).order_by("-created_at", "-id")
    destinations = Destination.objects.annotate(
        n_schedules=Count("schedules", distinct=True),
        last_status=Subquery(last.values("status")[:1]),
        last_at=Subquery(last.values("created_at")[:1]),
    ).order_by("name")
    labels = dict(SyncRun.Status.choices)
    rows = [
        {
            "d": d,
            "badge": SYNC_BADGES.get(d.last_status or "", "secondary"),
            "last": labels.get(d.last_status, ""),
        }
        for d in destinations
    ]
    context = {"nav_active": "journeys", "rows": rows, "form": form, "show_form": form.is_bound}
    return render(request, "journeys/activation/destination_list.html", context, status=status)


@login_required
@require_GET
def destination_list(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    return _list_page(request, forms.DestinationForm())


def _errors_onto(form: forms.DestinationForm, exc: Exception) -> None:
    if isinstance(exc, DefinitionInvalid):
        for error in exc.errors:
            form.add_error(error.path if error.path in form.fields else None, error.message)
    elif isinstance(exc, services.ActivationInvalid):
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@login_required
@require_POST
def destination_create(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    form = forms.DestinationForm(request.POST)
    if form.is_valid():
        try:
            destination = journey_services.destination_create(by=request.user, **form.cleaned_data)
        except DefinitionInvalid as exc:
            _errors_onto(form, exc)
        else:
            messages.success(request, _("Destination “%(name)s” created.") % {"name": destination.name})
            return redirect("journeys:destination", destination_id=destination.pk)
    return _list_page(request, form, status=422)


def _detail_page(
    request: HttpRequest,
    destination: Destination,
    *,
    form: forms.DestinationForm | None = None,
    schedule_form: forms.ScheduleForm | None = None,
    sync_form: forms.SyncForm | None = None,
    status: int = 200,
) -> HttpResponse:
    runs = list(selectors.sync_log(user=request.user, destination=destination)[:20])
    context = {
        "nav_active": "journeys",
        "destination": destination,
        "form": form or forms.DestinationForm(initial=forms.DestinationForm.initial_of(destination)),
        "schedule_form": schedule_form or forms.ScheduleForm(),
        "sync_form": sync_form or forms.SyncForm(),
        "schedules": list(selectors.schedules_for(destination=destination)),
        "runs": [{"run": r, "badge": SYNC_BADGES.get(r.status, "secondary")} for r in runs],
        "can_sync": permissions.can_sync_audience(request.user),
    }
    return render(request, "journeys/activation/destination_detail.html", context, status=status)


@login_required
@require_GET
def destination_detail(request: HttpRequest, destination_id: int) -> HttpResponse:
    return _detail_page(request, _destination(request, destination_id))


@login_required
@require_POST
def destination_edit(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination(request, destination_id)
    form = forms.DestinationForm(request.POST)
    if form.is_valid():
        try:
            services.destination_update(destination=destination, by=request.user, **form.cleaned_data)
        except services.ActivationInvalid as exc:
            _errors_onto(form, exc)
        else:
            messages.success(request, _("Destination saved."))
            return redirect("journeys:destination", destination_id=destination.pk)
    return _detail_page(request, destination, form=form, status=422)


def _audience_errors(form: forms.SyncForm, exc: services.ActivationInvalid) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@login_required
@require_POST
def schedule_create(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination(request, destination_id)
    form = forms.ScheduleForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.schedule_create(
                destination=destination,
                by=request.user,
                cadence=data["cadence"],
                tag=data["tag"],
                campaign=data["campaign"],
                mode=data["mode"],
                purpose=data["purpose"],
                at=data["at"],
            )
        except services.ActivationInvalid as exc:
            _audience_errors(form, exc)
        else:
            messages.success(request, _("Schedule added."))
            return redirect("journeys:destination", destination_id=destination.pk)
    return _detail_page(request, destination, schedule_form=form, status=422)


@login_required
@require_POST
def schedule_delete(request: HttpRequest, schedule_id: int) -> HttpResponse:
    _require_manager(request)
    schedule = get_object_or_404(ActivationSchedule, pk=schedule_id)
    services.schedule_delete(schedule=schedule, by=request.user)
    messages.success(request, _("Schedule removed."))
    return redirect("journeys:destination", destination_id=schedule.destination_id)


@login_required
@require_POST
def sync_start(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination(request, destination_id)
    form = forms.SyncForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            run = services.sync_start(
                destination=destination,
                by=request.user,
                tag=data["tag"],
                campaign=data["campaign"],
                mode=data["mode"],
                purpose=data["purpose"],
                origin=SyncRun.Origin.PAGE,
            )
        except services.ActivationInvalid as exc:
            _audience_errors(form, exc)
        except services.SyncBusy as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Sync %(id)s queued.") % {"id": run.pk})
            return redirect("journeys:destination", destination_id=destination.pk)
    return _detail_page(request, destination, sync_form=form, status=422)


@login_required
@require_POST
def sync_retry(request: HttpRequest, sync_id: int) -> HttpResponse:
    _require_manager(request)
    run = get_object_or_404(selectors.sync_log(user=request.user), pk=sync_id)
    try:
        services.sync_retry(run=run, by=request.user)
    except services.SyncBusy as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Sync %(id)s queued again.") % {"id": run.pk})
    if _safe_next(request):
        return redirect(request.POST["next"])
    return redirect("journeys:sync_log")


def _safe_next(request: HttpRequest) -> bool:
    target = request.POST.get("next", "")
    return target.startswith("/journeys/") and "//" not in target


@login_required
@require_GET
def sync_log(request: HttpRequest) -> HttpResponse:
    """Every sync, newest first, 50 a page; ?status=failed to see what needs a retry."""
    _require_manager(request)
    runs = selectors.sync_log(user=request.user)
    status = request.GET.get("status", "")
    if status in SyncRun.Status.values:
        runs = runs.filter(status=status)
    page = Paginator(runs, LOG_PAGE).get_page(request.GET.get("page"))
    context = {
        "nav_active": "journeys",
        "page": page,
        "rows": [{"run": r, "badge": SYNC_BADGES.get(r.status, "secondary")} for r in page.object_list],
        "status": status,
        "statuses": SyncRun.Status.choices,
    }
    return render(request, "journeys/activation/sync_log.html", context)


@login_required
@require_GET
def schedule_list(request: HttpRequest) -> HttpResponse:
    """Every activation schedule with its destination and audience."""
    _require_manager(request)
    context = {"nav_active": "journeys", "schedules": list(selectors.schedules_for())}
    return render(request, "journeys/activation/schedule_list.html", context)
