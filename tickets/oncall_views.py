"""Pages for on-call rotas and overrides, team chat robots with their delivery log, big-sale windows and
escalation rules. Support staff read them; managers change them (tickets.permissions)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Team, User
from tickets import permissions
from tickets.chat_robots import chat_post, chat_robot_delete, chat_robot_save
from tickets.escalation import escalation_rule_add, escalation_rule_remove
from tickets.models import (
    BigSaleWindow,
    ChatAttempt,
    ChatDelivery,
    ChatRobot,
    EscalationRule,
    OnCallOverride,
    OnCallRota,
    SlaPolicy,
)
from tickets.oncall import big_sale, rota_for_team, rota_plain
from tickets.oncall.services import override_add, override_remove, rota_save
from tickets.oncall_forms import BigSaleForm, ChatRobotForm, EscalationRuleForm, OverrideForm, RotaForm
from tickets.views import apply_errors

DELIVERY_LOG_SIZE = 50


def _require_viewer(request: HttpRequest) -> None:
    if not permissions.can_view_oncall(request.user):
        raise PermissionDenied


def _require_editor(request: HttpRequest) -> None:
    if not permissions.can_edit_oncall(request.user):
        raise PermissionDenied


def _people(ids: set[int | None]) -> dict[int, User]:
    ids = {i for i in ids if i is not None}
    return {u.pk: u for u in User.objects.filter(pk__in=ids)} if ids else {}


# --- the list of rotas ---------------------------------------------------------------------------------


@login_required
def oncall_index(request: HttpRequest) -> HttpResponse:
    """Every team with a rota, who is on call now and until when (queries do not grow with the teams)."""
    _require_viewer(request)
    now = timezone.now()
    rotas = list(
        OnCallRota.objects.select_related("team")
        .prefetch_related(
            "members", Prefetch("overrides", queryset=OnCallOverride.objects.filter(ends_at__gt=now))
        )
        .order_by("team__name")
    )
    rows = []
    for rota in rotas:
        plain = rota_plain(rota)
        rows.append({"rota": rota, "user_id": plain.user_at(now), "until": plain.until(now)})
    people = _people({row["user_id"] for row in rows})
    for row in rows:
        row["user"] = people.get(row["user_id"])
    teams_without = Team.objects.exclude(pk__in=[r.team_id for r in rotas]).order_by("name")
    return render(
        request,
        "tickets/oncall/index.html",
        {"rows": rows, "teams_without": teams_without, "can_edit": permissions.can_edit_oncall(request.user)},
    )


# --- a team's rota -------------------------------------------------------------------------------------


def _rota_initial(rota: OnCallRota | None) -> dict[str, Any]:
    if rota is None:
        return {"handover_weekday": 0, "handover_time": "10:00", "starts_on": timezone.localdate()}
    return {
        "members": "\n".join(m.user.username for m in rota.members.all()),
        "starts_on": rota.starts_on,
        "handover_weekday": rota.handover_weekday,
        "handover_time": rota.handover_time,
        "calendar": rota.calendar_id,
        "lead": rota.lead_id,
    }


@login_required
def oncall_team(request: HttpRequest, team_id: int) -> HttpResponse:
    """A team's rota: who is on call now and next, the rotation editor and the overrides."""
    _require_viewer(request)
    team = get_object_or_404(Team, pk=team_id)
    rota = rota_for_team(team.pk)
    rota_form, override_form = RotaForm(initial=_rota_initial(rota)), OverrideForm()
    status = 200
    if request.method == "POST":
        _require_editor(request)
        status = 400
        if request.POST.get("form") == "rota":
            rota_form = RotaForm(request.POST)
            if rota_form.is_valid():
                try:
                    rota_save(team=team, by=request.user, **rota_form.cleaned_data)
                except DjangoValidationError as exc:
                    apply_errors(rota_form, exc)
                else:
                    messages.success(request, _("Rota saved."))
                    return redirect("tickets:oncall_team", team.pk)
        elif request.POST.get("form") == "override" and rota is not None:
            override_form = OverrideForm(request.POST)
            if override_form.is_valid():
                try:
                    override_add(rota=rota, by=request.user, **override_form.cleaned_data)
                except DjangoValidationError as exc:
                    apply_errors(override_form, exc)
                else:
                    messages.success(request, _("Override added."))
                    return redirect("tickets:oncall_team", team.pk)
    now = timezone.now()
    current = upcoming = None
    schedule: list[dict[str, Any]] = []
    if rota is not None:
        plain = rota_plain(rota)
        people = {m.user_id: m.user for m in rota.members.all()} | {
            o.user_id: o.user for o in rota.overrides.all()
        }
        nxt, until = plain.next_person(now)
        current = {"user": people.get(plain.user_at(now)), "until": until}
        upcoming = {"user": people.get(nxt), "from": until} if until else None
        moment = now
        for _i in range(6):  # the next handovers, overrides included
            who, end = plain.user_at(moment), plain.until(moment)
            schedule.append({"user": people.get(who), "from": moment, "until": end})
            if end is None:
                break
            moment = end
    failed = ChatDelivery.objects.filter(robot__team=team, status=ChatDelivery.Status.FAILED).count()
    return render(
        request,
        "tickets/oncall/team.html",
        {
            "team": team,
            "rota": rota,
            "rota_form": rota_form,
            "override_form": override_form,
            "overrides": [o for o in rota.overrides.all() if o.ends_at > now] if rota else [],
            "current": current,
            "upcoming": upcoming,
            "schedule": schedule,
            "failed_deliveries": failed,
            "can_edit": permissions.can_edit_oncall(request.user),
        },
        status=status,
    )


