"""Every kind of notification: its title and body, translated when a reader reads them.

A notification stores its kind and parameters (accounts.Notification.kind / params), never text in the
language of whoever caused it. The list page, the API and the e-mail render it here for one reader: in the
reader's language, numbers and dates in the reader's locale, stored codes (a status) as the reader's label,
and free text written by people with customers' e-mail addresses and phone numbers masked unless the
reader holds `view_pii` (privacy.personal_data decides). Parameters hold codes, ids, counts, amounts and
staff-written text, never a customer's personal values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.apps import apps
from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class NotificationKind:
    """How one kind reads: `title` and `body` are lazily translated %-templates over the parameters.

    labels: parameter → "app_label.Model.Choices" whose label the reader sees instead of the stored code;
    amounts: parameters shown with two decimals ("110,000.00"); counts: whole numbers ("1,204");
    dates: ISO dates or datetimes shown in the reader's format and time zone;
    texts: free text people wrote (a reply, a note, an error): shown as written, customers' values masked.
    """

    title: str | Promise
    body: str | Promise = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    amounts: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenderedNotification:
    title: str
    body: str


class UnknownNotificationKind(ValueError):
    def __init__(self, kind: str) -> None:
        super().__init__(f"Unknown notification kind {kind!r}; add it to accounts/notification_kinds.py.")


class NotificationParamsInvalid(ValueError):
    def __init__(self, kind: str, problem: str) -> None:
        super().__init__(f"Notification kind {kind!r}: {problem}")


_TEXT = "%(text)s"
_REPLY = _("New reply on %(key)s")

KINDS: dict[str, NotificationKind] = {
    # tickets
    "ticket.created": NotificationKind(_("New request %(key)s: %(title)s"), texts=("title",)),
    "ticket.status": NotificationKind(
        _("%(key)s is now %(status)s"), _TEXT, labels={"status": "tickets.Ticket.Status"}, texts=("text",)
    ),
    "ticket.assigned": NotificationKind(_("%(key)s was assigned to you")),
    "ticket.reply": NotificationKind(_REPLY, _TEXT, texts=("text",)),
    "ticket.note": NotificationKind(_REPLY, _TEXT, texts=("text",)),
    "ticket.mention": NotificationKind(_("%(name)s mentioned you on %(key)s"), _TEXT, texts=("text",)),
    "ticket.plan_submitted": NotificationKind(_("Plan for %(key)s awaits approval")),
    "ticket.plan_reviewed": NotificationKind(
        _("Plan for %(key)s: %(status)s"),
        _TEXT,
        labels={"status": "tickets.SolutionPlan.Status"},
        texts=("text",),
    ),
    "ticket.milestone_due": NotificationKind(
        _("A milestone of %(key)s is due on %(due)s"), _TEXT, dates=("due",), texts=("text",)
    ),
    "ticket.sla": NotificationKind(
        _("SLA %(state)s: %(key)s %(title)s"), labels={"state": "tickets.Ticket.SlaState"}, texts=("title",)
    ),
    "ticket.unrouted": NotificationKind(
        _("Nobody can take %(key)s: it waits unassigned in the queue"), "%(title)s", texts=("title",)
    ),
    # escalation rules and team chat robots (tickets.escalation, tickets.chat_robots)
    "ticket.escalated": NotificationKind(
        _("Escalated at %(percent)s%% of %(target)s: %(key)s %(title)s"),
        labels={"target": "tickets.EscalationRule.Target"},
        counts=("percent",),
        texts=("title",),
    ),
    "chat.delivery_failed": NotificationKind(
        _("Chat robot %(robot)s (%(team)s) rejected a message %(attempts)s times"),
        "%(error)s",
        counts=("attempts",),
        texts=("error",),
    ),
    # knowledge base
    "kb.review_requested": NotificationKind(_("Article waiting for review: %(title)s")),
    "kb.published": NotificationKind(_("Your article was published: %(title)s")),
    "kb.sent_back": NotificationKind(_("Your article needs changes: %(title)s"), _TEXT, texts=("text",)),
    "kb.stale": NotificationKind(_("Some of your articles have not been reviewed for 180 days")),
    # campaigns
    "campaign.submitted": NotificationKind(_("Campaign %(name)s awaits approval")),
    "campaign.approved": NotificationKind(_("Campaign %(name)s was approved")),
    "campaign.budget": NotificationKind(
        _("%(name)s has used %(pct)s%% of its budget"),
        _("Spend %(spend)s of budget %(budget)s."),
        amounts=("spend", "budget"),
        counts=("pct",),
    ),
    "campaign.task": NotificationKind(_("New task in %(campaign)s: %(title)s")),
    # analytics
    "report.done": NotificationKind(
        _("Your report “%(kind)s” is ready (%(rows)s rows)."),
        labels={"kind": "analytics.ReportJob.Kind"},
        counts=("rows",),
    ),
    "report.failed": NotificationKind(
        _("Your report “%(kind)s” failed: %(error)s"),
        labels={"kind": "analytics.ReportJob.Kind"},
        texts=("error",),
    ),
    "report.delivery_failed": NotificationKind(
        _("Your weekly report could not be e-mailed: %(error)s"), texts=("error",)
    ),
    # privacy
    "privacy.request_done": NotificationKind(
        _("Personal data request #%(id)s (%(kind)s) is done."), labels={"kind": "privacy.PrivacyRequest.Kind"}
    ),
    "privacy.request_failed": NotificationKind(
        _("Personal data request #%(id)s (%(kind)s) failed."), labels={"kind": "privacy.PrivacyRequest.Kind"}
    ),
    # sign-in
    "two_factor.recovery_code_used": NotificationKind(
        _("A recovery code was used to sign in to your account"),
        _("%(left)s recovery codes are left. If this was not you, change your password."),
        counts=("left",),
    ),
    "two_factor.disable": NotificationKind(
        _("Two-factor sign-in was turned off for your account"),
        _("If this was not you or your administrator, change your password now."),
    ),
    # journeys (a notify step): the customer by external id only, never a personal value
    "journey.notify": NotificationKind(
        _("Journey %(journey)s: customer %(customer)s"), _TEXT, texts=("journey", "text")
    ),
}


def kind_get(kind: str) -> NotificationKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise UnknownNotificationKind(kind) from None


def params_to_json(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as stored: amounts as decimal strings (exact), dates as ISO strings, labels as codes.
    Raises NotificationParamsInvalid naming the parameter a template needs and did not get."""
    spec = kind_get(kind)
    stored: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, (dt.date, dt.datetime)):
            value = value.isoformat()
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        stored[name] = value
    for template in (spec.title, spec.body):
        try:
            str(template) % {name: "" for name in stored}
        except KeyError as exc:
            raise NotificationParamsInvalid(kind, f"the parameter {exc.args[0]!r} is missing.") from None
    return stored


