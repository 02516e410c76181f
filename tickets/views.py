from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts import roles


@login_required
def my_requests(request: HttpRequest) -> HttpResponse:
    return render(request, "tickets/my_requests.html", {"nav_active": "requests"})


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    if not roles.is_agent(request.user):
        raise PermissionDenied
    return render(request, "tickets/queue.html", {"nav_active": "queue"})
