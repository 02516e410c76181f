"""The global search page (the top bar's box): a request's key opens that request; anything else lists
what matches, grouped."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from privacy.personal_data import can_see
from search.selectors import global_search, search_query
from tickets.permissions import can_work
from tickets.selectors import ticket_key_for_user


@login_required
@require_GET
@never_cache  # customers' values may show unmasked to a viewer with view_pii: no copy kept anywhere
def index(request: HttpRequest) -> HttpResponse:
    text = search_query(request.GET.get("q"))
    key = ticket_key_for_user(user=request.user, text=text) if text else None
    if key is not None:
        return redirect("tickets:detail", key=key)
    # "see all requests": the queue (every status) for support staff, the team's list for everyone else
    if can_work(request.user):
        requests_url = reverse("tickets:queue") + "?" + urlencode({"status": "all", "q": text})
    else:
        requests_url = reverse("tickets:my_requests") + "?" + urlencode({"q": text})
    context = {
        "global_q": text,
        "results": global_search(user=request.user, text=text),
        "requests_url": requests_url,
        "can_view_pii": can_see(request.user),
    }
    return render(request, "search/results.html", context)
