"""Forms for the request pages; every one uses the shared Bootstrap styling."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import support_agents
from config.concurrency import VersionedFormMixin
from config.forms import BootstrapFormMixin
from config.inputs import InvalidInput, calendar_day, whole_number
from tickets import permissions, sla
from tickets.models import Retrospective, SlaPolicy, Ticket, TicketLink
from tickets.request_type_forms import add_request_type_fields
from tickets.services.triage import TRIAGE_FIELDS

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
        add_request_type_fields(self, user=user)  # the team's request types and the chosen one's fields


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


class TriageForm(VersionedFormMixin, BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = Ticket
        fields = list(TRIAGE_FIELDS)  # what triage_apply may change
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


STANDARD_MILESTONES = {key for key, _label in MILESTONES}
BLANK_MILESTONE_ROWS = 2  # rows for more milestones of a plan's own, beside its own ones
OWN_MILESTONE = re.compile(r"^own_name_(\d+)$")


class PlanForm(BootstrapFormMixin, forms.Form):
    implementation_path = forms.CharField(
        label=_("Implementation path"), widget=forms.Textarea(attrs={"rows": 4})
    )
    resources = forms.CharField(
        label=_("Resources"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    submit = forms.BooleanField(label=_("Submit for sign-off"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, label in MILESTONES:
            self.fields[f"milestone_{key}"] = forms.DateField(
                label=label, required=False, widget=forms.DateInput(attrs={"type": "date"})
            )
        from tickets.signoff import signer_choices

        # who must sign the plan off (issue 21); none chosen: the defaults for the team and type
        self.fields["signoffs"] = forms.MultipleChoiceField(
            label=_("Sign-offs needed"),
            choices=signer_choices(),
            required=False,
            help_text=_("Leave empty for the defaults of this team and type (one manager if none are set)."),
            widget=forms.CheckboxSelectMultiple,
        )
        # milestones of the plan's own (any name the API was given, or typed here): each row a name and date
        own = []
        for number in range(self._own_rows()):
            self.fields[f"own_name_{number}"] = forms.CharField(
                label=_("Another milestone"), required=False, max_length=60
            )
            self.fields[f"own_due_{number}"] = forms.DateField(
                label=_("Its due date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
            )
            own += [f"own_name_{number}", f"own_due_{number}"]
        order = [
            "implementation_path",
            *[f"milestone_{k}" for k, _l in MILESTONES],
            *own,
            "resources",
            "signoffs",
            "submit",
        ]
        self.order_fields(order)

    def _own_rows(self) -> int:
        """As many rows as the form was rendered with (bound), or the plan's own milestones and blanks."""
        if self.is_bound:
            return sum(1 for key in self.data if OWN_MILESTONE.match(key))
        return sum(1 for key in self.initial if OWN_MILESTONE.match(key)) + BLANK_MILESTONE_ROWS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in [key for key in self.fields if OWN_MILESTONE.match(key)]:
            due = name.replace("own_name_", "own_due_")
            if cleaned.get(name) and not cleaned.get(due) and due not in self.errors:
                self.add_error(due, _("Give the milestone a due date."))
            elif cleaned.get(due) and not cleaned.get(name):
                self.add_error(name, _("Name the milestone."))
        return cleaned

    def milestones(self) -> list[dict[str, str]]:
        """The standard milestones in their order, and the plan's own placed among them by date (after
        those due the same day or before), so only the standard ones' order is checked."""
        items = [
            {"name": key, "due": self.cleaned_data[f"milestone_{key}"].isoformat()}
            for key, _label in MILESTONES
            if self.cleaned_data.get(f"milestone_{key}")
        ]
        own = [
            (self.cleaned_data[key].strip(), self.cleaned_data[key.replace("own_name_", "own_due_")])
            for key in self.fields
            if OWN_MILESTONE.match(key) and (self.cleaned_data.get(key) or "").strip()
        ]
        for name, due in sorted(own, key=lambda item: item[1]):
            place = next((i for i, item in enumerate(items) if item["due"] > due.isoformat()), len(items))
            items.insert(place, {"name": name, "due": due.isoformat()})
        return items

    @staticmethod
    def initial_from(plan: Any) -> dict[str, Any]:
        if plan is None:
            return {}
        initial = {"implementation_path": plan.implementation_path, "resources": plan.resources}
        own = 0
        for milestone in plan.milestones or []:
            if milestone.get("name") in STANDARD_MILESTONES:
                initial[f"milestone_{milestone.get('name')}"] = milestone.get("due")
            else:
                initial[f"own_name_{own}"], initial[f"own_due_{own}"] = (
                    milestone.get("name"),
                    milestone.get("due"),
                )
                own += 1
        from tickets.signoff import current_signoffs

        initial["signoffs"] = [
            f"role:{s.role}" if s.role else f"team:{s.team_id}" for s in current_signoffs(plan)
        ]
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
    """A name for the queue's filters; replacing a view of that name carries the version it was read at."""

    name = forms.CharField(label=_("Name"), max_length=60)
    query = forms.CharField(widget=forms.HiddenInput, required=False)
    version = forms.CharField(widget=forms.HiddenInput, required=False)


