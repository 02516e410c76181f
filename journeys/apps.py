from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JourneysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "journeys"
    verbose_name = _("Journeys")

    def ready(self) -> None:
        from journeys import triggers

        triggers.connect_signals()

        from journeys.activation import schedules

        schedules.connect_signals()
