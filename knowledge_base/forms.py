"""Forms for writing articles."""

from django import forms
from django.utils.translation import gettext_lazy as _

from config.concurrency import VersionedFormMixin
from config.forms import BootstrapFormMixin
from knowledge_base.models import Article, Category


class ArticleForm(VersionedFormMixin, BootstrapFormMixin, forms.ModelForm):
    """Title, summary, Markdown body, kind, language, category and comma-separated tags (and the
    hidden version the editor started from)."""

    tags = forms.CharField(
        label=_("Tags"), required=False, help_text=_("Separate tags with commas."), max_length=400
    )

    class Meta:
        model = Article
        fields = ["title", "summary", "kind", "language", "category", "body", "tags"]
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 2}),
            "body": forms.Textarea(attrs={"rows": 16, "class": "font-monospace", "data-markdown-source": ""}),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.select_related("parent").order_by(
            "parent__position", "position", "name"
        )
        if self.instance.pk:
            self.initial["tags"] = ", ".join(self.instance.tags)

    def clean_tags(self) -> list[str]:
        raw = self.cleaned_data.get("tags") or ""
        return [t.strip()[:40] for t in raw.replace("，", ",").split(",") if t.strip()]

    def service_fields(self) -> dict:
        """The cleaned values in the shape the services take."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class SendBackForm(BootstrapFormMixin, forms.Form):
    note = forms.CharField(
        label=_("What needs to change"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )
