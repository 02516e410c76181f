"""Personal data: attribute keys marked personal, consent per purpose, the log of unmasked reads, and
the person's requests (export, erase)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class PersonalAttributeKey(models.Model):
    """A free-attribute key (`attributes.<key>`) an admin marked personal, beside the built-in ones."""

    key = models.CharField(_("attribute key"), max_length=64, unique=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]
        verbose_name = _("personal attribute key")
        verbose_name_plural = _("personal attribute keys")

    def __str__(self) -> str:
        return self.key


class Purpose(models.TextChoices):
    MARKETING_EMAIL = "marketing_email", _("Marketing e-mail")
    MARKETING_SMS = "marketing_sms", _("Marketing SMS")
    MARKETING_PUSH = "marketing_push", _("Marketing push")
    PERSONALISATION = "personalisation", _("Personalisation")
    ANALYTICS = "analytics", _("Analytics")


class ConsentState(models.TextChoices):
    GRANTED = "granted", _("Granted")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    UNKNOWN = "unknown", _("Unknown")


class Consent(models.Model):
    """A customer's current consent for one purpose (no row: unknown)."""

    customer = models.ForeignKey(
        "crm_tags.Customer", on_delete=models.CASCADE, related_name="consents", db_index=False
    )
    purpose = models.CharField(_("purpose"), max_length=32, choices=Purpose.choices)
    state = models.CharField(_("state"), max_length=16, choices=ConsentState.choices)
    source = models.CharField(_("source"), max_length=64, blank=True)
    at = models.DateTimeField(_("since"))

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(fields=["customer", "purpose"], name="privacy_consent_customer")
        ]
        indexes = [
            # the few who withdrew personalisation: every tag build and audience count anti-joins them
            models.Index(
                fields=["customer"],
                name="privacy_consent_no_personal",
                condition=models.Q(purpose="personalisation", state="withdrawn"),
            ),
            models.Index(fields=["purpose", "state", "customer"], name="privacy_consent_purpose"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.purpose}={self.state}"


class ConsentChange(models.Model):
    """History: a customer's consent for a purpose went from one state to another."""

    customer = models.ForeignKey(
        "crm_tags.Customer", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    purpose = models.CharField(_("purpose"), max_length=32, choices=Purpose.choices)
    old_state = models.CharField(_("before"), max_length=16, choices=ConsentState.choices)
    new_state = models.CharField(_("after"), max_length=16, choices=ConsentState.choices)
    source = models.CharField(_("source"), max_length=64, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(_("when"))

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("consent change")
        verbose_name_plural = _("consent changes")
        indexes = [models.Index(fields=["customer", "-at"], name="privacy_consentchange_cust")]


class UnmaskedAccess(models.Model):
    """Someone with view_pii saw personal values unmasked: who, when, which customer or which export,
    how many rows."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Customer page")
        CUSTOMER_LIST = "customer_list", _("Customer list")
        TAG_MEMBERS = "tag_members", _("Tag members")
        PREVIEW = "preview", _("Rule preview")
        EXPORT = "export", _("Export")
        REPORT = "report", _("Report file")
        RULE = "rule", _("Rule versions")
        PRIVACY_EXPORT = "privacy_export", _("Personal data export")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # the one customer seen, when it was one (erasing the person unlinks it)
    customer = models.ForeignKey(
        "crm_tags.Customer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    rows = models.PositiveIntegerField(_("rows"), default=0)
    what = models.CharField(_("what"), max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("unmasked access")
        verbose_name_plural = _("unmasked accesses")
        indexes = [models.Index(fields=["customer", "-at"], name="privacy_access_customer")]


class PrivacyRequest(models.Model):
    """A person's request to get (export) or erase their data; an erasure needs a manager's approval."""

    class Kind(models.TextChoices):
        EXPORT = "export", _("Export")
        ERASE = "erase", _("Erase")

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", _("Pending approval")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    customer = models.ForeignKey(
        "crm_tags.Customer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    # the external id asked for; cleared when the person is erased (the report keeps counts, not values)
    subject = models.CharField(_("customer"), max_length=64, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    due_at = models.DateTimeField(_("due"))
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    report = models.JSONField(_("report"), default=dict, blank=True)
    file = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(_("filed at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("personal data request")
        verbose_name_plural = _("personal data requests")
        indexes = [models.Index(fields=["status", "due_at"], name="privacy_request_status_due")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"