@login_required
@require_POST
def oncall_override_delete(request: HttpRequest, team_id: int, pk: int) -> HttpResponse:
    _require_editor(request)
    override = get_object_or_404(OnCallOverride, pk=pk, rota__team_id=team_id)
    override_remove(override=override, by=request.user)
    messages.success(request, _("Override removed."))
    return redirect("tickets:oncall_team", team_id)


# --- chat robots ---------------------------------------------------------------------------------------


@login_required
def oncall_robots(request: HttpRequest, team_id: int) -> HttpResponse:
    """A team's chat robots (managers add, change and remove them) and the log of their deliveries."""
    return _robots_page(request, team_id)


@login_required
def oncall_robot_edit(request: HttpRequest, team_id: int, pk: int) -> HttpResponse:
    """The robots page with the form holding one robot's settings (a blank secret keeps the stored one)."""
    _require_editor(request)
    return _robots_page(request, team_id, get_object_or_404(ChatRobot, pk=pk, team_id=team_id))


def _robots_page(request: HttpRequest, team_id: int, editing: ChatRobot | None = None) -> HttpResponse:
    _require_viewer(request)
    team = get_object_or_404(Team, pk=team_id)
    form, status = ChatRobotForm(instance=editing), 200
    if request.method == "POST":
        _require_editor(request)
        # the form fills a copy: the robot saved is read afresh, so a blank secret keeps the stored one
        copy = ChatRobot.objects.get(pk=editing.pk) if editing else None
        form, status = ChatRobotForm(request.POST, instance=copy), 400
        if form.is_valid():
            try:
                robot = ChatRobot.objects.get(pk=editing.pk) if editing else None
                chat_robot_save(team=team, by=request.user, robot=robot, **form.cleaned_data)
            except DjangoValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Robot saved."))
                return redirect("tickets:oncall_robots", team.pk)
    robots = list(
        ChatRobot.objects.filter(team=team).annotate(
            failed=Count("deliveries", filter=Q(deliveries__status=ChatDelivery.Status.FAILED))
        )
    )
    deliveries = list(
        ChatDelivery.objects.filter(robot__team=team)
        .select_related("robot")
        .prefetch_related(Prefetch("attempt_rows", queryset=ChatAttempt.objects.order_by("number")))
        .order_by("-created_at", "-id")[:DELIVERY_LOG_SIZE]
    )
    return render(
        request,
        "tickets/oncall/robots.html",
        {
            "team": team,
            "robots": robots,
            "deliveries": deliveries,
            "form": form,
            "editing": editing,
            "can_edit": permissions.can_edit_oncall(request.user),
        },
        status=status,
    )


