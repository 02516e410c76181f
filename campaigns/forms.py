"""Forms for the campaign pages."""

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Team, User
from campaigns import attribution, kpi_targets
from campaigns.models import ABTest, Campaign
from config.concurrency import VersionedFormMixin
from config.forms import BootstrapFormMixin
from config.inputs import INT32_MAX, InvalidInput, decimal_number, parse_json, whole_number

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.replace("，", ",").split(",") if part.strip()]


class CampaignForm(VersionedFormMixin, BootstrapFormMixin, forms.ModelForm):
    """Drafting and editing a campaign's plan; channels and tags are typed as comma-separated lists, KPI
    targets as rows (metric, target) posted as `kpi_metric` / `kpi_target` beside a `kpi_rows` marker
    (without it, `kpi_text` is read as JSON). Editing carries the hidden version the editor started from."""

    channels_text = forms.CharField(
        label=_("Channels"), required=False, help_text=_("Comma-separated, e.g. wechat, douyin, tmall.")
    )
    kpi_text = forms.CharField(
        label=_("KPI targets"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_('JSON, e.g. {"conversions": 5000, "roi": 1.5}.'),
    )
    include_text = forms.CharField(
        label=_("Tags to include"),
        required=False,
        help_text=_("Pick tags from the list below (or type their slugs, separated by commas)."),
    )
    exclude_text = forms.CharField(
        label=_("Tags to exclude"),
        required=False,
        help_text=_("Pick tags from the list below (or type their slugs, separated by commas)."),
    )

    class Meta:
        model = Campaign
        fields = ["name", "code", "objective", "budget", "start_date", "end_date", "audience_include_mode"]
        widgets = {"start_date": DATE, "end_date": DATE, "objective": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk:
            self.fields["code"].disabled = True
            self.initial.setdefault("channels_text", ", ".join(instance.channels))
            self.initial.setdefault("kpi_text", json.dumps(instance.kpi_targets, ensure_ascii=False))
            self.initial.setdefault("include_text", ", ".join(instance.audience_include))
            self.initial.setdefault("exclude_text", ", ".join(instance.audience_exclude))
        for name in ("include_text", "exclude_text", "audience_include_mode"):
            self.fields[name].widget.attrs["data-audience"] = name
        saved = instance.kpi_targets if instance.pk and isinstance(instance.kpi_targets, dict) else {}
        self.kpi_choices = kpi_targets.metric_choices(saved)
        self.kpi_rows = kpi_targets.rows_from_targets(saved)

    def audience_tags(self) -> list[dict[str, str]]:
        """The tags the audience picker offers, by name."""
        from campaigns.selectors import audience_tag_choices

        return audience_tag_choices()

    def _posts_kpi_rows(self) -> bool:
        return self.is_bound and "kpi_rows" in self.data and hasattr(self.data, "getlist")

    def clean_code(self) -> str:
        code = (self.cleaned_data.get("code") or "").strip().lower()
        if not self.instance.pk and Campaign.objects.filter(code=code).exists():
            raise forms.ValidationError(_("A campaign with this code exists."))
        return code

    def clean_kpi_text(self) -> dict:
        if self._posts_kpi_rows():
            allowed = {code for code, _label, _unit in self.kpi_choices}
            values, self.kpi_rows = kpi_targets.read_rows(
                self.data.getlist("kpi_metric"), self.data.getlist("kpi_target"), allowed=allowed
            )
            if any(row.error for row in self.kpi_rows):
                raise forms.ValidationError(_("A KPI target needs fixing; see the marked row."))
            return values
        text = (self.cleaned_data.get("kpi_text") or "").strip()
        if not text:
            return {}
        try:
            value = parse_json(text)
        except InvalidInput as exc:
            raise exc.as_form_error() from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Write an object of name: target."))
        return value

    def _slugs(self, name: str) -> list[str]:
        from campaigns.selectors import known_tag_slugs

        slugs = [s.lower() for s in _split(self.cleaned_data.get(name) or "")]
        known = known_tag_slugs(slugs)
        if known is not None and set(slugs) - known:
            raise forms.ValidationError(
                _("Unknown tag(s): %(tags)s.") % {"tags": ", ".join(sorted(set(slugs) - known))}
            )
        return slugs

    def clean_include_text(self) -> list[str]:
        return self._slugs("include_text")

    def clean_exclude_text(self) -> list[str]:
        return self._slugs("exclude_text")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("The end date is before the start date."))
        return data

    def plan(self) -> dict[str, Any]:
        """The cleaned values in the services' terms."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "objective": data.get("objective", ""),
            "budget": data["budget"],
            "start_date": data["start_date"],
            "end_date": data["end_date"],
            "channels": _split(data.get("channels_text") or ""),
            "kpi_targets": data.get("kpi_text") or {},
            "audience_include": data.get("include_text") or [],
            "audience_include_mode": data.get("audience_include_mode") or "any",
            "audience_exclude": data.get("exclude_text") or [],
        }


class TaskForm(BootstrapFormMixin, forms.Form):
    title = forms.CharField(label=_("Task"), max_length=200)
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False)
    due_date = forms.DateField(label=_("Due date"), required=False, widget=DATE)

    def __init__(self, *args: Any, campaign: Campaign, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # People of the campaign's team plus support staff can own tasks.
        from accounts.selectors import support_agents

        self.fields["owner"].queryset = User.objects.filter(
            Q(team_id=campaign.team_id) | Q(pk__in=support_agents().values("pk")), is_active=True
        ).order_by("username")


class UploadForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(label=_("CSV file"))


class ABTestForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Test name"), max_length=200)
    min_sample = forms.IntegerField(
        label=_("Minimum sample per variant"), min_value=1, max_value=INT32_MAX, initial=1000
    )
    planned_sample = forms.IntegerField(
        label=_("Planned sample per variant"),
        min_value=1,
        max_value=INT32_MAX,
        required=False,
        help_text=_(
            "The exposures each variant should reach; the minimum detectable effect is for this sample."
        ),
    )
    baseline_rate = forms.CharField(
        label=_("Expected control conversion rate (%)"),
        required=False,
        max_length=20,
        help_text=_("For the minimum detectable effect before the test runs; needed for a sequential test."),
    )
    sequential = forms.ChoiceField(
        label=_("Checking"), choices=ABTest.Sequential.choices, required=False, initial=""
    )
    variants = forms.CharField(
        label=_("Variants"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line: name, exposures, conversions. The first is the control."),
    )

    def clean_baseline_rate(self) -> Decimal | None:
        """A percentage typed as text (e.g. 4.5), returned as a fraction (0.045)."""
        text = (self.cleaned_data.get("baseline_rate") or "").strip().rstrip("%").strip()
        if not text:
            return None
        try:
            percent = decimal_number(text, minimum=Decimal("0.0001"), maximum=100, places=4)
        except InvalidInput as exc:
            raise exc.as_form_error() from exc
        return percent / 100

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (
            data.get("sequential")
            and data.get("baseline_rate") is None
            and "baseline_rate" not in self.errors
        ):
            self.add_error(
                "baseline_rate", _("A sequential test needs the expected control conversion rate.")
            )
        return data

    def clean_variants(self) -> list[dict[str, Any]]:
        variants = []
        for number, line in enumerate((self.cleaned_data.get("variants") or "").splitlines(), start=1):
            if not line.strip():
                continue
            parts = _split(line)
            try:
                if len(parts) != 3:
                    raise InvalidInput(_("write name, exposures, conversions."))
                exposures, conversions = (whole_number(p, minimum=0, maximum=INT32_MAX) for p in parts[1:])
            except InvalidInput as exc:
                raise forms.ValidationError(
                    _("Line %(n)s: %(reason)s") % {"n": number, "reason": exc}
                ) from exc
            if conversions > exposures:
                raise forms.ValidationError(_("Line %(n)s: conversions exceed exposures.") % {"n": number})
            variants.append({"name": parts[0], "exposures": exposures, "conversions": conversions})
        if len(variants) < 2:
            raise forms.ValidationError(_("An A/B test needs at least two variants."))
        if len({v["name"] for v in variants}) != len(variants):
            raise forms.ValidationError(_("Variant names must differ."))
        return variants


class VariantCountsForm(BootstrapFormMixin, forms.Form):
    exposures = forms.IntegerField(label=_("Exposures"), min_value=0, max_value=INT32_MAX)
    conversions = forms.IntegerField(label=_("Conversions"), min_value=0, max_value=INT32_MAX)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (data.get("conversions") or 0) > (data.get("exposures") or 0):
            self.add_error("conversions", _("Conversions cannot exceed exposures."))
        return data


class UtmForm(BootstrapFormMixin, forms.Form):
    campaign = forms.ModelChoiceField(
        label=_("Campaign"), queryset=Campaign.objects.none(), to_field_name="code"
    )
    url = forms.URLField(label=_("Address"), max_length=1000, assume_scheme="https")
    source = forms.CharField(
        label=_("Source"), max_length=100, help_text=_("e.g. wechat, douyin, newsletter")
    )
    medium = forms.CharField(label=_("Medium"), max_length=100, help_text=_("e.g. social, cpc, email"))
    utm_campaign = forms.CharField(
        label=_("Campaign value"),
        max_length=100,
        required=False,
        help_text=_("Defaults to the campaign's code."),
    )
    content = forms.CharField(label=_("Content"), max_length=100, required=False)
    term = forms.CharField(label=_("Term"), max_length=100, required=False)

    def __init__(self, *args: Any, campaigns: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = campaigns


class ReviewForm(BootstrapFormMixin, forms.Form):
    what_worked = forms.CharField(label=_("What worked"), widget=forms.Textarea(attrs={"rows": 4}))
    what_to_improve = forms.CharField(label=_("What to improve"), widget=forms.Textarea(attrs={"rows": 4}))


class CampaignFilterForm(BootstrapFormMixin, forms.Form):
    q = forms.CharField(label=_("Search"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *Campaign.Status.choices]
    )
    team = forms.ModelChoiceField(
        label=_("Team"), queryset=Team.objects.order_by("name"), required=False, empty_label=_("Any team")
    )
    channel = forms.CharField(label=_("Channel"), required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=DATE)
    date_to = forms.DateField(label=_("To"), required=False, widget=DATE)


ATTRIBUTION_MODEL_LABELS = {
    "first_touch": _("First touch"),
    "last_touch": _("Last touch"),
    "linear": _("Linear"),
    "position_based": _("Position based (40/20/40)"),
    "time_decay": _("Time decay"),
}


def _days_widget(maximum: int) -> forms.NumberInput:
    return forms.NumberInput(attrs={"min": 1, "max": maximum, "class": "form-control-sm"})


class AttributionForm(BootstrapFormMixin, forms.Form):
    """The attribution tab's parameters, read with the API's bounds; an empty one takes its default."""

    model = forms.ChoiceField(
        label=_("Model"),
        required=False,
        choices=list(ATTRIBUTION_MODEL_LABELS.items()),
        widget=forms.Select(attrs={"class": "form-select-sm"}),
    )
    lookback_days = forms.CharField(
        label=_("Lookback (days)"), required=False, widget=_days_widget(attribution.MAX_LOOKBACK_DAYS)
    )
    half_life_days = forms.CharField(
        label=_("Half-life (days)"),
        required=False,
        widget=_days_widget(attribution.MAX_HALF_LIFE_DAYS),
        help_text=_("Time decay only: a touch this many days older weighs half as much."),
    )

    defaults = {
        "model": "last_touch",
        "lookback_days": attribution.DEFAULT_LOOKBACK_DAYS,
        "half_life_days": attribution.DEFAULT_HALF_LIFE_DAYS,
    }

    def __init__(self, data: Any, **kwargs: Any) -> None:
        # the page opens with the defaults filled in; a parameter given is read as given
        filled = data.copy()
        for name, default in self.defaults.items():
            if not filled.get(name):
                filled[name] = str(default)
        super().__init__(filled, **kwargs)

    def clean_model(self) -> str:
        return self.cleaned_data.get("model") or "last_touch"

    def _days(self, name: str, default: int, maximum: int) -> int:
        raw = (self.cleaned_data.get(name) or "").strip()
        if not raw:
            return default
        try:
            return whole_number(raw, minimum=1, maximum=maximum)
        except InvalidInput as exc:
            raise exc.as_form_error() from exc

    def clean_lookback_days(self) -> int:
        return self._days("lookback_days", attribution.DEFAULT_LOOKBACK_DAYS, attribution.MAX_LOOKBACK_DAYS)

    def clean_half_life_days(self) -> int:
        return self._days(
            "half_life_days", attribution.DEFAULT_HALF_LIFE_DAYS, attribution.MAX_HALF_LIFE_DAYS
        )
