from django.apps import AppConfig


class CrmTagsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "crm_tags"
