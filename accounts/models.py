from zoneinfo import available_timezones

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin


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
    # What happened and its values (accounts/notification_kinds.py), rendered in each reader's language.
    # Empty for rows written before kinds existed: those show their stored title and body.
    kind = models.CharField(max_length=64, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    # The text in the site's language, for the admin and the team chat; readers see `shown_to(reader)`.
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

    def shown_to(self, reader: User) -> tuple[str, str]:
        """(title, body) in the reader's language and locale, customers' values masked for the reader."""
        if not self.kind:
            return self.title, self.body
        from accounts.notification_kinds import render

        shown = render(self.kind, self.params, reader=reader)
        return shown.title, shown.body


class AuditEntry(models.Model):
    """Who changed what, when, from what to what: one row per change that matters, for every app.

    Append-only and hash-chained (accounts/audit_chain.py, docs/security.md): the database computes
    `content_digest` at insert and links each committed entry to its predecessor (`seq`, `prev_hash`,
    `entry_hash`); its triggers refuse UPDATE and DELETE except the sanctioned redaction of an erasure.
    """

    # PROTECT: the chain covers the actor, so a person who acted is deactivated, never deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Written by the database's triggers only (whatever the application sends is overwritten).
    seq = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    entry_hash = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    content_digest = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    redacted_at = models.DateTimeField(null=True, blank=True, editable=False)
    redacted_by = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)

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


class AuditChainHead(models.Model):
    """The audit chain's last link (one row, kept by the sealing trigger): entries cut off the end of the
    chain are told by it, as the chain alone cannot show that its tail is missing."""

    seq = models.BigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.seq}:{self.entry_hash[:12]}"


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """A person's single-use recovery codes for two-factor sign-in (django-otp device). Only their SHA-256
    is stored: each code has about 80 random bits, so a copy of the database holds no usable code."""

    code_hashes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("recovery codes")
        verbose_name_plural = _("recovery codes")

    def verify_token(self, token: str) -> bool:
        from accounts.two_factor import recovery_code_hash

        allowed, _info = self.verify_is_allowed()
        if not allowed:
            return False
        digest = recovery_code_hash(token)
        if digest in self.code_hashes:
            self.code_hashes = [h for h in self.code_hashes if h != digest]
            self.throttle_reset(commit=False)
            self.save(
                update_fields=["code_hashes", "throttling_failure_timestamp", "throttling_failure_count"]
            )
            return True
        self.throttle_increment(commit=True)
        return False

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)


class SecurityPolicy(models.Model):
    """Sign-in rules a manager sets for everyone (one row; read through accounts.two_factor)."""

    two_factor_for_staff = models.BooleanField(
        _("require two-factor sign-in for managers and admins"),
        default=False,
        help_text=_("Managers and admins without an authenticator app are sent to set one up first."),
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("security policy")
        verbose_name_plural = _("security policy")

    def __str__(self) -> str:
        return "security policy"


class UserSession(models.Model):
    """One signed-in browser session of a person, as the sessions page lists it (accounts/user_sessions.py).
    The session itself lives in Django's session store; this row names it and says when it was last seen."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="web_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    user_agent = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [models.Index(fields=["user", "-last_seen_at"], name="usersession_user_seen")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.ip_address or ''}"


class OidcIdentity(models.Model):
    """A person's account at the single sign-on provider (accounts/oidc.py): the provider's `sub` is the
    link, never the e-mail address, which a provider may let its users change."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="oidcidentity_issuer_subject")
        ]
        verbose_name = _("single sign-on identity")
        verbose_name_plural = _("single sign-on identities")

    def __str__(self) -> str:
        return f"{self.issuer} {self.subject}"
