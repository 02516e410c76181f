"""The KPI targets form (issue 21): the campaign's owner or a manager sets a target per metric; the
figures tab compares them with the actuals (campaigns.kpi)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from campaigns import kpi, permissions, selectors


@login_required
@require_http_methods(["GET", "POST"])
def kpi_targets_edit(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    if not permissions.can_edit_kpi_targets(request.user, campaign):
        raise PermissionDenied(_("Only the campaign's owner or a manager changes its KPI targets."))
    errors: dict[str, str] = {}
    posted = None
    if request.method == "POST":
        posted = {metric: str(request.POST.get(f"target_{metric}", "")) for metric in kpi.METRICS}
        values, errors = kpi.kpi_targets_read(posted)
        if not errors:
            try:
                kpi.kpi_targets_set(campaign=campaign, by=request.user, targets=values)
            except DjangoValidationError as exc:
                errors = {"": " ".join(exc.messages)}
            else:
                messages.success(request, _("KPI targets saved."))
                return redirect(reverse("campaigns:detail", kwargs={"code": campaign.code}) + "?tab=figures")
    inputs = kpi.kpi_inputs(campaign.kpi_targets, posted)
    for item in inputs:
        item["error"] = errors.get(item["metric"], "")
    context = {
        "nav_active": "campaigns",
        "campaign": campaign,
        "inputs": inputs,
        "form_error": errors.get(""),
    }
    return render(request, "campaigns/kpi_edit.html", context, status=400 if errors else 200)
