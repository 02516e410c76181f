"""Forms of the audience activation pages: a destination's settings, a schedule, a sync to start. Every field
has a label; the services validate what matters and their errors land under the field they name."""

from django import forms
from django.utils.translation import gettext_lazy as _

from crm_tags.models import Tag
from journeys.activation.sync import SYNC_PERSONAL_FIELDS
from journeys.models import ActivationSchedule, Destination, SyncMode
from privacy import consent
from privacy.models import Purpose

PERSONAL_FIELD_LABELS = {"email": _("E-mail"), "phone": _("Phone")}


def _purpose_choices(purposes: tuple[str, ...]) -> list[tuple[str, str]]:
    return [("", _("None (every member)"))] + [(p, Purpose(p).label) for p in purposes]


class DestinationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    kind = forms.ChoiceField(label=_("Kind"), choices=Destination.Kind.choices)
    url = forms.URLField(label=_("URL"), max_length=500, required=False, assume_scheme="https")
    secret = forms.CharField(
        label=_("Signing secret"),
        max_length=200,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Never shown again; leave blank to keep the stored one."),
    )
    folder = forms.CharField(
        label=_("Folder"),
        max_length=300,
        required=False,
        help_text=_("A folder inside the file root, e.g. crm/exports (file destinations)."),
    )
    batch_size = forms.IntegerField(label=_("Batch size"), min_value=1, max_value=10_000, initial=100)
    purpose = forms.ChoiceField(
        label=_("Consent purpose"), choices=_purpose_choices(consent.CHANNEL_PURPOSES), required=False
    )
    customer_facing = forms.BooleanField(label=_("Customer-facing"), required=False)
    personal_fields = forms.MultipleChoiceField(
        label=_("Personal fields sent"),
        choices=[(f, PERSONAL_FIELD_LABELS[f]) for f in SYNC_PERSONAL_FIELDS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only with a consent purpose, and only by someone allowed to see personal data."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if isinstance(field.widget, forms.CheckboxInput):
                field.widget.attrs.setdefault("class", "form-check-input")
            elif not isinstance(field.widget, forms.CheckboxSelectMultiple):
                field.widget.attrs.setdefault(
                    "class", "form-select" if name in ("kind", "purpose") else "form-control"
                )

    @staticmethod
    def initial_of(destination: Destination) -> dict:
        return {
            "name": destination.name,
            "kind": destination.kind,
            "url": destination.url,
            "folder": destination.folder,
            "batch_size": destination.batch_size,
            "purpose": destination.purpose,
            "customer_facing": destination.customer_facing,
            "personal_fields": list(destination.personal_fields or []),
        }


class _AudienceForm(forms.Form):
    tag = forms.ChoiceField(label=_("Tag"), required=False)
    campaign = forms.TypedChoiceField(label=_("Campaign"), required=False, coerce=int, empty_value=None)
    mode = forms.ChoiceField(label=_("Mode"), choices=SyncMode.choices, initial=SyncMode.DELTA)
    purpose = forms.ChoiceField(
        label=_("Consent purpose"),
        choices=_purpose_choices(consent.PURPOSES),
        required=False,
        help_text=_("Only members who hold it are sent (a destination that names a purpose uses its own)."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from campaigns.models import Campaign

        self.fields["tag"].choices = [("", "—")] + list(
            Tag.objects.order_by("name").values_list("slug", "name")
        )
        # campaigns with an audience (tags to include); support staff see every campaign
        campaigns = (
            Campaign.objects.exclude(audience_include=[]).order_by("name").values_list("pk", "name", "code")
        )
        self.fields["campaign"].choices = [("", "—")] + [
            (pk, f"{name} ({code})") for pk, name, code in campaigns
        ]
        for field in self.fields.values():
            field.widget.attrs.setdefault("class", "form-select")


class SyncForm(_AudienceForm):
    pass


class ScheduleForm(_AudienceForm):
    cadence = forms.ChoiceField(label=_("When"), choices=ActivationSchedule.Cadence.choices)
    at = forms.TimeField(
        label=_("At (HH:MM)"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time", "class": "form-control"}),
        help_text=_("Daily syncs: the time of day in the company's time zone."),
    )
