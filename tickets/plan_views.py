"""Plan sign-off and milestone pages (issue 21): the sign-off page a signer opens from the notification,
the decision, the list of plans waiting for me, and marking milestones done. Thin: tickets.signoff and
tickets.milestones do the work."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from config.forms import BootstrapFormMixin
from config.markdown import render_markdown
from tickets import milestones, permissions, signoff
from tickets.models import SolutionPlan, Ticket
from tickets.services.errors import TicketConflict


class SignoffForm(BootstrapFormMixin, forms.Form):
    decision = forms.ChoiceField(
        label=gettext_lazy("Decision"),
        choices=[("approve", gettext_lazy("Approve")), ("return", gettext_lazy("Send back"))],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label=gettext_lazy("Reason or note"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Required when sending the plan back."),
    )


def _plan_for_signer(user: Any, key: str) -> tuple[Ticket, SolutionPlan]:
    """The ticket and its plan for someone who may see the ticket or give one of its current sign-offs;
    Http404 otherwise (a plan out of reach looks like one that does not exist)."""
    ticket = (
        Ticket.objects.select_related("team", "requester", "assignee").filter(key=key.strip().upper()).first()
    )
    plan = (
        SolutionPlan.objects.select_related("author", "reviewed_by").filter(ticket=ticket).first()
        if ticket
        else None
    )
    if ticket is None or plan is None:
        raise Http404("No such plan.")
    if permissions.can_view(user, ticket):
        return ticket, plan
    if any(signoff.may_sign(user, row) for row in signoff.current_signoffs(plan)):
        return ticket, plan
    raise Http404("No such plan.")


def _page(
    request: HttpRequest,
    ticket: Ticket,
    plan: SolutionPlan,
    *,
    form: SignoffForm | None = None,
    status: int = 200,
) -> HttpResponse:
    rows = signoff.current_signoffs(plan)
    refusal = signoff.signoff_refusal(request.user, plan, rows)
    context = {
        "nav_active": "queue" if permissions.can_work(request.user) else "requests",
        "ticket": ticket,
        "plan": plan,
        "path_html": mark_safe(render_markdown(plan.implementation_path)),  # noqa: S308 (sanitised by nh3)
        "signoffs": rows,
        "slot": None if refusal else signoff.slot_for(request.user, rows),
        "refusal": refusal if plan.status == SolutionPlan.Status.SUBMITTED else "",
        "form": form or SignoffForm(),
        "milestone_rows": milestones_with_state(plan),
        "can_see_ticket": permissions.can_view(request.user, ticket),
        "can_mark": permissions.can_work(request.user),
    }
    return render(request, "tickets/plans/signoff.html", context, status=status)


def milestones_with_state(plan: SolutionPlan) -> list[dict[str, Any]]:
    """The plan's milestones with their words and whether each is overdue (for the pages)."""
    today = milestones.today()
    return [
        {
            "row": row,
            "label": milestones.milestone_label(row.name),
            "overdue": not row.done and row.due < today and plan.ticket.is_open,
        }
        for row in plan.milestone_rows.select_related("done_by").order_by("position", "id")
    ]


@login_required
@require_GET
def plan_signoff_view(request: HttpRequest, key: str) -> HttpResponse:
    ticket, plan = _plan_for_signer(request.user, key)
    return _page(request, ticket, plan)


@login_required
@require_POST
def plan_signoff_decide_view(request: HttpRequest, key: str) -> HttpResponse:
    ticket, plan = _plan_for_signer(request.user, key)
    form = SignoffForm(request.POST)
    if not form.is_valid():
        return _page(request, ticket, plan, form=form, status=400)
    try:
        signoff.signoff_decide(
            ticket=ticket,
            by=request.user,
            approve=form.cleaned_data["decision"] == "approve",
            note=form.cleaned_data["note"],
        )
    except PermissionDenied:
        raise
    except TicketConflict as exc:
        form.add_error(None, str(exc))
        return _page(request, ticket, plan, form=form, status=409)
    except DjangoValidationError as exc:
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
        return _page(request, ticket, plan, form=form, status=400)
    messages.success(request, _("Your sign-off is recorded."))
    return redirect("tickets:plan_signoff", key=ticket.key)


@login_required
@require_GET
def plans_waiting_view(request: HttpRequest) -> HttpResponse:
    """Submitted plans with a sign-off waiting for me."""
    plans = list(signoff.plans_waiting_for(request.user)[:200])
    nav = "queue" if permissions.can_work(request.user) else "requests"
    return render(request, "tickets/plans/waiting.html", {"plans": plans, "nav_active": nav})


@login_required
@require_POST
def milestone_mark_view(request: HttpRequest, key: str, milestone_id: int) -> HttpResponse:
    ticket, _plan = _plan_for_signer(request.user, key)
    if not permissions.can_work(request.user):
        raise PermissionDenied
    try:
        milestones.milestone_mark(
            milestone_id=milestone_id, ticket=ticket, by=request.user, done=request.POST.get("done") == "1"
        )
    except DjangoValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Milestone saved."))
    return redirect("tickets:plan_signoff", key=ticket.key)
