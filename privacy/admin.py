from django.contrib import admin

from privacy import personal_data
from privacy.models import PersonalAttributeKey


@admin.register(PersonalAttributeKey)
class PersonalAttributeKeyAdmin(admin.ModelAdmin):
    list_display = ["key", "note", "created_at"]
    search_fields = ["key"]

    def save_model(self, request, obj, form, change) -> None:  # noqa: ANN001
        super().save_model(request, obj, form, change)
        personal_data.forget_attribute_keys()

    def delete_model(self, request, obj) -> None:  # noqa: ANN001
        super().delete_model(request, obj)
        personal_data.forget_attribute_keys()
