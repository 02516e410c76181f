"""The A/B tests tab's actions: add a test, enter a variant's counts, import them from CSV."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns import forms, selectors, services
from campaigns.import_views import _import
from campaigns.models import ABVariant
from campaigns.views import _detail_url


@login_required
@require_POST
def ab_test_add(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    form = forms.ABTestForm(request.POST)
    if form.is_valid():
        services.ab_test_create(campaign=campaign, by=request.user, **form.cleaned_data)
        messages.success(request, _("A/B test added."))
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect(_detail_url(campaign, "ab_tests"))


@login_required
@require_POST
def variant_update(request: HttpRequest, code: str, variant_id: int) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    variant = get_object_or_404(ABVariant, pk=variant_id, test__campaign=campaign)
    form = forms.VariantCountsForm(request.POST)
    if form.is_valid():
        services.ab_variant_update(variant=variant, by=request.user, **form.cleaned_data)
        messages.success(request, _("Counts saved."))
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect(_detail_url(campaign, "ab_tests"))


@login_required
@require_POST
def ab_variants_import(request: HttpRequest, code: str, test_id: int) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    test = selectors.ab_test_get(campaign=campaign, test_id=test_id)
    return _import(
        request,
        code,
        lambda campaign, upload, by: services.ab_variants_import(test=test, upload=upload, by=by),
        "ab_tests",
    )
