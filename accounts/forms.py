from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiToken, SecurityPolicy, User
from config.forms import BootstrapFormMixin


class LoginForm(BootstrapFormMixin, AuthenticationForm):
    pass


class PasswordChange(BootstrapFormMixin, PasswordChangeForm):
    pass


class PreferencesForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "email", "language", "timezone", "is_available"]


class CurrentPasswordMixin:
    """A `password` field holding the signed-in person's current password (a borrowed session must not
    change how its owner signs in), checked through authenticate() so the throttles count it."""

    def __init__(self, *args, request: HttpRequest, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        user = authenticate(self.request, username=self.request.user.get_username(), password=password)
        if user is None or user.pk != self.request.user.pk:
            raise forms.ValidationError(
                _("Your password was entered incorrectly."), code="password_incorrect"
            )
        return password


class ApiTokenCreateForm(CurrentPasswordMixin, BootstrapFormMixin, forms.Form):
    """A new API token; the current password is asked again (a borrowed session must not mint tokens)."""

    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What the token is for."))
    scope = forms.ChoiceField(label=_("Scope"), choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    password = forms.CharField(label=_("Your password"), strip=False, widget=forms.PasswordInput)


def _code_field(help_text: str) -> forms.CharField:
    return forms.CharField(
        label=_("Code"),
        max_length=24,
        help_text=help_text,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false", "size": 24}
        ),
    )


class TwoFactorCodeForm(BootstrapFormMixin, forms.Form):
    """The code asked for after the password: from the authenticator app, or a recovery code."""

    code = _code_field(_("The six digits your authenticator app shows, or one of your recovery codes."))


class TwoFactorSetupForm(CurrentPasswordMixin, BootstrapFormMixin, forms.Form):
    code = _code_field(_("The six digits the app shows after you added the account."))
    password = forms.CharField(label=_("Your password"), strip=False, widget=forms.PasswordInput)


class TwoFactorDisableForm(CurrentPasswordMixin, BootstrapFormMixin, forms.Form):
    password = forms.CharField(label=_("Your password"), strip=False, widget=forms.PasswordInput)
    code = forms.CharField(
        label=_("Code"),
        max_length=24,
        help_text=_("From your authenticator app, or a recovery code."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )


class PasswordConfirmForm(CurrentPasswordMixin, BootstrapFormMixin, forms.Form):
    password = forms.CharField(label=_("Your password"), strip=False, widget=forms.PasswordInput)


class SecurityPolicyForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = SecurityPolicy
        fields = ["two_factor_for_staff"]
