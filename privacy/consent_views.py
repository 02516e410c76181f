"""The consent panel of a customer page (htmx, thin): states per purpose, the last changes, and for support
staff a form per purpose to record a new state."""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from privacy import consent, permissions
from privacy.models import ConsentState, Purpose

SOURCE_LABELS = {
    consent.SOURCE_API: gettext_lazy("API"),
    consent.SOURCE_WEB: gettext_lazy("Web"),
    consent.SOURCE_IMPORT: gettext_lazy("Import"),
}


class ConsentForm(forms.Form):
    """One field per purpose, each optional: a panel row posts only its own purpose."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for purpose, label in Purpose.choices:
            self.fields[purpose] = forms.ChoiceField(
                label=label, choices=ConsentState.choices, required=False
            )

    def states(self) -> dict[str, str]:
        return {purpose: state for purpose, state in self.cleaned_data.items() if state}


def _panel(
    request: HttpRequest, customer: Any, *, form: ConsentForm | None = None, status: int = 200
) -> HttpResponse:
    current = consent.consent_for(customer)["purposes"]
    states = dict(ConsentState.choices)
    rows = [
        {
            "purpose": purpose,
            "label": label,
            "state": current[purpose]["state"],
            "state_label": states.get(current[purpose]["state"], current[purpose]["state"]),
            "source": SOURCE_LABELS.get(current[purpose]["source"], current[purpose]["source"]),
            "at": current[purpose]["at"],
        }
        for purpose, label in Purpose.choices
    ]
    history = list(consent.consent_history(customer))
    for change in history:
        change.source_label = SOURCE_LABELS.get(change.source, change.source)
    context = {
        "customer": customer,
        "rows": rows,
        "state_choices": ConsentState.choices,
        "history": history,
        "can_edit": permissions.can_edit_consent(request.user),
        "form": form,
    }
    return render(request, "privacy/partials/consent_panel.html", context, status=status)


@login_required
@require_GET
def customer_consent(request: HttpRequest, external_id: str) -> HttpResponse:
    """htmx: the consent panel's content (404 for a customer out of reach)."""
    customer = consent.consent_customer_get(user=request.user, external_id=external_id)
    return _panel(request, customer)


@login_required
@require_POST
def customer_consent_set(request: HttpRequest, external_id: str) -> HttpResponse:
    """Record the posted states (source "web") and answer the re-rendered panel."""
    customer = consent.consent_customer_get(user=request.user, external_id=external_id)
    if not permissions.can_edit_consent(request.user):
        raise PermissionDenied
    form = ConsentForm(request.POST)
    if not form.is_valid():
        return _panel(request, customer, form=form, status=422)
    consent.consent_set(customer=customer, states=form.states(), source=consent.SOURCE_WEB, by=request.user)
    if not request.htmx:
        messages.success(request, _("Consent saved."))
        return redirect("crm_tags:customer_detail", external_id=customer.external_id)
    return _panel(request, customer)
