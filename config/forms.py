"""Form styling shared by every app: Bootstrap classes and invalid markers on every widget."""

from django import forms

from config.inputs import day_validator


class BootstrapFormMixin:
    """Give every widget its Bootstrap class, and mark invalid fields after validation."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, (forms.CheckboxInput, forms.RadioSelect, forms.CheckboxSelectMultiple)):
                css = "form-check-input" if isinstance(widget, forms.CheckboxInput) else ""
            elif isinstance(widget, (forms.Select, forms.SelectMultiple)):
                css = "form-select"
            else:
                css = "form-control"
            if css:
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def full_clean(self) -> None:
        # Safe by default: every date of every form lies in the days anyone may mean (config/inputs.py),
        # so arithmetic on it (a default range before it, a deadline after it) cannot overflow.
        for field in self.fields.values():
            if (
                isinstance(field, (forms.DateField, forms.DateTimeField))
                and day_validator not in field.validators
            ):
                field.validators.append(day_validator)
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()
