"""Filters that show stored codes with their labels: `{{ customer.gender|gender_label }}`,
`{{ event.channel|channel_label }}`, `{{ policy.resolution_minutes|minutes_label }}`."""

from typing import Any

from django import template

from accounts import value_labels

register = template.Library()


@register.filter
def channel_label(code: Any) -> str:
    return value_labels.channel_label(code)


@register.filter
def gender_label(code: Any) -> str:
    return value_labels.gender_label(code)


@register.filter
def event_label(code: Any) -> str:
    return value_labels.event_label(code)


@register.filter
def minutes_label(minutes: Any) -> str:
    return value_labels.minutes_label(minutes)
