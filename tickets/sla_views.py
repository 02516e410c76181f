"""The SLA pages (managers edit policies and business calendars; agents read them)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from config.concurrency import (
    EditConflict,
    VersionRequired,
    conflict_status,
    version_token,
)
from tickets import forms, permissions, selectors, services, sla
from tickets.models import BusinessCalendar
from tickets.views import apply_errors, require_agent

# --- SLA policies --------------------------------------------------------------------------


@login_required
def sla_policies_view(request: HttpRequest) -> HttpResponse:
    """Managers edit the targets per urgency and the business calendars; agents may read them."""
    require_agent(request)
    can_edit = permissions.can_edit_sla(request.user)
    if request.method == "POST" and not can_edit:
        raise PermissionDenied
    chosen = request.POST.get("calendar") or request.GET.get("calendar")
    policies, calendar = list(selectors.sla_policies()), selectors.sla_calendar_get(chosen)
    policy_forms = [
        forms.SlaPolicyForm(
            request.POST if request.POST.get("policy") == str(p.pk) else None, instance=p, prefix=f"p{p.pk}"
        )
        for p in policies
    ]
    calendar_form = forms.CalendarForm(
        request.POST if request.POST.get("calendar") else None,
        initial=_calendar_initial(calendar),
        version=version_token(calendar),
    )
    status, conflict = 400 if request.method == "POST" else 200, {}
    try:
        for policy, form in zip(policies, policy_forms, strict=True):
            if request.POST.get("policy") == str(policy.pk) and form.is_valid():
                try:
                    services.sla_policy_update(
                        policy=policy,
                        by=request.user,
                        expected_version=form.submitted_version(),
                        first_response_minutes=form.cleaned_data["first_response_minutes"],
                        resolution_minutes=form.cleaned_data["resolution_minutes"],
                        calendar=form.cleaned_data["calendar"],
                        type_calendars=form.type_calendars(),
                    )
                except DjangoValidationError as exc:
                    apply_errors(form, exc)
                    break
                messages.success(request, _("SLA policy saved."))
                return redirect("tickets:sla")
        if request.POST.get("calendar") and calendar is not None and calendar_form.is_valid():
            data = calendar_form.cleaned_data
            try:
                services.calendar_update(
                    calendar=calendar,
                    by=request.user,
                    expected_version=calendar_form.submitted_version(),
                    timezone_name=data["timezone"],
                    hours=data["hours"],
                    holidays=data["holiday_list"],
                    working_days=data["working_day_list"],
                )
            except DjangoValidationError as exc:
                apply_errors(calendar_form, exc)
            else:
                messages.success(request, _("Calendar saved."))
                return redirect(_calendar_url(calendar))
    except (EditConflict, VersionRequired) as exc:
        # Nothing saved: every form again, filled from the policies and calendar as they now are.
        submitted = next((f for f in [*policy_forms, calendar_form] if f.is_bound), None)
        policies, calendar = list(selectors.sla_policies()), selectors.sla_calendar_get(chosen)
        policy_forms = [forms.SlaPolicyForm(instance=p, prefix=f"p{p.pk}") for p in policies]
        calendar_form = forms.CalendarForm(
            initial=_calendar_initial(calendar), version=version_token(calendar)
        )
        current = next(
            (f for f in [*policy_forms, calendar_form] if submitted and f.prefix == submitted.prefix),
            calendar_form,
        )
        status = conflict_status(exc)
        conflict = {
            "form": current,
            "message": str(exc),
            "unsaved": submitted.unsaved_values(current) if submitted else [],
        }
    return _sla_page(request, policies, policy_forms, calendar, calendar_form, can_edit, conflict, status)


def _sla_page(
    request: HttpRequest,
    policies: list[Any],
    policy_forms: list[Any],
    calendar: BusinessCalendar | None,
    calendar_form: forms.CalendarForm,
    can_edit: bool,
    conflict: dict[str, Any],
    status: int,
    load_form: forms.StatutoryLoadForm | None = None,
    create_form: forms.CalendarCreateForm | None = None,
) -> HttpResponse:
    context = {
        "nav_active": "queue",
        "rows": list(zip(policies, policy_forms, strict=True)),
        "calendars": list(selectors.sla_calendars()),
        "calendar": calendar,
        "calendar_form": calendar_form,
        # read-only: (weekday, its periods) for people who may not edit
        "calendar_rows": _calendar_rows(calendar) if calendar is not None and not can_edit else [],
        "load_form": load_form
        or forms.StatutoryLoadForm(initial={"year": _year_to_load()}, version=version_token(calendar)),
        "create_form": create_form or forms.CalendarCreateForm(),
        "can_edit": can_edit,
        "conflict": conflict,
    }
    return render(request, "tickets/sla.html", context, status=status)


def _calendar_rows(calendar: BusinessCalendar) -> list[tuple[str, str]]:
    initial = _calendar_initial(calendar)
    return [(str(label), initial[f"day_{day}"]) for day, label in enumerate(forms.CalendarForm.WEEKDAYS)]


def _year_to_load() -> int:
    """Next year once its schedule is published (the package knows it), else this year."""
    from django.utils import timezone

    from tickets.statutory import known_years

    year = timezone.localdate().year
    return year + 1 if year + 1 in known_years() else year


def _calendar_url(calendar: BusinessCalendar) -> str:
    return f"{reverse('tickets:sla')}?calendar={calendar.pk}"


@login_required
@require_POST
def sla_calendar_load_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A manager loads a year of China's statutory holidays and make-up working days into a calendar."""
    if not permissions.can_edit_sla(request.user):
        raise PermissionDenied
    calendar = get_object_or_404(BusinessCalendar, pk=pk)
    form = forms.StatutoryLoadForm(request.POST, version=version_token(calendar))
    status = 400
    if form.is_valid():
        try:
            counts = services.calendar_load_statutory(
                calendar=calendar,
                by=request.user,
                year=form.cleaned_data["year"],
                expected_version=form.submitted_version(),
            )
        except services.StatutoryYearUnknown as exc:
            form.add_error("year", str(exc))
        except (EditConflict, VersionRequired) as exc:
            # nothing loaded: the form again, carrying the calendar's current version
            data = request.POST.copy()
            data["version"] = version_token(BusinessCalendar.objects.get(pk=calendar.pk))
            form = forms.StatutoryLoadForm(data)
            form.is_valid()
            form.add_error(None, str(exc))
            status = conflict_status(exc)
        else:
            messages.success(
                request,
                _("Loaded %(holidays)s holidays and %(working_days)s make-up working days of %(year)s.")
                % {**counts, "year": form.cleaned_data["year"]},
            )
            return redirect(_calendar_url(calendar))
    calendar = selectors.sla_calendar_get(calendar.pk)
    policies = list(selectors.sla_policies())
    return _sla_page(
        request,
        policies,
        [forms.SlaPolicyForm(instance=p, prefix=f"p{p.pk}") for p in policies],
        calendar,
        forms.CalendarForm(initial=_calendar_initial(calendar), version=version_token(calendar)),
        True,
        {},
        status,
        load_form=form,
    )


