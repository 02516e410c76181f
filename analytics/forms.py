"""Page forms: start a report, subscribe to a weekly report."""

from django import forms
from django.utils.translation import gettext_lazy as _

from analytics.models import ReportJob, ReportSubscription
from analytics.reports import ReportParamsForm
from config.forms import BootstrapFormMixin


class ReportJobForm(BootstrapFormMixin, ReportParamsForm):
    """What to export and in which format; the rest are the report's parameters."""

    kind = forms.ChoiceField(label=_("Report"), choices=ReportJob.Kind.choices)
    format = forms.ChoiceField(
        label=_("Format"),
        choices=ReportJob.Format.choices,
        initial=ReportJob.Format.CSV,
        widget=forms.RadioSelect,
    )

    field_order = ["kind", "format", "date_from", "date_to", "channel", "campaign", "urgency", "tag"]

    def params(self) -> dict:
        """The report parameters (without kind and format), normalised like the API's."""
        params = self.normalised()
        params.pop("kind", None)
        params.pop("format", None)
        return params


class SubscriptionForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = ReportSubscription
        fields = ["kind", "weekday", "hour"]
        widgets = {"hour": forms.NumberInput(attrs={"min": 0, "max": 23})}