class SlaPolicyForm(VersionedFormMixin, BootstrapFormMixin, forms.ModelForm):
    """An urgency's targets, its calendar, and per request type another calendar (blank: the policy's)."""

    class Meta:
        model = SlaPolicy
        fields = ["first_response_minutes", "resolution_minutes", "calendar"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from tickets.models import BusinessCalendar

        super().__init__(*args, **kwargs)
        for name in ("first_response_minutes", "resolution_minutes"):
            self.fields[name].max_value = sla.MAX_TARGET_MINUTES
            self.fields[name].validators.append(MaxValueValidator(sla.MAX_TARGET_MINUTES))
            self.fields[name].widget.attrs["max"] = sla.MAX_TARGET_MINUTES
        current = (
            {row.type: row.calendar_id for row in self.instance.type_calendars.all()}
            if self.instance.pk
            else {}
        )
        # one query for the options of all six calendar fields (each would query when drawn)
        options = [(c.pk, c.name) for c in BusinessCalendar.objects.order_by("name").only("pk", "name")]
        self.fields["calendar"].choices = options
        for value, label in Ticket.Type.choices:
            field = forms.ModelChoiceField(
                queryset=BusinessCalendar.objects.order_by("name"),
                required=False,
                label=_("Calendar for %(type)s") % {"type": label},
            )
            field.choices = [("", _("The policy's calendar")), *options]
            field.widget.attrs["class"] = "form-select"
            self.fields[f"type_{value}"] = field
            self.initial[f"type_{value}"] = current.get(value)

    def main_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("first_response_minutes", "resolution_minutes", "calendar")]

    def type_fields(self) -> list[forms.BoundField]:
        return [self[f"type_{value}"] for value in Ticket.Type.values]

    def types_in_use(self) -> bool:
        """Whether the per-type calendars are worth showing open: one is chosen or has an error."""
        return any(field.value() or field.errors for field in self.type_fields())

    def type_calendars(self) -> dict[str, Any]:
        """Request type → its own calendar, from the cleaned form."""
        return {
            value: self.cleaned_data[f"type_{value}"]
            for value in Ticket.Type.values
            if self.cleaned_data.get(f"type_{value}") is not None
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        calendars = [data.get("calendar"), *self.type_calendars().values()]
        for name, message in sla.target_errors(
            calendars=[c for c in calendars if c is not None],
            first_response_minutes=data.get("first_response_minutes"),
            resolution_minutes=data.get("resolution_minutes"),
        ).items():
            if name not in self.errors:
                self.add_error(name, message)
        return data


PERIOD = re.compile(r"^\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")
WORKING_DAY_LINE = re.compile(
    r"^(?P<date>\S+)\s+(?P<periods>\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}(?:\s*,\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2})*)"
    r"(?:\s+(?P<name>.*))?$"
)


def parse_periods(text: str) -> list[tuple[dt.time, dt.time]]:
    """`09:00-12:00, 13:00-24:00` as periods (24:00 is stored as 00:00, the end of the day); ValueError
    with a message fit for the field: bad syntax, an end not after its start, or overlapping periods."""
    periods: list[tuple[dt.time, dt.time]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = PERIOD.match(part)
        try:
            if not match:
                raise ValueError(part)
            start = dt.time.fromisoformat(match.group(1).zfill(5))
            end_text = match.group(2).zfill(5)
            end = sla.MIDNIGHT if end_text == "24:00" else dt.time.fromisoformat(end_text)
        except ValueError as exc:
            raise ValueError(_("Write periods like 09:00-12:00, 13:00-18:00 (24:00 for midnight).")) from exc
        if end != sla.MIDNIGHT and end <= start:
            raise ValueError(_("A period must end after it starts."))
        periods.append((start, end))
    pair = sla.overlapping(periods)
    if pair:
        shown = [f"{s:%H:%M}-{'24:00' if e == sla.MIDNIGHT else format(e, '%H:%M')}" for s, e in pair]
        raise ValueError(
            _("%(first)s and %(second)s overlap: enter each working minute once.")
            % {"first": shown[0], "second": shown[1]}
        )
    return periods


def show_periods(periods: Any) -> str:
    return ", ".join(f"{s:%H:%M}-{'24:00' if e == sla.MIDNIGHT else format(e, '%H:%M')}" for s, e in periods)


class CalendarForm(VersionedFormMixin, BootstrapFormMixin, forms.Form):
    """A calendar's zone, weekly hours ("09:00-12:00, 13:00-18:00" per weekday), holidays (one date a line)
    and dated working hours (make-up working days and half days, one a line)."""

    timezone = forms.ChoiceField(label=_("Time zone"))
    holidays = forms.CharField(
        label=_("Holidays"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One a line: 2026-10-01 National Day"),
    )
    working_days = forms.CharField(
        label=_("Make-up working days and half days"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "One a line, with the day's hours (they replace the weekday's): 2025-09-28 09:00-18:00 "
            "National Day make-up, or 2026-02-16 09:00-12:00 Spring Festival Eve"
        ),
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

    def _day(self, text: str, field: str) -> dt.date | None:
        try:
            return calendar_day(text)
        except InvalidInput as exc:
            self.add_error(field, f"{text}: {exc.message}")
            return None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        hours: list[tuple[int, dt.time, dt.time]] = []
        for day in range(7):
            try:
                periods = parse_periods(data.get(f"day_{day}") or "")
            except ValueError as exc:
                self.add_error(f"day_{day}", str(exc))
                continue
            hours.extend((day, start, end) for start, end in periods)
        holidays: list[tuple[dt.date, str]] = []
        for line in (data.get("holidays") or "").splitlines():
            if not line.strip():
                continue
            date_text, _sep, name = line.strip().partition(" ")
            day = self._day(date_text, "holidays")
            if day is not None:
                holidays.append((day, name.strip()[:100]))
        working: list[tuple[dt.date, str, list[tuple[dt.time, dt.time]]]] = []
        for line in (data.get("working_days") or "").splitlines():
            if not line.strip():
                continue
            match = WORKING_DAY_LINE.match(line.strip())
            if not match:
                self.add_error(
                    "working_days",
                    _(
                        "%(line)s: write a date and its hours, e.g. 2025-09-28 09:00-18:00 National Day make-up."
                    )
                    % {"line": line.strip()[:40]},
                )
                continue
            day = self._day(match.group("date"), "working_days")
            try:
                periods = parse_periods(match.group("periods"))
            except ValueError as exc:
                self.add_error("working_days", f"{match.group('date')}: {exc}")
                continue
            if day is not None:
                working.append((day, (match.group("name") or "").strip()[:100], periods))
        if len({d for d, _n, _p in working}) < len(working):
            self.add_error("working_days", _("Enter each date once."))
        both = sorted({d for d, _n in holidays} & {d for d, _n, _p in working})
        if both:
            self.add_error(
                "working_days",
                _("%(dates)s cannot be both a holiday and a working day.")
                % {"dates": ", ".join(d.isoformat() for d in both)},
            )
        if not hours and not self.errors:
            raise ValidationError(_("A calendar needs working hours on at least one day."))
        data["hours"] = hours
        data["holiday_list"] = holidays
        data["working_day_list"] = working
        return data


class StatutoryLoadForm(VersionedFormMixin, BootstrapFormMixin, forms.Form):
    """Which year of China's statutory holidays and make-up working days to load into a calendar."""

    year = forms.CharField(
        label=_("Year"), max_length=8, widget=forms.TextInput(attrs={"inputmode": "numeric"})
    )

    def clean_year(self) -> int:
        from tickets.statutory import FIRST_YEAR

        try:
            return whole_number(self.cleaned_data["year"], minimum=FIRST_YEAR, maximum=2100)
        except InvalidInput as exc:
            raise exc.as_form_error() from exc


class CalendarCreateForm(BootstrapFormMixin, forms.Form):
    """A new calendar: a name, a zone, and office hours or round the clock to start from."""

    name = forms.CharField(label=_("Name"), max_length=60)
    timezone = forms.ChoiceField(label=_("Time zone"), initial="Asia/Shanghai")
    round_the_clock = forms.BooleanField(
        label=_("Round the clock (24/7)"),
        required=False,
        help_text=_("Otherwise it starts with Monday–Friday 09:00–18:00."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from accounts.models import TIMEZONE_CHOICES

        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = TIMEZONE_CHOICES
