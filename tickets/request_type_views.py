"""Pages for routing and request types: the agents' availability, capacity and skills (managers edit, an
agent marks themselves away), a team's routing and request types (managers), a request type's editor, and
the htmx partial that shows a chosen request type's fields on the new-request form."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Team
from accounts.selectors import support_agents
from tickets import forms, permissions, request_types, routing
from tickets.request_type_forms import (
    AgentRoutingForm,
    RequestFieldForm,
    RequestTypeForm,
    SkillForm,
    TeamRoutingForm,
)
from tickets.routing_tables import RequestType, Skill, TeamRouting, TypeSkill
from tickets.views import apply_errors


def _require_view(request: HttpRequest) -> None:
    if not permissions.can_view_routing(request.user):
        raise PermissionDenied


def _require_manager(request: HttpRequest) -> None:
    if not permissions.can_manage_routing(request.user):
        raise PermissionDenied


@login_required
@require_GET
def request_type_fields_partial(request: HttpRequest) -> HttpResponse:
    """The chosen request type's fields for the new-request form (htmx; empty for none or another team's)."""
    form = forms.TicketCreateForm(
        user=request.user, initial={"request_type": request.GET.get("request_type")}
    )
    return render(request, "tickets/request_types/new_ticket_fields.html", {"form": form, "oob": True})


def _agent_rows(request: HttpRequest) -> list[dict]:
    manage = permissions.can_manage_routing(request.user)
    skill_choices = [(s.pk, s.name) for s in Skill.objects.all()] if manage else []  # once, not per row
    rows = []
    for agent, row, load in routing.agents_with_routing():
        skills = list(row.skills.all()) if row is not None else []
        form = None
        if manage:
            form = AgentRoutingForm(
                initial={"capacity": row.capacity if row else None, "skills": [s.pk for s in skills]},
                prefix=f"a{agent.pk}",
            )
            form.fields["skills"].widget.choices = skill_choices
        rows.append(
            {
                "agent": agent,
                "away": (row is not None and row.away) or not agent.is_available,
                "away_since": row.away_since if row is not None else None,
                "capacity": row.capacity if row is not None else None,
                "skills": skills,
                "load": load,
                "form": form,
            }
        )
    return rows


@login_required
@require_GET
def routing_overview(request: HttpRequest) -> HttpResponse:
    """Agents (away, load, capacity, skills) and the teams' routing, for support staff."""
    _require_view(request)
    rows = _agent_rows(request)
    me = next((r for r in rows if r["agent"].pk == request.user.pk), None)
    modes = dict(TeamRouting.objects.values_list("team_id", "mode"))
    teams = [
        (team, TeamRouting.Mode(modes.get(team.pk, TeamRouting.Mode.ROUND_ROBIN)).label)
        for team in Team.objects.order_by("name")
    ]
    context = {
        "nav_active": "routing",
        "rows": rows,
        "me": me,
        "teams": teams,
        "can_manage": permissions.can_manage_routing(request.user),
        "skill_form": SkillForm(),
        "weights": routing.URGENCY_WEIGHTS,
    }
    return render(request, "tickets/request_types/routing.html", context)


@login_required
@require_POST
def agent_away_view(request: HttpRequest) -> HttpResponse:
    """An agent marks themselves away or back."""
    _require_view(request)
    away = request.POST.get("away") == "1"
    routing.agent_away_set(agent=request.user, by=request.user, away=away)
    messages.success(request, _("You are away: no new requests reach you.") if away else _("You are back."))
    return redirect("tickets:routing")


@login_required
@require_POST
def agent_routing_view(request: HttpRequest, user_id: int) -> HttpResponse:
    """A manager sets an agent's capacity and skills."""
    _require_manager(request)
    agent = get_object_or_404(support_agents(), pk=user_id)
    form = AgentRoutingForm(request.POST, prefix=f"a{agent.pk}")
    if form.is_valid():
        routing.agent_routing_save(
            agent=agent,
            by=request.user,
            capacity=form.cleaned_data["capacity"],
            skills=form.cleaned_data["skills"],
        )
        messages.success(request, _("Saved routing for %(name)s.") % {"name": agent})
    else:
        messages.error(
            request,
            "; ".join(f"{form.fields[n].label}: {e}" for n, errs in form.errors.items() for e in errs),
        )
    return redirect("tickets:routing")