@login_required
@require_POST
def oncall_robot_delete(request: HttpRequest, team_id: int, pk: int) -> HttpResponse:
    _require_editor(request)
    robot = get_object_or_404(ChatRobot, pk=pk, team_id=team_id)
    chat_robot_delete(robot=robot, by=request.user)
    messages.success(request, _("Robot removed."))
    return redirect("tickets:oncall_robots", team_id)


@login_required
@require_POST
def oncall_robot_test(request: HttpRequest, team_id: int) -> HttpResponse:
    """Send a test message to every enabled robot of the team (the log shows what they answered)."""
    _require_editor(request)
    team = get_object_or_404(Team, pk=team_id)
    sent = chat_post(team=team, title=_("Test message from MarTech Hub"), text=_("The robot works."))
    messages.success(request, _("Test message queued for %(n)s robots.") % {"n": len(sent)})
    return redirect("tickets:oncall_robots", team.pk)


# --- big-sale windows ----------------------------------------------------------------------------------


def _require_big_sale(request: HttpRequest) -> None:
    if not permissions.can_manage_big_sale(request.user):
        raise PermissionDenied


@login_required
def big_sale_list(request: HttpRequest) -> HttpResponse:
    """Managers declare event windows (618, 双11) and see the past and coming ones."""
    _require_big_sale(request)
    form, status = BigSaleForm(), 200
    if request.method == "POST":
        form, status = BigSaleForm(request.POST), 400
        if form.is_valid():
            try:
                big_sale.big_sale_save(by=request.user, **form.cleaned_data)
            except DjangoValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Big-sale window saved."))
                return redirect("tickets:big_sale")
    now = timezone.now()
    windows = list(BigSaleWindow.objects.select_related("created_by").order_by("-starts_at", "-id"))
    return render(
        request,
        "tickets/oncall/big_sale.html",
        {"windows": windows, "form": form, "now": now},
        status=status,
    )


@login_required
@require_POST
def big_sale_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_big_sale(request)
    window = get_object_or_404(BigSaleWindow, pk=pk)
    big_sale.big_sale_delete(by=request.user, window=window)
    messages.success(request, _("Big-sale window removed."))
    return redirect("tickets:big_sale")


# --- escalation rules ----------------------------------------------------------------------------------


@login_required
def escalation_rules(request: HttpRequest, policy_id: int) -> HttpResponse:
    """An SLA policy's escalation rules (managers add and remove them) and their latest firings."""
    _require_viewer(request)
    policy = get_object_or_404(SlaPolicy, pk=policy_id)
    form, status = EscalationRuleForm(), 200
    if request.method == "POST":
        if not permissions.can_edit_escalation(request.user):
            raise PermissionDenied
        form, status = EscalationRuleForm(request.POST), 400
        if form.is_valid():
            try:
                escalation_rule_add(policy=policy, by=request.user, **form.cleaned_data)
            except DjangoValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Escalation rule added."))
                return redirect("tickets:escalation_rules", policy.pk)
    rules = list(EscalationRule.objects.filter(policy=policy).annotate(fired=Count("firings")))
    return render(
        request,
        "tickets/oncall/escalation.html",
        {
            "policy": policy,
            "rules": rules,
            "form": form,
            "can_edit": permissions.can_edit_escalation(request.user),
        },
        status=status,
    )


@login_required
@require_POST
def escalation_rule_delete(request: HttpRequest, policy_id: int, pk: int) -> HttpResponse:
    if not permissions.can_edit_escalation(request.user):
        raise PermissionDenied
    rule = get_object_or_404(EscalationRule, pk=pk, policy_id=policy_id)
    escalation_rule_remove(rule=rule, by=request.user)
    messages.success(request, _("Escalation rule removed."))
    return redirect("tickets:escalation_rules", policy_id)
