from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts import oidc, roles, two_factor, user_sessions
from accounts.forms import (
    ApiTokenCreateForm,
    LoginForm,
    PasswordChange,
    PasswordConfirmForm,
    PreferencesForm,
    SecurityPolicyForm,
    TwoFactorCodeForm,
    TwoFactorDisableForm,
    TwoFactorSetupForm,
)
from accounts.models import User
from accounts.selectors import (
    api_tokens_active,
    notifications_shown_to,
    sessions_active,
    staff_two_factor_status,
)
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

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        # "Sign in with <provider>" beside the password form, only while single sign-on is on
        context["sso_provider_name"] = oidc.provider_name() if oidc.oidc_enabled() else None
        return context


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
    items = notifications_shown_to(user=request.user)
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


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # a secret or recovery codes on the page
    return response


def _code_refused(form: TwoFactorCodeForm, exc: two_factor.TwoFactorError) -> int:
    form.add_error("code", str(exc))
    return 429 if exc.retry_after else 422


def _with_retry_after(response: HttpResponse, status: int, exc: Exception | None) -> HttpResponse:
    retry_after = getattr(exc, "retry_after", None)
    if status == 429 and retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@login_required
def two_factor_manage(request: HttpRequest) -> HttpResponse:
    """One's two-factor sign-in: whether it is on, recovery codes left; turn it on, renew codes, turn off."""
    user = request.user
    context = {
        "device": two_factor.totp_device_of(user),
        "codes_left": two_factor.recovery_codes_left(user),
        "required": two_factor.two_factor_required_for(user),
        "regenerate_form": PasswordConfirmForm(request=request),
        "disable_form": TwoFactorDisableForm(request=request),
    }
    return render(request, "accounts/two_factor.html", context)


@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app: a QR code and the secret as text, then a code from the app to confirm.
    The recovery codes are shown on the answer that confirms it, and never again."""
    device = two_factor.totp_enrolment_start(user=request.user)
    form = TwoFactorSetupForm(request.POST or None, request=request)
    status, error = 200, None
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = two_factor.totp_enrolment_confirm(
                user=request.user, device=device, code=form.cleaned_data["code"]
            )
        except two_factor.TwoFactorError as exc:
            status, error = _code_refused(form, exc), exc
        else:
            two_factor.session_verified(request, device)
            messages.success(request, _("Two-factor sign-in is on."))
            return _no_store(render(request, "accounts/recovery_codes.html", {"codes": codes, "fresh": True}))
    if form.errors and status == 200:
        status = 422
    context = {
        "form": form,
        "qr_svg": two_factor.totp_qr_svg(device),
        "secret": two_factor.totp_secret_text(device),
        "gated": getattr(request, "two_factor_gate", None) == two_factor.GATE_ENROL,
        "replacing": two_factor.two_factor_enabled(request.user),
    }
    response = render(request, "accounts/two_factor_setup.html", context, status=status)
    return _no_store(_with_retry_after(response, status, error))


@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a code from the authenticator app, or a recovery code."""
    target = _safe_next(request)
    if request.user.is_verified():
        return redirect(target)
    if not two_factor.two_factor_enabled(request.user):  # turned off in another session meanwhile
        request.session[two_factor.SESSION_ENROLLED_KEY] = False
        return redirect(target)
    form = TwoFactorCodeForm(request.POST or None)
    status, error = 200, None
    if request.method == "POST" and form.is_valid():
        try:
            verified = two_factor.two_factor_check(user=request.user, code=form.cleaned_data["code"])
        except two_factor.TwoFactorError as exc:
            status, error = _code_refused(form, exc), exc
        else:
            two_factor.session_verified(request, verified.device)
            if verified.recovery_code_used:
                messages.warning(
                    request,
                    _(
                        "You signed in with a recovery code; %(left)s are left. Renew them on the two-factor page."
                    )
                    % {"left": verified.recovery_codes_left},
                )
            return redirect(target)
    if form.errors and status == 200:
        status = 422
    context = {"form": form, "next": target}
    response = render(request, "accounts/two_factor_verify.html", context, status=status)
    return _with_retry_after(response, status, error)


