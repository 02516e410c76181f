from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import roles
from accounts.forms import ApiTokenCreateForm, LoginForm, PasswordChange, PreferencesForm
from accounts.selectors import api_tokens_active, notifications_for_user
from accounts.services import notification_mark_read
from accounts.tokens import api_token_issue, api_token_revoke


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each person to where their work is."""
    if roles.is_agent(request.user):
        return redirect("tickets:queue")
    return redirect("tickets:my_requests")


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    form_class = PasswordChange
    success_url = reverse_lazy("home")

    def form_valid(self, form: PasswordChange) -> HttpResponse:
        messages.success(self.request, _("Your password was changed."))
        return super().form_valid(form)


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or reverse("home")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return reverse("home")
    return target


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the interface language; remembered on the person's profile and in a cookie."""
    language = request.POST.get("language", "")
    response = HttpResponseRedirect(_safe_next(request))
    if language not in dict(settings.LANGUAGES):
        return response
    if request.user.is_authenticated and request.user.language != language:
        request.user.language = language
        request.user.save(update_fields=["language"])
    translation.activate(language)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
    )
    return response


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        response = redirect("accounts:preferences")
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        translation.activate(form.instance.language)
        messages.success(request, _("Preferences saved."))
        return response
    return render(request, "accounts/preferences.html", {"form": form}, status=422 if form.errors else 200)


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    items = notifications_for_user(user=request.user)[:100]
    return render(request, "accounts/notifications.html", {"notifications": items})


@login_required
@require_POST
def notifications_mark_read(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("id")
    notification_mark_read(user=request.user, notification_id=int(raw) if raw and raw.isdigit() else None)
    return redirect("accounts:notifications")


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """One's API tokens: the list, and a form that issues a new one (its key shown on this answer only)."""
    form = ApiTokenCreateForm(request.POST or None, request=request)
    issued = None
    if request.method == "POST" and form.is_valid():
        issued = api_token_issue(
            user=request.user, name=form.cleaned_data["name"], scope=form.cleaned_data["scope"]
        )
        form = ApiTokenCreateForm(request=request)
    context = {"form": form, "issued": issued, "tokens": api_tokens_active(owner=request.user)}
    status = 422 if form.errors else 200
    response = render(request, "accounts/api_tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may hold a key
    return response


@login_required
@require_POST
def api_token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    # one's own only (staff revoke others' tokens through the API, where they name the person)
    token = get_object_or_404(api_tokens_active(owner=request.user), pk=token_id)
    api_token_revoke(token=token, by=request.user)
    messages.success(request, _("The token was revoked."))
    return redirect("accounts:api_tokens")
