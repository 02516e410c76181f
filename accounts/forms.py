from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiToken, User
from config.forms import BootstrapFormMixin


class LoginForm(BootstrapFormMixin, AuthenticationForm):
    pass


class PasswordChange(BootstrapFormMixin, PasswordChangeForm):
    pass


class PreferencesForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "email", "language", "timezone", "is_available"]


class ApiTokenCreateForm(BootstrapFormMixin, forms.Form):
    """A new API token; the current password is asked again (a borrowed session must not mint tokens)."""

    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What the token is for."))
    scope = forms.ChoiceField(label=_("Scope"), choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    password = forms.CharField(label=_("Your password"), strip=False, widget=forms.PasswordInput)

    def __init__(self, *args, request: HttpRequest, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        # through authenticate(), so the sign-in throttle and lockout count these attempts too
        user = authenticate(self.request, username=self.request.user.get_username(), password=password)
        if user is None or user.pk != self.request.user.pk:
            raise forms.ValidationError(
                _("Your password was entered incorrectly."), code="password_incorrect"
            )
        return password
