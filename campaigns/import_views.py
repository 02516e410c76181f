"""CSV imports from the campaign page: daily metrics (with rows to confirm), touchpoints, conversions."""

import io
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns import forms, permissions, selectors, services
from campaigns.models import Campaign
from campaigns.views import _detail_url
from config.csv_import import ImportRejected


def _import(request: HttpRequest, code: str, importer: Any, tab: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    if not permissions.can_edit_campaign(request.user, campaign):
        raise PermissionDenied(_("You cannot change this campaign."))
    form = forms.UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Choose a CSV file to import."))
        return redirect(_detail_url(campaign, tab))
    try:
        count = importer(campaign=campaign, upload=form.cleaned_data["file"], by=request.user)
    except ImportRejected as exc:
        return _import_rejected(request, campaign, exc, tab)
    messages.success(request, _("%(count)s row(s) imported.") % {"count": count})
    return redirect(_detail_url(campaign, tab))


def _import_rejected(request: HttpRequest, campaign: Campaign, exc: ImportRejected, tab: str) -> HttpResponse:
    context = {
        "nav_active": "campaigns",
        "campaign": campaign,
        "errors": exc.errors,
        "total": exc.total,
        "tab": tab,
    }
    return render(request, "campaigns/import_errors.html", context, status=400)


# A metrics file with rows to confirm is carried to the confirm step signed (not stored): what is confirmed
# is exactly the file that was checked, by the same person for the same campaign, within the hour.
PENDING_SALT = "campaigns.metrics_import.pending"
PENDING_MAX_AGE = 3600
PENDING_MAX_CHARS = 2 * 1024 * 1024  # a bigger file is chosen again on the confirm step


def _pending_sign(campaign: Campaign, user: Any, upload: Any) -> str:
    upload.seek(0)
    text = upload.read().decode("utf-8-sig")  # the import has read it as UTF-8 already
    payload = {"campaign": campaign.pk, "user": user.pk, "csv": text}
    signed = signing.dumps(payload, salt=PENDING_SALT, compress=True)
    return signed if len(signed) <= PENDING_MAX_CHARS else ""


def _pending_open(token: str, campaign: Campaign, user: Any) -> io.StringIO | None:
    """The file a confirm step carries, or None when it is not this person's for this campaign, or stale."""
    try:
        payload = signing.loads(token, salt=PENDING_SALT, max_age=PENDING_MAX_AGE)
    except signing.BadSignature:
        return None
    if payload.get("campaign") != campaign.pk or payload.get("user") != user.pk:
        return None
    return io.StringIO(payload["csv"])


@login_required
@require_POST
def metrics_import(request: HttpRequest, code: str) -> HttpResponse:
    """Import daily metrics; rows that look wrong (more clicks than impressions, days to come) are shown
    for the person to confirm before anything is written."""
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    if not permissions.can_edit_campaign(request.user, campaign):
        raise PermissionDenied(_("You cannot change this campaign."))
    pending = request.POST.get("pending", "")
    if pending:
        upload = _pending_open(pending, campaign, request.user)
        if upload is None:
            messages.error(request, _("This confirmation has expired: import the file again."))
            return redirect(_detail_url(campaign, "figures"))
    else:
        form = forms.UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            messages.error(request, _("Choose a CSV file to import."))
            return redirect(_detail_url(campaign, "figures"))
        upload = form.cleaned_data["file"]
    confirm = request.POST.get("confirm") == "1"
    try:
        count = services.metrics_import(campaign=campaign, upload=upload, by=request.user, confirm=confirm)
    except ImportRejected as exc:
        return _import_rejected(request, campaign, exc, "figures")
    except services.ImportNeedsConfirmation as exc:
        context = {
            "nav_active": "campaigns",
            "campaign": campaign,
            "warnings": exc.warnings,
            "total": exc.total,
            "pending": pending or _pending_sign(campaign, request.user, upload),
            "upload_form": forms.UploadForm(),
        }
        return render(request, "campaigns/import_confirm.html", context)
    messages.success(request, _("%(count)s row(s) imported.") % {"count": count})
    return redirect(_detail_url(campaign, "figures"))


@login_required
@require_POST
def touchpoints_import(request: HttpRequest, code: str) -> HttpResponse:
    return _import(request, code, services.touchpoints_import, "attribution")


@login_required
@require_POST
def conversions_import(request: HttpRequest, code: str) -> HttpResponse:
    return _import(request, code, services.conversions_import, "attribution")
