"""Forms of the journey pages and the words of the journey builder (every code a definition stores
reaches the page as a translated label, so a marketer never types JSON)."""

import json
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from campaigns.selectors import campaigns_for_user
from crm_tags import rule_builder
from crm_tags.models import Tag
from journeys.builder import step_kind_choices, trigger_kind_choices, trigger_time_choices
from journeys.definition import TAG_TRIGGERS
from privacy import personal_data


def trigger_words(trigger: dict | None, tag_names: dict[str, str] | None = None) -> str:
    """A trigger in words: "Enters the tag VIP" (the tag's name when `tag_names` knows the slug)."""
    if not isinstance(trigger, dict):
        return ""
    kind = trigger.get("kind")
    tag = str(trigger.get("tag", ""))
    tag = (tag_names or {}).get(tag, tag)
    if kind == "tag_entered":
        return _("Enters the tag %(tag)s") % {"tag": tag}
    if kind == "tag_exited":
        return _("Leaves the tag %(tag)s") % {"tag": tag}
    if kind == "event":
        return _("An event “%(event)s” arrives") % {"event": trigger.get("event", "")}
    if kind == "date":
        attribute = trigger.get("attribute", "")
        attribute = (
            _("Birth date") if attribute == "birth_date" else str(attribute).removeprefix("attributes.")
        )
        words = {"attribute": attribute, "at": trigger.get("at", "")}
        if trigger.get("days_before"):
            words["n"] = trigger["days_before"]
            return _("%(n)s days before the anniversary of %(attribute)s, at %(at)s") % words
        if trigger.get("days_after"):
            words["n"] = trigger["days_after"]
            return _("%(n)s days after the anniversary of %(attribute)s, at %(at)s") % words
        return _("On the anniversary of %(attribute)s, at %(at)s") % words
    if kind == "schedule":
        return _("On a schedule over the tag %(tag)s") % {"tag": tag}
    return str(kind)


class JourneyCreateForm(forms.Form):
    """A new draft: its name, campaign and trigger; the steps are built on the journey's page. The trigger is
    checked by the definition's own validation (journeys/definition.py, through the create service): its
    errors come back on the field they name (`trigger_error_field`)."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    trigger_kind = forms.ChoiceField(label=gettext_lazy("Starts when a customer"))
    tag = forms.ChoiceField(label=gettext_lazy("Tag"), required=False)
    event = forms.ChoiceField(label=gettext_lazy("Event"), required=False)
    # a yearly date: which date, how many days before / after its anniversary, at what time of day
    date_attribute = forms.ChoiceField(label=gettext_lazy("Date"), required=False)
    attribute_key = forms.CharField(label=gettext_lazy("Detail key"), required=False)
    date_offset = forms.ChoiceField(label=gettext_lazy("When"), required=False)
    offset_days = forms.CharField(
        label=gettext_lazy("Days"), required=False, widget=forms.NumberInput(attrs={"min": 0})
    )
    at = forms.CharField(
        label=gettext_lazy("At (company time zone)"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
    )
    # a schedule over a tag's members: once at a moment, or every day / week at a time of day
    repeat = forms.ChoiceField(label=gettext_lazy("Repeat"), required=False)
    once_at = forms.CharField(
        label=gettext_lazy("On (company time zone)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    weekday = forms.ChoiceField(label=gettext_lazy("Weekday"), required=False)
    campaign = forms.ModelChoiceField(
        label=gettext_lazy("Campaign"), queryset=None, required=False, empty_label=gettext_lazy("(none)")
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = trigger_time_choices()  # the builder's words for the same choices
        self.fields["trigger_kind"].choices = trigger_kind_choices()
        self.fields["tag"].choices = [("", "—")] + list(
            Tag.objects.order_by("name").values_list("slug", "name")
        )
        self.fields["event"].choices = [("", "—")] + [
            list(p) for p in rule_builder.builder_labels(tags=[])["events"]
        ]
        self.fields["date_attribute"].choices = labels["dateAttributes"]
        self.fields["date_offset"].choices = labels["offsets"]
        self.fields["repeat"].choices = labels["repeats"]
        self.fields["weekday"].choices = [("", "—")] + [(str(n), day) for n, day in labels["weekdays"]]
        self.fields["campaign"].queryset = campaigns_for_user(user=user).order_by("name")
        for field in self.fields.values():
            field.widget.attrs["class"] = (
                "form-select"
                if isinstance(field, forms.ChoiceField | forms.ModelChoiceField)
                else "form-control"
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("trigger_kind")
        if kind in TAG_TRIGGERS and not data.get("tag"):
            self.add_error("tag", _("Pick the tag the customer enters or leaves."))
        if kind == "event" and not data.get("event"):
            self.add_error("event", _("Pick the event type."))
        return data

    def trigger(self) -> dict[str, Any]:
        """The trigger JSON as posted; the definition's validation judges it (nothing is checked twice)."""
        data = self.cleaned_data
        kind = data["trigger_kind"]
        if kind in TAG_TRIGGERS:
            return {"kind": kind, "tag": data["tag"]}
        if kind == "date":
            attribute = data.get("date_attribute") or ""
            if attribute == "attributes.":
                attribute += (data.get("attribute_key") or "").strip()
            trigger: dict[str, Any] = {"kind": kind, "attribute": attribute, "at": data.get("at") or ""}
            offset = data.get("date_offset")
            if offset in ("before", "after"):
                trigger[f"days_{offset}"] = _whole_or_text(data.get("offset_days"))
            return trigger
        if kind == "schedule":
            repeat = data.get("repeat") or "once"
            if repeat == "once":
                return {"kind": kind, "tag": data.get("tag") or "", "at": data.get("once_at") or ""}
            trigger = {
                "kind": kind,
                "tag": data.get("tag") or "",
                "every": repeat,
                "at": data.get("at") or "",
            }
            if repeat == "week" and data.get("weekday"):
                trigger["weekday"] = _whole_or_text(data["weekday"])
            return trigger
        return {"kind": kind, "event": data["event"]}

    def trigger_error_field(self, path: str) -> str | None:
        """The form field a refused trigger's error path names (None: the form as a whole)."""
        key = path.removeprefix("trigger.").split(".")[0] if path.startswith("trigger.") else ""
        kind = self.cleaned_data.get("trigger_kind")
        if key == "attribute":
            return (
                "attribute_key"
                if self.cleaned_data.get("date_attribute") == "attributes."
                else "date_attribute"
            )
        if key == "at" and kind == "schedule" and (self.cleaned_data.get("repeat") or "once") == "once":
            return "once_at"
        fields = {
            "kind": "trigger_kind",
            "tag": "tag",
            "event": "event",
            "days_before": "offset_days",
            "days_after": "offset_days",
            "at": "at",
            "every": "repeat",
            "weekday": "weekday",
        }
        return fields.get(key)


