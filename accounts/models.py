from zoneinfo import available_timezones

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Team(models.Model):
    """A department: requesters see their own team's tickets and campaigns."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=100, blank=True)
    is_support = models.BooleanField(
        _("support team"), default=False, help_text=_("The marketing-tech support team works the queue.")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return f"{self.name_zh} / {self.name}" if self.name_zh else self.name


TIMEZONE_CHOICES = sorted((tz, tz) for tz in available_timezones() if "/" in tz and not tz.startswith("Etc/"))


class User(AbstractUser):
    """A person; the role is the group they are in (see accounts.roles)."""

    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.PROTECT, related_name="members"
    )
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default="zh-hans")
    timezone = models.CharField(
        _("time zone"), max_length=64, choices=TIMEZONE_CHOICES, default="Asia/Shanghai"
    )
    is_available = models.BooleanField(
        _("available for assignment"),
        default=True,
        help_text=_("Agents marked available take part in round-robin."),
    )
    display_name = models.CharField(_("display name"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        permissions = [
            ("view_pii", _("See customers' contact data unmasked and export it")),
            ("work_queue", _("Work the support queue (agent)")),
            ("manage_support", _("Approve plans, campaigns and full rollouts; edit SLA policies (manager)")),
            ("view_dashboards", _("Open the analytics dashboards")),
        ]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username


class Notification(models.Model):
    """An in-app notification; e-mail and chat copies are sent from Celery after commit."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    verb = models.CharField(max_length=64)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "read_at", "-created_at"], name="notif_recipient_unread")
        ]

    def __str__(self) -> str:
        return self.title


class AuditEntry(models.Model):
    """Who changed what, when, from what to what: one row per change that matters, for every app."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id", "-created_at"], name="audit_object")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id}"


class OutboxMessage(models.Model):
    """A background task that could not reach the broker; re-sent by the outbox flush when Redis is back."""

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    options = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.task_name


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored (the key is shown once); it expires and can be
    revoked, and every token of a person is revoked when their password changes or they are deactivated."""

    class Scope(models.TextChoices):
        READ = "read", _("Read only")
        WRITE = "write", _("Read and write")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    scope = models.CharField(_("scope"), max_length=10, choices=Scope.choices, default=Scope.WRITE)
    key_hash = models.CharField(max_length=64, unique=True)
    # The key's first characters, so a person can tell their tokens apart without the key itself.
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoke_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        indexes = [models.Index(fields=["user", "revoked_at", "expires_at"], name="apitoken_user_active")]

    def __str__(self) -> str:
        return f"{self.name or self.prefix} ({self.user_id})"
