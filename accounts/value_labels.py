"""Labels for the codes stored in free-form fields (channels, gender, event types) and for durations kept in minutes:
what a person reads instead of `mini_program`, `f` or `10800 min`. A code nobody named shows as it is
(channels are open-ended: a new one appears in imports before anyone names it)."""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

CHANNEL_LABELS: dict[str, str | Promise] = {
    "web": _("Website"),
    "app": _("App"),
    "mini_program": _("Mini program"),
    "store": _("Store"),
    "wechat": _("WeChat"),
    "douyin": _("Douyin"),
    "tmall": _("Tmall"),
    "jd": _("JD.com"),
    "xiaohongshu": _("Xiaohongshu"),
    "baidu": _("Baidu"),
    "weibo": _("Weibo"),
    "email": _("Email"),
    "sms": _("SMS"),
    "offline": _("Offline"),
}

GENDER_LABELS: dict[str, str | Promise] = {
    "f": _("Female"),
    "female": _("Female"),
    "m": _("Male"),
    "male": _("Male"),
    "o": _("Other"),
    "other": _("Other"),
    "u": _("Unknown"),
    "unknown": _("Unknown"),
}

EVENT_LABELS: dict[str, str | Promise] = {
    "page_view": _("Page view"),
    "order": _("Order"),
    "coupon_redeemed": _("Coupon redeemed"),
    "signup": _("Sign-up"),
    "add_to_cart": _("Added to cart"),
}


def channel_label(code: Any) -> str:
    """`mini_program` → "Mini program" (小程序); an unknown channel as it is."""
    if code is None or code == "":
        return ""
    return str(CHANNEL_LABELS.get(str(code).strip().lower(), code))


def gender_label(code: Any) -> str:
    """`f` → "Female" (女); an unknown value as it is."""
    if code is None or code == "":
        return ""
    return str(GENDER_LABELS.get(str(code).strip().lower(), code))


def event_label(code: Any) -> str:
    """`page_view` → "Page view" (浏览页面); an unknown event type as it is."""
    if code is None or code == "":
        return ""
    return str(EVENT_LABELS.get(str(code), code))


def minutes_label(minutes: Any) -> str:
    """A duration kept in minutes, in words: 30 → "30 minutes", 180 → "3 hours", 90 → "1 hour 30 minutes"."""
    if minutes is None or minutes == "":
        return ""
    try:
        total = int(minutes)
    except (TypeError, ValueError):
        return str(minutes)
    hours, rest = divmod(total, 60)
    parts = []
    if hours:
        parts.append(ngettext("%(n)s hour", "%(n)s hours", hours) % {"n": f"{hours:,}"})
    if rest or not hours:
        parts.append(ngettext("%(n)s minute", "%(n)s minutes", rest) % {"n": rest})
    return " ".join(parts)
