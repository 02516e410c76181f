"""Forms for request types and routing: the new-request form's request-type choice with the chosen type's
fields (`cf_<name>`), the request-type and field editors, team routing and an agent's capacity and skills.
Values are checked by tickets.request_types (the one validator); these forms only collect them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import support_agents
from config.forms import BootstrapFormMixin
from tickets.models import Ticket
from tickets.request_types import CustomFieldsInvalid, request_type_get, request_types_for_team
from tickets.routing_tables import RequestField, RequestType, Skill, TeamRouting

K = RequestField.Kind
PREFIX = "cf_"


def _value_field(field: RequestField, user: User) -> forms.Field:
    common: dict[str, Any] = {"label": field.label, "required": field.required}
    if field.kind == K.NUMBER:
        return forms.CharField(widget=forms.TextInput(attrs={"inputmode": "decimal"}), **common)
    if field.kind == K.DATE:
        return forms.CharField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if field.kind == K.CHOICE:
        return forms.ChoiceField(choices=[("", "—"), *[(c, c) for c in field.choices]], **common)
    if field.kind == K.USER:
        return forms.ModelChoiceField(
            queryset=User.objects.filter(is_active=True).order_by("username"),
            to_field_name="username",
            **common,
        )
    if field.kind == K.CAMPAIGN:
        from campaigns.selectors import campaigns_for_user

        return forms.ModelChoiceField(queryset=campaigns_for_user(user=user).order_by("name"), **common)
    return forms.CharField(max_length=2000, **common)


def add_request_type_fields(form: forms.Form, *, user: User) -> None:
    """Give the new-request form its team's request types (htmx loads the chosen one's fields) and, when
    one is chosen, that type's fields as `cf_<name>`; its defaults make type and urgency optional."""
    form.custom_names = []
    form.chosen_request_type = None
    types = request_types_for_team(team_id=user.team_id)
    if not types.exists():
        return
    form.fields["request_type"] = forms.ModelChoiceField(
        label=_("Request type"),
        queryset=types,
        required=False,
        empty_label=_("General request"),
        widget=forms.Select(
            attrs={
                "class": "form-select",
                "hx-get": reverse("tickets:request_type_fields"),
                "hx-target": "#request-type-fields",
                "hx-trigger": "change",
                "hx-indicator": "#request-type-busy",
            }
        ),
    )
    chosen_id = form.data.get("request_type") if form.is_bound else form.initial.get("request_type")
    chosen = request_type_get(team_id=user.team_id, pk=chosen_id)
    if chosen is None:
        return
    form.chosen_request_type = chosen
    if chosen.default_type:
        form.fields["type"].required = False
        form.initial.setdefault("type", chosen.default_type)
    if chosen.default_urgency:
        form.fields["urgency"].required = False
        form.initial["urgency"] = chosen.default_urgency
    for field in chosen.fields.all():
        widget_field = _value_field(field, user)
        css = "form-select" if isinstance(widget_field, forms.ChoiceField) else "form-control"
        widget_field.widget.attrs.setdefault("class", css)
        form.fields[PREFIX + field.name] = widget_field
        form.custom_names.append(field.name)


def custom_values(form: forms.Form) -> dict[str, Any]:
    """The chosen type's values from a valid form, as the service takes them (empty ones left out)."""
    values: dict[str, Any] = {}
    for name in getattr(form, "custom_names", []):
        value = form.cleaned_data.get(PREFIX + name)
        if isinstance(value, User):
            value = value.username
        elif hasattr(value, "pk"):
            value = value.pk
        if value not in (None, ""):
            values[name] = value
    return values


def custom_errors_apply(form: forms.Form, exc: DjangoValidationError) -> bool:
    """Put the service's field errors under their fields; False when `exc` is not about custom fields."""
    if not isinstance(exc, CustomFieldsInvalid):
        return False
    for name, messages in exc.by_field.items():
        target = PREFIX + name
        form.add_error(target if target in form.fields else None, messages)
    return True


# --- editors ------------------------------------------------------------------------------------------------


class TeamRoutingForm(BootstrapFormMixin, forms.Form):
    mode = forms.ChoiceField(label=_("Routing"), choices=TeamRouting.Mode.choices)
    assign_on_create = forms.BooleanField(label=_("Assign when filed (otherwise at triage)"), required=False)
    lead = forms.ModelChoiceField(
        label=_("Team lead"),
        queryset=User.objects.none(),
        required=False,
        to_field_name="username",
        empty_label=_("The managers"),
        help_text=_("Told once when nobody can take a request."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lead"].queryset = support_agents()
        skills = Skill.objects.all()
        for value, label in Ticket.Type.choices:
            self.fields[f"skills_{value}"] = forms.ModelMultipleChoiceField(
                label=_("Skills for “%(type)s”") % {"type": label},
                queryset=skills,
                required=False,
                widget=forms.SelectMultiple(attrs={"class": "form-select", "size": 3}),
            )

    def type_skills(self) -> dict[str, list[Skill]]:
        return {value: list(self.cleaned_data[f"skills_{value}"]) for value in Ticket.Type.values}


class AgentRoutingForm(BootstrapFormMixin, forms.Form):
    capacity = forms.IntegerField(
        label=_("Capacity"),
        required=False,
        min_value=0,
        max_value=1000,
        help_text=_("The most open weighted load (urgent 3, routine 2, planned 1); empty: no limit."),
    )
    skills = forms.ModelMultipleChoiceField(
        label=_("Skills"),
        queryset=Skill.objects.all(),
        required=False,
        widget=forms.SelectMultiple(attrs={"class": "form-select", "size": 3}),
    )


class SkillForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("New skill"), max_length=60)


class RequestTypeForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = RequestType
        fields = [
            "name",
            "description",
            "default_type",
            "default_urgency",
            "default_assignee",
            "skills",
            "active",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["default_assignee"].queryset = support_agents()
        self.fields["skills"].required = False

    def validate_unique(self) -> None:
        pass  # the service checks the name within the team (the form has no team field)


class RequestFieldForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=40,
        help_text=_("Lower-case letters, digits and _; used in the API and in queue filters (cf_<name>)."),
    )
    label = forms.CharField(label=_("Label"), max_length=100)
    kind = forms.ChoiceField(label=_("Kind"), choices=K.choices)
    required = forms.BooleanField(label=_("Required"), required=False)
    choices = forms.CharField(
        label=_("Choices"),
        required=False,
        max_length=2000,
        help_text=_("For a choice field: comma-separated."),
    )
