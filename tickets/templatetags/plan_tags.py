"""The plan tab's sign-off and milestone panels (issue 21), for the ticket page."""

from __future__ import annotations

from typing import Any

from django import template

from tickets import permissions, signoff
from tickets.models import SolutionPlan

register = template.Library()


@register.inclusion_tag("tickets/plans/_panel.html", takes_context=True)
def plan_panels(context: template.Context, plan: SolutionPlan) -> dict[str, Any]:
    """Who signs the plan off (and whether it is the viewer's turn) and its milestones with overdue marks."""
    from tickets.plan_views import milestones_with_state

    user = context["request"].user
    rows = signoff.current_signoffs(plan)
    waiting_for_me = (
        plan.status == SolutionPlan.Status.SUBMITTED and signoff.signoff_refusal(user, plan, rows) is None
    )
    return {
        "ticket": plan.ticket,
        "plan": plan,
        "signoffs": rows,
        "waiting_for_me": waiting_for_me,
        "milestone_rows": milestones_with_state(plan),
        "can_mark": permissions.can_work(user),
        "request": context["request"],
    }


@register.inclusion_tag("tickets/plans/_overdue_widget.html", takes_context=True)
def overdue_milestones_widget(context: template.Context, limit: int = 8) -> dict[str, Any]:
    """The dashboard's card: how many plan milestones are overdue on open requests, the oldest first."""
    from tickets.milestones import milestone_label, overdue_milestones_for

    count, oldest = overdue_milestones_for(user=context["request"].user, limit=limit)
    rows = [
        {
            "key": m.plan.ticket.key,
            "label": milestone_label(m.name),
            "due": m.due,
            "assignee": m.plan.ticket.assignee,
        }
        for m in oldest
    ]
    return {"count": count, "rows": rows}
