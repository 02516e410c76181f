"""Template tags of the on-call work: the big-sale banner and the escalation rules on the SLA page."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


def _request_cache(context: template.Context, name: str, load: Any) -> Any:
    """One query per page however often the tag is used (cached on the request)."""
    request = context.get("request")
    holder = request if request is not None else context
    key = f"_oncall_{name}"
    if not hasattr(holder, key):
        setattr(holder, key, load())
    return getattr(holder, key)


@register.simple_tag(takes_context=True)
def active_big_sale(context: template.Context) -> Any:
    """The big-sale window running now, or None."""
    from tickets.oncall.big_sale import current_window

    return _request_cache(context, "big_sale", current_window)


@register.simple_tag(takes_context=True)
def escalation_rules_of(context: template.Context, policy: Any) -> list[Any]:
    """The policy's escalation rules (all policies' rules load in one query)."""
    from tickets.models import EscalationRule

    def load() -> dict[int, list[Any]]:
        rules: dict[int, list[Any]] = {}
        for rule in EscalationRule.objects.order_by("target", "percent", "pk"):
            rules.setdefault(rule.policy_id, []).append(rule)
        return rules

    return _request_cache(context, "escalation_rules", load).get(policy.pk, [])
