from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_role_groups(sender: AppConfig, **kwargs) -> None:
    # The data migration makes them; after a test flush (or a manual delete) this puts them back.
    from accounts.services import role_groups_ensure

    role_groups_ensure()


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from accounts import (
            backends,  # noqa: F401 - connects the access-cache invalidation signals
            login_throttle,  # noqa: F401 - counts failed sign-ins per address
            oidc,  # noqa: F401 - the single sign-on settings check; a sign-in forgets the provider's 2FA
            tokens,  # noqa: F401 - revokes API tokens on password change, deactivation
            two_factor,  # noqa: F401 - remembers at sign-in whether a code is due
            user_sessions,  # noqa: F401 - records sessions; ends them on password change, deactivation
        )

        post_migrate.connect(_ensure_role_groups, sender=self)
