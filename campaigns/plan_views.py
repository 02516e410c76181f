"""The plan tab's actions (tasks) and the UTM builder: pages that write the campaign's plan."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from campaigns import forms, selectors, services
from campaigns.models import Campaign, CampaignTask
from campaigns.views import _detail_url, _tab_context

# Tasks -----------------------------------------------------------------------------------------


def _tasks_partial(
    request: HttpRequest, campaign: Campaign, form: Any = None, status: int = 200
) -> HttpResponse:
    context = _tab_context(request, campaign, "plan")
    if form is not None:
        context["task_form"] = form
    return render(request, "campaigns/partials/tab_plan.html", context, status=status)


@login_required
@require_POST
def task_add(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    form = forms.TaskForm(request.POST, campaign=campaign)
    if not form.is_valid():
        if request.htmx:
            # htmx swaps only 2xx answers: the form comes back with its errors under the fields.
            return _tasks_partial(request, campaign, form)
        messages.error(request, _("The task was not added: check the fields."))
        return redirect(_detail_url(campaign, "plan"))
    services.task_create(campaign=campaign, by=request.user, **form.cleaned_data)
    if request.htmx:
        return _tasks_partial(request, campaign)
    return redirect(_detail_url(campaign, "plan"))


@login_required
@require_POST
def task_toggle(request: HttpRequest, code: str, task_id: int) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    task = get_object_or_404(CampaignTask, pk=task_id, campaign=campaign)
    services.task_set_done(task=task, by=request.user, done=not task.done)
    if request.htmx:
        return _tasks_partial(request, campaign)
    return redirect(_detail_url(campaign, "plan"))


# UTM builder -----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def utm_builder(request: HttpRequest) -> HttpResponse:
    """Build UTM links for a campaign; the links are kept with the campaign."""
    campaigns = selectors.campaigns_for_user(user=request.user).order_by("-start_date")
    initial = {"campaign": request.GET.get("campaign")} if request.GET.get("campaign") else None
    form = forms.UtmForm(request.POST or None, campaigns=campaigns, initial=initial)
    link = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = dict(form.cleaned_data)
            campaign = data.pop("campaign")
            link = services.utm_link_create(campaign=campaign, by=request.user, **data)
        else:
            status = 422
    chosen = link.campaign if link else None
    context = {
        "nav_active": "campaigns",
        "form": form,
        "link": link,
        "recent": list(selectors.campaign_utm_links(campaign=chosen)[:20]) if chosen else [],
        "campaign": chosen,
    }
    return render(request, "campaigns/utm.html", context, status=status)
