"""Personal-data pages: the person's requests, the access log (HTML + htmx, thin)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from privacy import permissions
from privacy.models import PrivacyRequest


@login_required
@require_GET
def requests(request: HttpRequest) -> HttpResponse:
    """The person's requests (export, erase) with their status and due dates: managers."""
    if not permissions.can_view_requests(request.user):
        raise PermissionDenied
    items = PrivacyRequest.objects.select_related("requested_by", "approved_by").order_by("-created_at")[:200]
    return render(request, "privacy/requests.html", {"nav_active": "privacy", "items": items})