@login_required
@require_POST
def sla_calendar_create_view(request: HttpRequest) -> HttpResponse:
    """A manager adds a business calendar (office hours or round the clock to start from)."""
    if not permissions.can_edit_sla(request.user):
        raise PermissionDenied
    form = forms.CalendarCreateForm(request.POST)
    if form.is_valid():
        try:
            calendar = services.calendar_create(
                by=request.user,
                name=form.cleaned_data["name"],
                timezone_name=form.cleaned_data["timezone"],
                round_the_clock=form.cleaned_data["round_the_clock"],
            )
        except DjangoValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, _("Calendar added."))
            return redirect(_calendar_url(calendar))
    calendar = selectors.sla_calendar_get(None)
    policies = list(selectors.sla_policies())
    return _sla_page(
        request,
        policies,
        [forms.SlaPolicyForm(instance=p, prefix=f"p{p.pk}") for p in policies],
        calendar,
        forms.CalendarForm(initial=_calendar_initial(calendar), version=version_token(calendar)),
        True,
        {},
        400,
        create_form=form,
    )


def _calendar_initial(calendar: BusinessCalendar | None) -> dict[str, Any]:
    if calendar is None:
        return {}
    initial: dict[str, Any] = {"timezone": calendar.timezone}
    for day in range(7):
        periods = [(h.start, h.end) for h in calendar.hours.all() if h.weekday == day]
        initial[f"day_{day}"] = forms.show_periods(periods)
    initial["holidays"] = "\n".join(f"{h.date.isoformat()} {h.name}".strip() for h in calendar.holidays.all())
    initial["working_days"] = "\n".join(
        f"{w.date.isoformat()} {forms.show_periods(sla.periods_from_json(w.periods))} {w.name}".strip()
        for w in calendar.working_days.all()
    )
    return initial
