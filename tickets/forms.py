"""Forms for the request pages; every one uses the shared Bootstrap styling."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import support_agents
from config.forms import BootstrapFormMixin
from tickets import permissions
from tickets.models import Retrospective, SlaPolicy, Ticket, TicketLink

TYPE_HELP = {
    "system_config": _("Change a setting in a marketing system (CRM, mall, mini-program)."),
    "data_support": _("Pull, fix or explain data; reports and exports."),
    "incident": _("Something is broken now, e.g. a promotion does not work."),
    "feature": _("Something new that needs design and building."),
    "consultation": _("A question or advice on how to do something."),
}
URGENCY_HELP = {
    "urgent": _("Business is hurt right now (e.g. a live promotion is broken)."),
    "routine": _("Needed within days (e.g. a monthly report tweak)."),
    "planned": _("For a later date (e.g. next quarter's feature)."),
}


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (validated by the service, by content)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list:
        if not data:
            return []
        items = data if isinstance(data, (list, tuple)) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


class TicketCreateForm(BootstrapFormMixin, forms.Form):
    type = forms.ChoiceField(label=_("Type"), choices=Ticket.Type.choices, widget=forms.RadioSelect)
    urgency = forms.ChoiceField(
        label=_("Urgency"), choices=Ticket.Urgency.choices, widget=forms.RadioSelect, initial="routine"
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("Markdown: **bold**, lists, `code`, links."),
    )
    campaign = forms.ModelChoiceField(label=_("Campaign"), queryset=None, required=False)
    requested_due = forms.DateField(
        label=_("Requested due date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    attachments = MultipleFileField(
        label=_("Attachments"), help_text=_("Drop files here; 10 MB each at most.")
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from campaigns.selectors import campaigns_for_user

        self.fields["campaign"].queryset = campaigns_for_user(user=user)
        self.fields["title"].widget.attrs.update(
            {
                "hx-get": "/kb/suggest/",
                "hx-trigger": "input changed delay:300ms, keyup changed delay:300ms",
                "hx-target": "#kb-suggestions",
                "hx-swap": "innerHTML",
                "autocomplete": "off",
            }
        )
        if permissions.can_work(user):
            # agents log requests heard in a meeting on someone's behalf
            self.fields["on_behalf_of"] = forms.ModelChoiceField(
                label=_("On behalf of"),
                queryset=User.objects.filter(is_active=True, team__isnull=False).order_by("username"),
                to_field_name="username",
                required=False,
                empty_label=_("Myself"),
            )
            self.fields["channel"] = forms.ChoiceField(
                label=_("Channel"),
                choices=[
                    (Ticket.Channel.WEB, Ticket.Channel.WEB.label),
                    (Ticket.Channel.MEETING, Ticket.Channel.MEETING.label),
                ],
                initial=Ticket.Channel.WEB,
            )
            for name in ("on_behalf_of", "channel"):
                css = "form-select"
                self.fields[name].widget.attrs["class"] = css
        self.fields["description"].widget.attrs["data-markdown-source"] = "1"
        self.fields["attachments"].widget.attrs["data-dropzone"] = "1"
        self.type_help = TYPE_HELP
        self.urgency_help = URGENCY_HELP


class CommentForm(BootstrapFormMixin, forms.Form):
    body = forms.CharField(label=_("Reply"), widget=forms.Textarea(attrs={"rows": 4}))
    internal = forms.BooleanField(label=_("Internal note (support staff only)"), required=False)
    attachments = MultipleFileField(label=_("Attachments"))

    def __init__(self, *args: Any, can_note: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not can_note:
            del self.fields["internal"]


def assignee_field(required: bool = False) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        label=_("Assignee"),
        queryset=support_agents(),
        required=required,
        to_field_name="username",
        empty_label=_("Round-robin / nobody"),
    )


class TransitionForm(BootstrapFormMixin, forms.Form):
    to = forms.ChoiceField(choices=Ticket.Status.choices, widget=forms.HiddenInput)
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    reason = forms.CharField(label=_("Reason"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    feasibility = forms.ChoiceField(
        label=_("Feasibility"), choices=[("", "—"), *Ticket.Feasibility.choices], required=False
    )
    feasibility_note = forms.CharField(label=_("Feasibility note"), required=False)
    assignee = assignee_field()


class TriageForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = Ticket
        fields = [
            "type",
            "urgency",
            "feasibility",
            "feasibility_note",
            "effort_hours",
            "cost_estimate",
            "is_complex",
            "campaign",
        ]
        widgets = {"feasibility_note": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from campaigns.selectors import campaigns_for_user

        self.fields["campaign"].queryset = campaigns_for_user(user=user)


class AssignForm(BootstrapFormMixin, forms.Form):
    assignee = assignee_field()


MILESTONES = [
    ("confirm", _("Confirm")),
    ("build", _("Build")),
    ("test", _("Test")),
    ("go_live", _("Go live")),
]


class PlanForm(BootstrapFormMixin, forms.Form):
    implementation_path = forms.CharField(
        label=_("Implementation path"), widget=forms.Textarea(attrs={"rows": 4})
    )
    resources = forms.CharField(
        label=_("Resources"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    submit = forms.BooleanField(label=_("Submit for manager approval"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, label in MILESTONES:
            self.fields[f"milestone_{key}"] = forms.DateField(
                label=label, required=False, widget=forms.DateInput(attrs={"type": "date"})
            )
        order = ["implementation_path", *[f"milestone_{k}" for k, _l in MILESTONES], "resources", "submit"]
        self.order_fields(order)

    def milestones(self) -> list[dict[str, str]]:
        return [
            {"name": key, "due": self.cleaned_data[f"milestone_{key}"].isoformat()}
            for key, _label in MILESTONES
            if self.cleaned_data.get(f"milestone_{key}")
        ]

    @staticmethod
    def initial_from(plan: Any) -> dict[str, Any]:
        if plan is None:
            return {}
        initial = {"implementation_path": plan.implementation_path, "resources": plan.resources}
        for milestone in plan.milestones or []:
            initial[f"milestone_{milestone.get('name')}"] = milestone.get("due")
        return initial


class PlanReviewForm(BootstrapFormMixin, forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"), choices=[("approve", _("Approve")), ("return", _("Send back"))]
    )
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class LinkForm(BootstrapFormMixin, forms.Form):
    kind = forms.ChoiceField(label=_("Relation"), choices=TicketLink.Kind.choices)
    target = forms.CharField(
        label=_("Request key"), max_length=20, widget=forms.TextInput(attrs={"placeholder": "MT-1042"})
    )


class RatingForm(BootstrapFormMixin, forms.Form):
    score = forms.TypedChoiceField(
        label=_("How satisfied are you?"),
        choices=[(n, str(n)) for n in range(5, 0, -1)],
        coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RetrospectiveForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = Retrospective
        fields = ["background", "solution", "configuration", "lessons"]
        widgets = {name: forms.Textarea(attrs={"rows": 3}) for name in fields}


class BulkForm(BootstrapFormMixin, forms.Form):
    keys = forms.CharField(widget=forms.HiddenInput, required=False)
    action = forms.ChoiceField(
        label=_("Action"), choices=[("assign", _("Assign")), ("transition", _("Move to"))]
    )
    assignee = assignee_field()
    to = forms.ChoiceField(label=_("Status"), choices=[("", "—"), *Ticket.Status.choices], required=False)
    note = forms.CharField(label=_("Note / reason"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("action") == "transition" and not data.get("to"):
            raise ValidationError({"to": _("Choose the status to move to.")})
        return data


class SavedViewForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=60)
    query = forms.CharField(widget=forms.HiddenInput, required=False)


class SlaPolicyForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = SlaPolicy
        fields = ["first_response_minutes", "resolution_minutes", "calendar"]


class CalendarForm(BootstrapFormMixin, forms.Form):
    """A calendar's zone, hours ("09:00-12:00, 13:00-18:00" per weekday) and holidays (one date a line)."""

    timezone = forms.ChoiceField(label=_("Time zone"))
    holidays = forms.CharField(
        label=_("Holidays"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One a line: 2026-10-01 National Day"),
    )

    WEEKDAYS = [
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from accounts.models import TIMEZONE_CHOICES

        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = TIMEZONE_CHOICES
        self.fields["timezone"].widget.attrs["class"] = "form-select"
        for day, label in enumerate(self.WEEKDAYS):
            self.fields[f"day_{day}"] = forms.CharField(
                label=label,
                required=False,
                widget=forms.TextInput(attrs={"class": "form-control", "placeholder": "09:00-18:00"}),
            )

    def clean(self) -> dict[str, Any]:
        import datetime as dt

        data = super().clean()
        hours: list[tuple[int, dt.time, dt.time]] = []
        for day in range(7):
            text = (data.get(f"day_{day}") or "").strip()
            for part in filter(None, (p.strip() for p in text.split(","))):
                try:
                    start_text, end_text = part.split("-")
                    start = dt.time.fromisoformat(start_text.strip())
                    end = dt.time.fromisoformat(end_text.strip())
                except ValueError:
                    self.add_error(f"day_{day}", _("Write periods like 09:00-12:00, 13:00-18:00."))
                    continue
                if end <= start:
                    self.add_error(f"day_{day}", _("A period must end after it starts."))
                    continue
                hours.append((day, start, end))
        holidays: list[tuple[dt.date, str]] = []
        for line in (data.get("holidays") or "").splitlines():
            if not line.strip():
                continue
            date_text, _sep, name = line.strip().partition(" ")
            try:
                holidays.append((dt.date.fromisoformat(date_text), name.strip()[:100]))
            except ValueError:
                self.add_error("holidays", _("%(line)s is not a date (YYYY-MM-DD).") % {"line": date_text})
        if not hours and not self.errors:
            raise ValidationError(_("A calendar needs working hours on at least one day."))
        data["hours"] = hours
        data["holiday_list"] = holidays
        return data
