from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts import roles


@login_required
def index(request: HttpRequest) -> HttpResponse:
    if not roles.can_view_dashboards(request.user):
        raise PermissionDenied
    return render(request, "analytics/index.html", {"nav_active": "dashboards"})
