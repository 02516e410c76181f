from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm

from accounts.models import User
from config.forms import BootstrapFormMixin


class LoginForm(BootstrapFormMixin, AuthenticationForm):
    pass


class PasswordChange(BootstrapFormMixin, PasswordChangeForm):
    pass


class PreferencesForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "email", "language", "timezone", "is_available"]