@login_required
@require_POST
def skill_create_view(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    form = SkillForm(request.POST)
    if form.is_valid():
        skill = routing.skill_create(name=form.cleaned_data["name"], by=request.user)
        messages.success(request, _("Skill “%(name)s” added.") % {"name": skill.name})
    else:
        messages.error(request, _("Give the skill a name."))
    return redirect("tickets:routing")


def _team_routing_form(team: Team, data: dict | None = None) -> TeamRoutingForm:
    current = TeamRouting.objects.filter(team=team).select_related("lead").first()
    initial: dict = {"mode": current.mode if current else TeamRouting.Mode.ROUND_ROBIN}
    if current:
        initial.update(assign_on_create=current.assign_on_create, lead=current.lead)
    for type_, skill_id in TypeSkill.objects.filter(team=team).values_list("type", "skill_id"):
        initial.setdefault(f"skills_{type_}", []).append(skill_id)
    return TeamRoutingForm(data, initial=initial)


@login_required
@require_http_methods(["GET", "POST"])
def team_routing_view(request: HttpRequest, team_id: int) -> HttpResponse:
    """A team's routing setting and its request types (managers)."""
    _require_manager(request)
    team = get_object_or_404(Team, pk=team_id)
    form = _team_routing_form(team, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                routing.team_routing_save(
                    team=team,
                    by=request.user,
                    mode=form.cleaned_data["mode"],
                    assign_on_create=form.cleaned_data["assign_on_create"],
                    lead=form.cleaned_data["lead"],
                    type_skills=form.type_skills(),
                )
            except DjangoValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Routing saved."))
                return redirect("tickets:routing_team", team_id=team.pk)
        status = 400
    context = {
        "nav_active": "routing",
        "team": team,
        "form": form,
        "request_types": request_types.request_types_for_team(team_id=team.pk, active_only=False),
        "type_form": RequestTypeForm(),
    }
    return render(request, "tickets/request_types/team.html", context, status=status)


def _save_type(
    request: HttpRequest, team: Team, form: RequestTypeForm, instance: RequestType | None
) -> RequestType | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        return request_types.request_type_save(
            team=team,
            by=request.user,
            instance=instance,
            name=data["name"],
            description=data["description"],
            default_type=data["default_type"],
            default_urgency=data["default_urgency"],
            default_assignee=data["default_assignee"],
            skills=data["skills"],
            active=data["active"],
        )
    except DjangoValidationError as exc:
        apply_errors(form, exc)
        return None


@login_required
@require_POST
def request_type_create_view(request: HttpRequest, team_id: int) -> HttpResponse:
    _require_manager(request)
    team = get_object_or_404(Team, pk=team_id)
    form = RequestTypeForm(request.POST)
    request_type = _save_type(request, team, form, None)
    if request_type is None:
        context = {
            "nav_active": "routing",
            "team": team,
            "form": _team_routing_form(team),
            "request_types": request_types.request_types_for_team(team_id=team.pk, active_only=False),
            "type_form": form,
        }
        return render(request, "tickets/request_types/team.html", context, status=400)
    messages.success(
        request, _("Request type “%(name)s” created: now add its fields.") % {"name": request_type.name}
    )
    return redirect("tickets:request_type_edit", team_id=team.pk, pk=request_type.pk)


@login_required
@require_http_methods(["GET", "POST"])
def request_type_edit_view(request: HttpRequest, team_id: int, pk: int) -> HttpResponse:
    """One request type: its settings, its fields (add, remove)."""
    _require_manager(request)
    request_type = get_object_or_404(RequestType.objects.select_related("team"), pk=pk, team_id=team_id)
    team = request_type.team
    type_form = RequestTypeForm(instance=request_type)
    field_form = RequestFieldForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "save":
            type_form = RequestTypeForm(request.POST, instance=RequestType.objects.get(pk=pk))
            if _save_type(request, team, type_form, RequestType.objects.get(pk=pk)) is not None:
                messages.success(request, _("Request type saved."))
                return redirect("tickets:request_type_edit", team_id=team.pk, pk=pk)
        elif action == "add_field":
            field_form = RequestFieldForm(request.POST)
            if field_form.is_valid():
                try:
                    request_types.request_field_add(
                        request_type=request_type, by=request.user, spec=field_form.cleaned_data
                    )
                except DjangoValidationError as exc:
                    for message in exc.message_dict.get("fields", []):
                        field_form.add_error(None, message)
                    if "name" in exc.message_dict:
                        field_form.add_error("name", exc.message_dict["name"])
                else:
                    messages.success(request, _("Field added."))
                    return redirect("tickets:request_type_edit", team_id=team.pk, pk=pk)
        elif action == "remove_field":
            try:
                field_id = int(request.POST.get("field_id") or 0)
            except ValueError:
                raise Http404 from None
            if not request_types.request_field_remove(
                request_type=request_type, by=request.user, field_id=field_id
            ):
                raise Http404
            messages.success(request, _("Field removed."))
            return redirect("tickets:request_type_edit", team_id=team.pk, pk=pk)
        status = 400
    context = {
        "nav_active": "routing",
        "team": team,
        "request_type": request_type,
        "fields": list(request_type.fields.all()),
        "type_form": type_form,
        "field_form": field_form,
    }
    return render(request, "tickets/request_types/edit.html", context, status=status)
