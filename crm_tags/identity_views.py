"""Identity on pages (htmx, thin): a customer's identifiers and merge history with unmerge, and the list of
possible duplicates (same name, city and birth date, no shared identifier) to merge by hand."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from config.inputs import INT32_MAX
from crm_tags import permissions, selectors
from crm_tags.identity import MergeRefused, UnmergeRefused, customers_merge, customers_unmerge
from crm_tags.identity.selectors import identity_shown, possible_duplicates
from crm_tags.models import Customer


class UnmergeForm(forms.Form):
    merge_id = forms.IntegerField(min_value=1, max_value=INT32_MAX)


class MergeForm(forms.Form):
    into = forms.CharField(max_length=64)
    source = forms.CharField(max_length=64)


def _panel(request: HttpRequest, customer: Customer, *, error: str = "", status: int = 200) -> HttpResponse:
    identity_shown(customer, viewer=request.user)
    context = {
        "customer": customer,
        "can_merge": permissions.can_merge_customers(request.user),
        "error": error,
    }
    return render(request, "crm_tags/partials/identity_panel.html", context, status=status)


@login_required
@require_GET
def customer_identity(request: HttpRequest, external_id: str) -> HttpResponse:
    """htmx: the identifiers and merge history panel of a customer page (404 out of reach)."""
    customer = selectors.customer_get_for_user(user=request.user, external_id=external_id)
    return _panel(request, customer)


@login_required
@require_POST
def customer_unmerge(request: HttpRequest, external_id: str) -> HttpResponse:
    """Undo one merge into this customer (managers); answers the re-rendered panel."""
    customer = selectors.customer_get_for_user(user=request.user, external_id=external_id)
    if not permissions.can_merge_customers(request.user):
        raise PermissionDenied
    form = UnmergeForm(request.POST)
    if not form.is_valid():
        return _panel(request, customer, error=_("Give the merge id as a whole number."), status=422)
    try:
        restored = customers_unmerge(
            survivor=customer, merge_id=form.cleaned_data["merge_id"], by=request.user
        )
    except UnmergeRefused as exc:
        return _panel(request, customer, error=str(exc), status=422)
    message = _("%(external_id)s is a profile of its own again.") % {"external_id": restored.external_id}
    if not request.htmx:
        messages.success(request, message)
        return redirect("crm_tags:customer_detail", external_id=customer.external_id)
    return _panel(request, customer)


@login_required
@require_GET
def duplicates(request: HttpRequest) -> HttpResponse:
    """Possible duplicates for support staff; managers may merge them."""
    if not permissions.can_resolve_identifiers(request.user):
        raise PermissionDenied
    context = {
        "nav_active": "customers",
        "groups": possible_duplicates(viewer=request.user),
        "can_merge": permissions.can_merge_customers(request.user),
    }
    return render(request, "crm_tags/duplicates.html", context)


@login_required
@require_POST
def duplicates_merge(request: HttpRequest) -> HttpResponse:
    """Merge one profile of a group into another (managers), back to the list with the outcome."""
    if not permissions.can_merge_customers(request.user):
        raise PermissionDenied
    form = MergeForm(request.POST)
    into = loser = None
    if form.is_valid():
        into = Customer.objects.filter(external_id=form.cleaned_data["into"]).first()
        loser = Customer.objects.filter(external_id=form.cleaned_data["source"]).first()
    if into is None or loser is None:
        messages.error(request, _("Choose two customers that exist to merge."))
        return redirect("crm_tags:duplicates")
    try:
        customers_merge(survivor=into, loser=loser, by=request.user)
    except MergeRefused as exc:
        messages.error(request, str(exc))
        return redirect("crm_tags:duplicates")
    messages.success(
        request,
        _("%(source)s was merged into %(into)s.") % {"source": loser.external_id, "into": into.external_id},
    )
    return redirect("crm_tags:duplicates")