def _label(path: str, code: Any) -> str:
    app_label, model_name, choices_name = path.split(".")
    choices = getattr(apps.get_model(app_label, model_name), choices_name)
    try:
        return str(choices(code).label)
    except ValueError:  # a code retired since the row was written
        return str(code)


def _number(value: Any, places: int) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return formats.number_format(number, decimal_pos=places, use_l10n=True, force_grouping=True)


def _date(value: Any, zone: str) -> str:
    moment = parse_datetime(str(value)) if "T" in str(value) else None
    if moment is not None:
        if timezone.is_aware(moment):
            moment = timezone.localtime(moment, timezone=_zone(zone))
        return formats.date_format(moment, "SHORT_DATETIME_FORMAT")
    day = parse_date(str(value))
    return formats.date_format(day, "SHORT_DATE_FORMAT") if day else str(value)


def _zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def _shown(spec: NotificationKind, name: str, value: Any, reader: Any) -> Any:
    if value is None:
        return ""
    if name in spec.labels:
        return _label(spec.labels[name], value)
    if name in spec.amounts:
        return _number(value, 2)
    if name in spec.counts:
        return _number(value, 0)
    if name in spec.dates:
        return _date(value, getattr(reader, "timezone", ""))
    if name in spec.texts:
        from privacy import personal_data  # privacy reads accounts' models: imported when first rendered

        return personal_data.text_for(str(value), viewer=reader)
    return value


def render(
    kind: str, params: Mapping[str, Any], *, reader: Any = None, language: str = ""
) -> RenderedNotification:
    """The title and body for one reader, in `language` (default: the reader's, else the site's)."""
    spec = kind_get(kind)
    language = language or getattr(reader, "language", "") or settings.LANGUAGE_CODE
    with translation.override(language):
        values = {name: _shown(spec, name, value, reader) for name, value in params.items()}
        try:
            title = str(spec.title) % values
            body = str(spec.body) % values if spec.body else ""
        except (KeyError, TypeError, ValueError):  # a row written before its kind's template changed
            title, body = str(spec.title), ""
    return RenderedNotification(title=title, body=body)