@login_required
@require_POST
def recovery_codes_regenerate(request: HttpRequest) -> HttpResponse:
    form = PasswordConfirmForm(request.POST, request=request)
    if not form.is_valid():
        messages.error(request, _("Your password was entered incorrectly."))
        return redirect("accounts:two_factor")
    try:
        codes = two_factor.recovery_codes_regenerate(user=request.user)
    except two_factor.TwoFactorError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:two_factor")
    return _no_store(render(request, "accounts/recovery_codes.html", {"codes": codes, "fresh": False}))


@login_required
@require_POST
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    """Turn two-factor sign-in off: the password and a current code (or a recovery code) are asked."""
    form = TwoFactorDisableForm(request.POST, request=request)
    status, error = 422, None
    if form.is_valid():
        try:
            two_factor.two_factor_check(user=request.user, code=form.cleaned_data["code"])
        except two_factor.TwoFactorError as exc:
            status, error = _code_refused(form, exc), exc
        else:
            two_factor.two_factor_disable(user=request.user, by=request.user)
            request.session[two_factor.SESSION_ENROLLED_KEY] = False
            messages.success(request, _("Two-factor sign-in is off."))
            return redirect("accounts:two_factor")
    context = {
        "device": two_factor.totp_device_of(request.user),
        "codes_left": two_factor.recovery_codes_left(request.user),
        "required": two_factor.two_factor_required_for(request.user),
        "regenerate_form": PasswordConfirmForm(request=request),
        "disable_form": form,
    }
    response = render(request, "accounts/two_factor.html", context, status=status)
    return _with_retry_after(response, status, error)


@login_required
def security_policy(request: HttpRequest) -> HttpResponse:
    """Managers and admins: require two-factor sign-in of managers and admins; see who has it."""
    if not roles.can_edit_security_policy(request.user):
        raise PermissionDenied
    form = SecurityPolicyForm(request.POST or None, instance=two_factor.security_policy_get())
    if request.method == "POST" and form.is_valid():
        two_factor.security_policy_update(
            by=request.user, two_factor_for_staff=form.cleaned_data["two_factor_for_staff"]
        )
        messages.success(request, _("The security policy was saved."))
        return redirect("accounts:security_policy")
    context = {
        "form": form,
        "forced": settings.TWO_FACTOR_REQUIRED_FOR_STAFF,
        "staff": staff_two_factor_status(),
        "nav_active": "security",
    }
    return render(request, "accounts/security_policy.html", context, status=422 if form.errors else 200)


@login_required
@require_POST
def two_factor_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    """A manager or admin removes someone's authenticator (lost phone); they set up a new one."""
    person = get_object_or_404(User, pk=user_id)
    if person.pk == request.user.pk or not roles.can_reset_two_factor_of(request.user, person):
        raise PermissionDenied
    two_factor.two_factor_disable(user=person, by=request.user)
    user_sessions.sessions_end_all(user=person)
    messages.success(request, _("Two-factor sign-in of %(name)s was reset.") % {"name": person})
    return redirect("accounts:security_policy")


@login_required
def sessions(request: HttpRequest) -> HttpResponse:
    """One's signed-in sessions: device, address, last seen; sign out one, or all but this one."""
    current = request.session.session_key
    rows = [
        {
            "session": s,
            "device": user_sessions.device_label(s.user_agent),
            "current": s.session_key == current,
        }
        for s in sessions_active(user=request.user)
    ]
    return render(request, "accounts/sessions.html", {"rows": rows})


@login_required
@require_POST
def session_revoke(request: HttpRequest, session_id: int) -> HttpResponse:
    record = get_object_or_404(sessions_active(user=request.user), pk=session_id)
    if record.session_key == request.session.session_key:
        logout(request)
        return redirect(settings.LOGOUT_REDIRECT_URL)
    user_sessions.session_revoke(record=record, by=request.user)
    messages.success(request, _("That session was signed out."))
    return redirect("accounts:sessions")


@login_required
@require_POST
def sessions_revoke_others(request: HttpRequest) -> HttpResponse:
    ended = user_sessions.sessions_revoke_others(
        user=request.user, keep_session_key=request.session.session_key
    )
    messages.success(
        request,
        ngettext(
            "%(count)s other session was signed out.", "%(count)s other sessions were signed out.", ended
        )
        % {"count": ended},
    )
    return redirect("accounts:sessions")
