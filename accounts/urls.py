from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import oidc_views, views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sso/login/", oidc_views.OidcLoginView.as_view(), name="oidc_login"),
    path("sso/callback/", oidc_views.OidcCallbackView.as_view(), name="oidc_callback"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("language/", views.set_language, name="set_language"),
    path("preferences/", views.preferences, name="preferences"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_mark_read, name="notifications_mark_read"),
    path("tokens/", views.api_tokens, name="api_tokens"),
    path("tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
    path("two-factor/", views.two_factor_manage, name="two_factor"),
    path("two-factor/setup/", views.two_factor_setup, name="two_factor_setup"),
    path("two-factor/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("two-factor/recovery-codes/", views.recovery_codes_regenerate, name="recovery_codes_regenerate"),
    path("two-factor/disable/", views.two_factor_disable, name="two_factor_disable"),
    path("security/", views.security_policy, name="security_policy"),
    path("security/two-factor/<int:user_id>/reset/", views.two_factor_reset, name="two_factor_reset"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/<int:session_id>/revoke/", views.session_revoke, name="session_revoke"),
    path("sessions/revoke-others/", views.sessions_revoke_others, name="sessions_revoke_others"),
]
