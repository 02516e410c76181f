"""The identity tables (issue 19): identifier kinds with their merge rules, the block list, each profile's
identifiers and the record of every merge (registered with crm_tags' models, importable from there)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from crm_tags.models import Customer

# --- identity (OneID) ------------------------------------------------------------------------------


class IdentifierKind(models.Model):
    """A kind of identifier a profile can carry: the built-in ones (e-mail, phone, WeChat openid and
    unionid, member number, external id) and the kinds an admin adds (normalised as plain text)."""

    slug = models.SlugField(_("kind"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    builtin = models.BooleanField(default=False)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("identifier kind")
        verbose_name_plural = _("identifier kinds")

    def __str__(self) -> str:
        return self.slug


class MergeRule(models.Model):
    """How one identifier kind links profiles: whether a shared value merges them, whether values are
    scoped by an app id (WeChat openid), and how many values of the kind one profile may hold."""

    kind = models.OneToOneField(IdentifierKind, on_delete=models.CASCADE, related_name="merge_rule")
    merges = models.BooleanField(_("merges profiles"), default=True)
    scoped_by_app = models.BooleanField(_("scoped by app id"), default=False)
    max_per_profile = models.PositiveSmallIntegerField(_("at most per profile"), null=True, blank=True)

    class Meta:
        verbose_name = _("merge rule")
        verbose_name_plural = _("merge rules")

    def __str__(self) -> str:
        return f"{self.kind_id} merges={self.merges} max={self.max_per_profile}"


class BlockedIdentifier(models.Model):
    """A junk value (`test@test.com`, `13800000000`, `null`) that never links or is stored; an empty
    kind blocks the value in every kind."""

    kind = models.CharField(_("kind"), max_length=32, blank=True, default="")
    value = models.CharField(_("value"), max_length=254)

    class Meta:
        verbose_name = _("blocked identifier")
        verbose_name_plural = _("blocked identifiers")
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="crm_blocked_kind_value")]

    def __str__(self) -> str:
        return f"{self.kind or '*'}:{self.value}"


class CustomerIdentifier(models.Model):
    """One normalised (kind, value) of a profile; a value belongs to at most one profile."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identifiers", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=32)
    value = models.CharField(_("value"), max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "value"]
        verbose_name = _("customer identifier")
        verbose_name_plural = _("customer identifiers")
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="crm_identifier_kind_value")]
        indexes = [models.Index(fields=["customer", "kind"], name="crm_identifier_customer")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class CustomerMerge(models.Model):
    """One profile merged into another: the loser's row as it was and what moved (row ids per table,
    consent before), so that an unmerge restores both profiles exactly."""

    survivor = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges", db_index=False)
    merged_external_id = models.CharField(_("merged external id"), max_length=64)
    merged_customer_id = models.BigIntegerField()
    # the loser's customer row (all columns) and everything that moved: {"events": [ids], ...}
    snapshot = models.JSONField(default=dict)
    moved = models.JSONField(default=dict)
    source = models.CharField(_("source"), max_length=32, default="manual")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(_("merged at"))
    unmerged_at = models.DateTimeField(_("unmerged at"), null=True, blank=True)
    unmerged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        indexes = [models.Index(fields=["survivor", "-at"], name="crm_merge_survivor_at")]

    def __str__(self) -> str:
        return f"{self.merged_external_id} → {self.survivor_id}"
