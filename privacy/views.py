"""Pages of the person's requests (HTML, thin): the list, one request with its trail and report, filing
from a customer page, approving an erasure, downloading an export. Same services and selectors as the
API."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from privacy import permissions, rights, selectors
from privacy.api import export_file_response
from privacy.models import PrivacyRequest

PAGE_SIZE = 50

# The completion report's counts, in the order shown.
REPORT_LABELS = {
    "events": gettext_lazy("Events"),
    "event_totals": gettext_lazy("Event totals"),
    "event_ranks": gettext_lazy("Event ranks"),
    "tag_memberships": gettext_lazy("Tag memberships"),
    "tag_history": gettext_lazy("Tag history entries"),
    "event_properties": gettext_lazy("Event properties scrubbed"),
    "identifiers": gettext_lazy("Identifiers"),
    "merges": gettext_lazy("Merged profiles"),
    "customer_values": gettext_lazy("Customer values"),
    "purchase_days": gettext_lazy("Purchase days"),
    "rule_versions": gettext_lazy("Rule versions scrubbed"),
    "journey_enrolments": gettext_lazy("Journey enrolments"),
    "journey_contact_counts": gettext_lazy("Journey contact counts"),
    "sync_members": gettext_lazy("Audience sync members"),
    "sync_baselines": gettext_lazy("Audience sync baselines"),
    "webhook_requests": gettext_lazy("Webhook requests scrubbed"),
    "sync_batches": gettext_lazy("Unsent sync batches scrubbed"),
    "consents": gettext_lazy("Consents"),
    "consent_changes": gettext_lazy("Consent changes"),
    "touchpoints": gettext_lazy("Campaign touchpoints"),
    "conversions": gettext_lazy("Campaign conversions"),
    "order_months": gettext_lazy("Order months (dashboards)"),
    "access_log": gettext_lazy("Access log entries"),
    "audit_entries": gettext_lazy("Audit entries"),
    "requests": gettext_lazy("Personal data requests"),
    "export_files": gettext_lazy("Export files"),
    "personal_fields": gettext_lazy("Personal values"),
    "profile": gettext_lazy("Profile"),
    "bytes": gettext_lazy("File size (bytes)"),
}
TRAIL_LABELS = {
    "privacy.request_file": gettext_lazy("Filed"),
    "privacy.request_approve": gettext_lazy("Approved"),
    "privacy.request_done": gettext_lazy("Done"),
    "privacy.request_failed": gettext_lazy("Failed"),
}


class RequestFileForm(forms.Form):
    kind = forms.ChoiceField(choices=PrivacyRequest.Kind.choices)
    customer_external_id = forms.CharField(max_length=64)


def _mark_overdue(items: list[PrivacyRequest]) -> list[PrivacyRequest]:
    for req in items:
        req.overdue = selectors.request_is_overdue(req)
    return items


@login_required
@require_GET
def requests(request: HttpRequest) -> HttpResponse:
    """The person's requests (export, erase) with their status and due dates: managers."""
    page = Paginator(selectors.requests_for_user(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    _mark_overdue(page.object_list)
    return render(
        request, "privacy/requests.html", {"nav_active": "privacy", "page": page, "items": page.object_list}
    )


@login_required
@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One request: status, due date, its trail, the approval of a pending erasure, the completion report
    and, for an export, the download."""
    req = selectors.request_get_for_user(user=request.user, request_id=pk)
    _mark_overdue([req])
    trail = list(selectors.request_trail(req=req))
    for entry in trail:
        entry.label = TRAIL_LABELS.get(entry.action, entry.action)
    order = list(REPORT_LABELS)
    counts = sorted(
        (req.report or {}).items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)
    )
    report = [(REPORT_LABELS.get(key, key), value) for key, value in counts]
    context = {
        "nav_active": "privacy",
        "req": req,
        "trail": trail,
        "report": report,
        "may_approve": req.kind == PrivacyRequest.Kind.ERASE
        and req.status == PrivacyRequest.Status.PENDING_APPROVAL
        and permissions.can_approve_request(request.user),
        "may_download": selectors.export_downloadable(req, user=request.user),
    }
    return render(request, "privacy/requests_detail.html", context)


@login_required
@require_POST
def request_file(request: HttpRequest) -> HttpResponse:
    """File an export or erase request from a customer page, then show it."""
    form = RequestFileForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Choose export or erase, and a customer."))
    req = rights.request_file(by=request.user, **form.cleaned_data)
    if req.kind == PrivacyRequest.Kind.ERASE:
        messages.info(request, _("The erasure is filed; a manager must approve it before it runs."))
    else:
        messages.info(request, _("The export is being prepared."))
    return redirect("privacy:request_detail", pk=req.pk)


@login_required
@require_POST
def request_approve(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve a pending erasure (any manager), then show the request."""
    req = selectors.request_get_for_user(user=request.user, request_id=pk)
    try:
        rights.request_approve(request=req, by=request.user)
    except rights.RequestStateError as exc:
        messages.error(request, str(exc))
        return redirect("privacy:request_detail", pk=req.pk)
    messages.success(request, _("The erasure is approved and running."))
    return redirect("privacy:request_detail", pk=req.pk)


@login_required
@require_GET
def request_download(request: HttpRequest, pk: int) -> FileResponse:
    """A done export's file (managers who may see personal data; each download is logged)."""
    return export_file_response(*selectors.export_open_for_user(user=request.user, request_id=pk))
