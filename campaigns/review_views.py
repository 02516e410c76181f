"""The review tab's actions: save the review, publish it to the knowledge base."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns import forms, selectors, services
from campaigns.views import _detail_url


@login_required
@require_POST
def review_save(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    form = forms.ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write what worked and what to improve."))
        return redirect(_detail_url(campaign, "review"))
    services.review_save(campaign=campaign, by=request.user, **form.cleaned_data)
    messages.success(request, _("Review saved; the figures are frozen as of now."))
    return redirect(_detail_url(campaign, "review"))


@login_required
@require_POST
def review_publish(request: HttpRequest, code: str) -> HttpResponse:
    campaign = selectors.campaign_get_for_user(user=request.user, code=code)
    article = services.review_publish(campaign=campaign, by=request.user)
    # The article starts as a draft (the knowledge base's review workflow): say so, and open it.
    messages.success(
        request,
        _(
            "The retrospective is saved as a draft article in the knowledge base. Check it, then submit it "
            "for review: it is published once approved."
        ),
    )
    return redirect(article.get_absolute_url())
