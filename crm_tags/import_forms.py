"""The browser import's upload form (validation only; crm_tags.import_jobs does the work)."""

import os

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from config.forms import BootstrapFormMixin
from config.uploads import validate_upload
from crm_tags.models import ImportJob


class ImportUploadForm(BootstrapFormMixin, forms.Form):
    kind = forms.ChoiceField(label=_("What the file holds"), choices=ImportJob.Kind.choices)
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("UTF-8, with a header row; every row is checked and nothing is written if any is bad."),
    )

    def clean_file(self) -> UploadedFile:
        upload = self.cleaned_data["file"]
        if os.path.splitext(upload.name or "")[1].lower() != ".csv":
            raise forms.ValidationError(_("Upload a .csv file."), code="bad_type")
        validate_upload(upload, max_bytes=settings.IMPORT_MAX_BYTES)
        return upload
