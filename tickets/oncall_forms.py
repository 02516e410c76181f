"""Forms of the on-call, chat robot, big-sale and escalation pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import support_agents
from tickets.models import BigSaleWindow, BusinessCalendar, ChatRobot, EscalationRule
from tickets.oncall import company_zone
from tickets.oncall_tables import WEEKDAYS

_CONTROL = {"class": "form-control"}
_SELECT = {"class": "form-select"}


class LocalDateTimeField(forms.DateTimeField):
    """A `datetime-local` input read on the company's clock (the rota's time zone)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local", **_CONTROL}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value: Any) -> dt.datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        if timezone.is_aware(moment):
            moment = timezone.make_naive(moment, timezone.get_current_timezone())
        return moment.replace(tzinfo=company_zone())


class RotaForm(forms.Form):
    members = forms.CharField(
        label=_("Members in order"),
        widget=forms.Textarea(attrs={"rows": 4, **_CONTROL}),
        help_text=_("One username per line; the first takes the first week."),
    )
    starts_on = forms.DateField(
        label=_("Rotation start"), widget=forms.DateInput(attrs={"type": "date", **_CONTROL})
    )
    handover_weekday = forms.TypedChoiceField(
        label=_("Handover weekday"), choices=WEEKDAYS, coerce=int, widget=forms.Select(attrs=_SELECT)
    )
    handover_time = forms.TimeField(
        label=_("Handover time"),
        widget=forms.TimeInput(attrs={"type": "time", **_CONTROL}, format="%H:%M"),
        help_text=_("On the company's clock (Asia/Shanghai)."),
    )
    calendar = forms.ModelChoiceField(
        label=_("Business hours"),
        queryset=BusinessCalendar.objects.order_by("name"),
        required=False,
        widget=forms.Select(attrs=_SELECT),
        help_text=_("Urgent and incident requests outside these hours go to the person on call."),
    )
    lead = forms.ModelChoiceField(
        label=_("Team lead"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.Select(attrs=_SELECT),
        help_text=_("Escalation rules may hand a request to this person."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lead"].queryset = support_agents()

    def clean_members(self) -> list[User]:
        names = [line.strip() for line in self.cleaned_data["members"].splitlines() if line.strip()]
        found = {u.username: u for u in User.objects.filter(username__in=names, is_active=True)}
        unknown = [n for n in names if n not in found]
        if unknown:
            raise forms.ValidationError(_("Unknown people: %(names)s.") % {"names": ", ".join(unknown)})
        return [found[n] for n in names]


class OverrideForm(forms.Form):
    user = forms.ModelChoiceField(
        label=_("Person"), queryset=User.objects.none(), widget=forms.Select(attrs=_SELECT)
    )
    starts_at = LocalDateTimeField(label=_("From"))
    ends_at = LocalDateTimeField(label=_("Until"))
    note = forms.CharField(
        label=_("Note"), max_length=200, required=False, widget=forms.TextInput(attrs=_CONTROL)
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = support_agents()


class ChatRobotForm(forms.ModelForm):
    # declared, not generated from the model: a generated URLField warns about Django 6's default scheme
    webhook_url = forms.URLField(
        label=_("webhook URL"), max_length=500, assume_scheme="https", widget=forms.URLInput(attrs=_CONTROL)
    )

    class Meta:
        model = ChatRobot
        fields = ["name", "kind", "webhook_url", "secret", "keyword", "enabled"]
        widgets = {
            "name": forms.TextInput(attrs=_CONTROL),
            "kind": forms.Select(attrs=_SELECT),
            "secret": forms.PasswordInput(attrs=_CONTROL, render_value=False),
            "keyword": forms.TextInput(attrs=_CONTROL),
            "enabled": forms.CheckboxInput(attrs={"class": "form-check-input"}),
        }

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"]
        if not url.lower().startswith(("https://", "http://")):
            raise forms.ValidationError(_("Enter the robot's http(s) webhook URL."))
        return url


class BigSaleForm(forms.ModelForm):
    starts_at = LocalDateTimeField(label=_("From"))
    ends_at = LocalDateTimeField(label=_("Until"))

    class Meta:
        model = BigSaleWindow
        fields = [
            "name",
            "starts_at",
            "ends_at",
            "urgent_first_response_minutes",
            "urgent_resolution_minutes",
            "incident_first_response_minutes",
            "incident_resolution_minutes",
        ]
        widgets = {
            "name": forms.TextInput(attrs={"placeholder": "618", **_CONTROL}),
            **{
                name: forms.NumberInput(attrs={"min": 1, **_CONTROL})
                for name in (
                    "urgent_first_response_minutes",
                    "urgent_resolution_minutes",
                    "incident_first_response_minutes",
                    "incident_resolution_minutes",
                )
            },
        }

    def _post_clean(self) -> None:
        # the service validates and saves (tickets.oncall.big_sale); the model's own checks run there too
        pass


class EscalationRuleForm(forms.Form):
    target = forms.ChoiceField(
        label=_("Target"), choices=EscalationRule.Target.choices, widget=forms.Select(attrs=_SELECT)
    )
    percent = forms.IntegerField(
        label=_("Percent of the target"), min_value=1, max_value=500, widget=forms.NumberInput(attrs=_CONTROL)
    )
    action = forms.ChoiceField(
        label=_("Action"), choices=EscalationRule.Action.choices, widget=forms.Select(attrs=_SELECT)
    )
