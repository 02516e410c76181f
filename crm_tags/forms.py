"""Forms of the customer and tag pages (validation only; services do the work)."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from config.forms import BootstrapFormMixin
from config.inputs import InvalidInput, parse_json
from crm_tags.models import Tag
from crm_tags.rules import parse_as_of


class CustomerFilterForm(BootstrapFormMixin, forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=200)
    tag = forms.ChoiceField(label=_("Tag"), required=False)
    signup_month = forms.DateField(
        label=_("Signed up in"),
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}),
    )

    def __init__(self, *args: Any, tags: list[Tag], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = [("", _("Any tag"))] + [(t.slug, t.name) for t in tags]


class TagCreateForm(BootstrapFormMixin, forms.Form):
    slug = forms.SlugField(
        label=_("Slug"), max_length=64, help_text=_("Used in rules and the API, e.g. high-potential.")
    )
    name = forms.CharField(label=_("Name"), max_length=100)
    kind = forms.ChoiceField(label=_("Kind"), choices=Tag.Kind.choices)
    category = forms.CharField(label=_("Category"), max_length=100, required=False)
    schedule = forms.ChoiceField(
        label=_("Recompute"), choices=Tag.Schedule.choices, initial=Tag.Schedule.HOURLY
    )


def _definition(raw: str) -> Any:
    try:
        return parse_json(raw)
    except InvalidInput as exc:
        raise exc.as_form_error() from exc


class RuleForm(BootstrapFormMixin, forms.Form):
    definition = forms.CharField(
        label=_("Rule (JSON)"), widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"})
    )
    as_of = forms.CharField(
        label=_("As of"), required=False, help_text=_("Empty: now. ISO date or date-time to back-test.")
    )
    preview_id = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_definition(self) -> Any:
        return _definition(self.cleaned_data["definition"])

    def clean_as_of(self) -> Any:
        value = self.cleaned_data["as_of"].strip()
        if not value:
            return None
        try:
            return parse_as_of(value)
        except InvalidInput as exc:
            raise exc.as_form_error() from exc


class PublishForm(BootstrapFormMixin, forms.Form):
    version = forms.TypedChoiceField(label=_("Version"), coerce=int)
    rollout_percent = forms.IntegerField(
        label=_("Rollout (percent of matching customers)"), min_value=0, max_value=100
    )

    def __init__(self, *args: Any, tag: Tag, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(v.number, f"v{v.number}") for v in tag.versions.all()]


class UploadForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(label=_("CSV file"))