def _whole_or_text(value: Any) -> Any:
    """A whole number typed into a box, or the text as typed (the definition's validation names it)."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() else text


class DefinitionForm(forms.Form):
    """The builder's definition, posted by its script: `{trigger, entry, steps, goal}`."""

    definition = forms.CharField(widget=forms.HiddenInput)

    def clean_definition(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cleaned_data["definition"])
        except ValueError:
            raise forms.ValidationError(
                _("The journey could not be read; reload the page and try again.")
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("The journey could not be read; reload the page and try again."))
        return value


class ActivateForm(forms.Form):
    percent = forms.IntegerField(
        label=gettext_lazy("Share of customers, in percent"), min_value=0, max_value=100
    )


def step_kind_words() -> dict[str, str]:
    words = {code: label for code, label in step_kind_choices()}
    words |= {"split": _("Random split"), "touchpoint": _("Campaign touchpoint")}
    return words


def reason_words() -> dict[str, str]:
    """Why a step was skipped or failed, or why an enrolment ended, in words."""
    return {
        "campaign_missing": _("the journey's campaign is gone"),
        "dead_letter": _("the webhook failed every retry"),
        "destination_missing": _("the destination is gone"),
        "frequency_cap": _("the daily contact limit was reached"),
        "no_address": _("the customer has no address for it"),
        "no_consent": _("the customer has not consented"),
        "no_recipient": _("nobody to notify"),
        "tag_missing": _("the tag is gone"),
        "template_missing": _("the e-mail template is gone"),
        "ticket_refused": _("the request could not be created"),
        "exit_step": _("an exit step"),
        "left_tag": _("they left the tag"),
        "goal": _("they reached the goal"),
    }


def definition_for_viewer(definition: dict[str, Any], *, viewer: User) -> dict[str, Any]:
    """The definition with the literal values of personal conditions masked for a viewer without
    view_pii (entry condition and every branch's rule tree)."""
    shown = json.loads(json.dumps(definition))
    entry = shown.get("entry")
    if isinstance(entry, dict) and entry.get("condition"):
        entry["condition"] = personal_data.definition_for(entry["condition"], viewer=viewer)

    def walk(steps: Any) -> None:
        for step in steps if isinstance(steps, list) else []:
            if not isinstance(step, dict):
                continue
            branch = step.get("branch")
            if isinstance(branch, dict):
                if branch.get("if") is not None:
                    branch["if"] = personal_data.definition_for(branch["if"], viewer=viewer)
                walk(branch.get("then"))
                walk(branch.get("else"))
            walk(step.get("then"))
            walk(step.get("timeout"))
            for arm in step.get("split", []) if isinstance(step.get("split"), list) else []:
                if isinstance(arm, dict):
                    walk(arm.get("steps"))

    walk(shown.get("steps"))
    return shown
