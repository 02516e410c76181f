"""Journey pages: the list, the builder (a vertical flow of steps with their live counts), activation and
pause, and the enrolment inspector. The same services, selectors and permissions as the API; customers
appear by external id only."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm_tags import rule_builder
from crm_tags.models import Tag
from journeys import builder, forms, permissions, selectors, services
from journeys.definition import DefinitionInvalid
from journeys.models import Journey, JourneyVersion
from privacy import personal_data

STATUS_BADGES = {"draft": "secondary", "active": "success", "paused": "warning", "archived": "dark"}


def _journey(request: HttpRequest, journey_id: int) -> Journey:
    return selectors.journey_get_for_user(user=request.user, journey_id=journey_id)


@login_required
@require_GET
def journey_list(request: HttpRequest) -> HttpResponse:
    """Journeys the viewer may see with their trigger in words and their counts."""
    return _list_page(request, forms.JourneyCreateForm(user=request.user))


def _list_page(request: HttpRequest, form: forms.JourneyCreateForm, status: int = 200) -> HttpResponse:
    newest = JourneyVersion.objects.filter(journey=OuterRef("pk")).order_by("-number")
    walking = Q(enrolments__holdout=False)
    journeys = (
        selectors.journeys_for_user(user=request.user)
        .select_related("campaign")
        .annotate(
            latest_trigger=Subquery(newest.values("trigger")[:1]),
            n_entered=Count("enrolments", filter=walking),
            n_active=Count("enrolments", filter=walking & Q(enrolments__state="active")),
            n_converted=Count("enrolments", filter=walking & Q(enrolments__converted_at__isnull=False)),
        )
    )
    tag_names = dict(Tag.objects.values_list("slug", "name"))
    rows = [
        {
            "journey": j,
            "badge": STATUS_BADGES.get(j.status, "secondary"),
            "trigger": forms.trigger_words(
                j.active_version.trigger if j.active_version else j.latest_trigger, tag_names
            ),
        }
        for j in journeys
    ]
    context = {
        "nav_active": "journeys",
        "rows": rows,
        "can_create": permissions.can_create_journey(request.user),
        "form": form,
        "show_form": form.is_bound,
    }
    return render(request, "journeys/journey_list.html", context, status=status)


@login_required
@require_POST
def journey_create(request: HttpRequest) -> HttpResponse:
    if not permissions.can_create_journey(request.user):
        raise PermissionDenied(_("You may not create journeys."))
    form = forms.JourneyCreateForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            journey = services.journey_create(
                by=request.user,
                name=form.cleaned_data["name"],
                trigger=form.trigger(),
                entry={"reentry": "never"},
                steps=[],
                campaign=form.cleaned_data["campaign"],
            )
        except DefinitionInvalid as exc:
            for error in exc.errors:
                field = form.trigger_error_field(error.path)
                if field is None:
                    form.add_error(None, f"{builder.error_where(error.path)}: {error.message}")
                else:  # beside the field, its label with it
                    form.add_error(field, f"{form.fields[field].label}: {error.message}")
        else:
            return redirect("journeys:detail", journey_id=journey.pk)
    return _list_page(request, form, status=422)


def _definition_of(version: JourneyVersion | None) -> dict[str, Any]:
    if version is None:
        return {"trigger": {}, "entry": {}, "steps": [], "goal": None}
    return {"trigger": version.trigger, "entry": version.entry, "steps": version.steps, "goal": version.goal}


def _detail_page(
    request: HttpRequest,
    journey: Journey,
    *,
    definition: dict[str, Any] | None = None,
    errors: list[dict[str, str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    latest = services.latest_version(journey)
    if definition is None:
        definition = forms.definition_for_viewer(_definition_of(latest), viewer=request.user)
    stats = selectors.journey_stats(journey=journey)
    can_edit = permissions.can_edit_journey(request.user, journey)
    context = {
        "nav_active": "journeys",
        "journey": journey,
        "badge": STATUS_BADGES.get(journey.status, "secondary"),
        "latest": latest,
        "trigger_words": forms.trigger_words(
            definition.get("trigger"), dict(Tag.objects.values_list("slug", "name"))
        ),
        "definition": definition,
        "errors": errors or [],
        "stats": stats,
        "step_stats": {row["id"]: row for row in stats["steps"]},
        "can_edit": can_edit,
        "can_raise": permissions.can_activate_journey(request.user, journey, 100),
        "gray_limit": permissions.GRAY_LIMIT,
        "activate_form": forms.ActivateForm(initial={"percent": journey.percent or permissions.GRAY_LIMIT}),
        "builder_i18n": builder.builder_labels(journey=journey),
        "rule_i18n": rule_builder.builder_labels(tags=list(Tag.objects.order_by("name"))),
    }
    return render(request, "journeys/journey_detail.html", context, status=status)


@login_required
@require_GET
def journey_detail(request: HttpRequest, journey_id: int) -> HttpResponse:
    """The builder: trigger, entry, steps and goal as forms, each step with its counts."""
    return _detail_page(request, _journey(request, journey_id))


@login_required
@require_GET
def journey_stats(request: HttpRequest, journey_id: int) -> HttpResponse:
    """The counts panel (htmx refreshes it)."""
    journey = _journey(request, journey_id)
    stats = selectors.journey_stats(journey=journey)
    context = {"journey": journey, "stats": stats, "step_stats": {row["id"]: row for row in stats["steps"]}}
    return render(request, "journeys/partials/stats.html", context)


@login_required
@require_POST
def journey_save(request: HttpRequest, journey_id: int) -> HttpResponse:
    """A new version from the builder, through the same validation as the API; a refused definition comes
    back with its errors beside the steps they name."""
    journey = _journey(request, journey_id)
    if not permissions.can_edit_journey(request.user, journey):
        raise PermissionDenied(_("You may not change this journey."))
    form = forms.DefinitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("definition", [])))
        return _detail_page(request, journey, status=422)
    data = form.cleaned_data["definition"]
    try:
        version = services.journey_version_create(
            journey=journey,
            by=request.user,
            trigger=data.get("trigger"),
            entry=data.get("entry"),
            steps=data.get("steps"),
            goal=data.get("goal") or None,
        )
    except DefinitionInvalid as exc:
        errors = builder.errors_for_page(exc.errors)
        shown = forms.definition_for_viewer(data, viewer=request.user)
        return _detail_page(request, journey, definition=shown, errors=errors, status=422)
    except personal_data.PersonalRuleForbidden as exc:
        messages.error(request, str(exc))
        shown = forms.definition_for_viewer(data, viewer=request.user)
        return _detail_page(request, journey, definition=shown, status=403)
    messages.success(
        request, _("Saved as version %(n)d. Activate the journey to put it to work.") % {"n": version.number}
    )
    return redirect("journeys:detail", journey_id=journey.pk)


@login_required
@require_POST
def journey_activate(request: HttpRequest, journey_id: int) -> HttpResponse:
    """Activate (or raise the share of) the newest version; above the gray limit only a manager may."""
    journey = _journey(request, journey_id)
    if not permissions.can_edit_journey(request.user, journey):
        raise PermissionDenied(_("You may not change this journey."))
    form = forms.ActivateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The share must be a whole number from 0 to 100."))
        return _detail_page(request, journey, status=422)
    try:
        journey = services.journey_activate(
            journey=journey, by=request.user, percent=form.cleaned_data["percent"]
        )
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return _detail_page(request, journey, status=403)
    except services.JourneyStateError as exc:
        messages.error(request, str(exc))
        return _detail_page(request, journey, status=409)
    except DefinitionInvalid as exc:
        return _detail_page(request, journey, errors=builder.errors_for_page(exc.errors), status=422)
    messages.success(request, _("Active for %(p)d %% of its customers.") % {"p": journey.percent})
    return redirect("journeys:detail", journey_id=journey.pk)


@login_required
@require_POST
def journey_pause(request: HttpRequest, journey_id: int) -> HttpResponse:
    journey = _journey(request, journey_id)
    try:
        services.journey_pause(journey=journey, by=request.user)
    except services.JourneyStateError as exc:
        messages.error(request, str(exc))
        return _detail_page(request, journey, status=409)
    messages.success(request, _("Paused: no one enters and no step runs until it is activated again."))
    return redirect("journeys:detail", journey_id=journey.pk)


@login_required
@require_GET
def enrolment_inspector(request: HttpRequest, journey_id: int) -> HttpResponse:
    """One customer's path through the journey (by external id): each step with its time and outcome."""
    journey = _journey(request, journey_id)
    customer = (request.GET.get("customer") or "").strip()[:100]
    enrolments = (
        list(selectors.journey_enrolments(journey=journey, customer_external_id=customer)) if customer else []
    )
    kinds, reasons = forms.step_kind_words(), forms.reason_words()
    for enrolment in enrolments:
        enrolment.exit_words = reasons.get(enrolment.exit_reason, enrolment.exit_reason)
        for run in enrolment.runs.all():
            run.kind_words = kinds.get(run.kind, run.kind)
            reason = run.detail.get("reason", "") if isinstance(run.detail, dict) else ""
            run.reason_words = reasons.get(reason, reason)
    context = {
        "nav_active": "journeys",
        "journey": journey,
        "customer": customer,
        "enrolments": enrolments,
        "detail_url": reverse("journeys:detail", args=[journey.pk]),
    }
    return render(request, "journeys/enrolments.html", context)
