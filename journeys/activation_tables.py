"""Audience activation tables (docs/journeys.md, "Audience activation"): schedules that sync a tag's or a
campaign audience's members to a destination, the log of each sync with its batches, and the baseline a
delta sync is computed against. Registered through journeys.models (re-imported at its end)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class SyncMode(models.TextChoices):
    DELTA = "delta", _("Delta (entered / exited)")
    SNAPSHOT = "snapshot", _("Full snapshot")


class ActivationSchedule(models.Model):
    """A tag or a campaign audience synced to a destination after each build, hourly or daily at a time."""

    class Cadence(models.TextChoices):
        AFTER_BUILD = "after_build", _("After each build")
        HOURLY = "hourly", _("Hourly")
        DAILY = "daily", _("Daily")

    destination = models.ForeignKey(
        "journeys.Destination",
        verbose_name=_("destination"),
        on_delete=models.CASCADE,
        related_name="schedules",
    )
    tag = models.ForeignKey(
        "crm_tags.Tag",
        verbose_name=_("tag"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    mode = models.CharField(_("mode"), max_length=10, choices=SyncMode.choices, default=SyncMode.DELTA)
    purpose = models.CharField(_("consent purpose"), max_length=32, blank=True, default="")
    cadence = models.CharField(_("cadence"), max_length=12, choices=Cadence.choices)
    # daily: the time of day in the company's time zone (TIME_ZONE)
    at = models.TimeField(_("at"), null=True, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["destination", "id"]
        verbose_name = _("activation schedule")
        verbose_name_plural = _("activation schedules")
        constraints = [
            models.CheckConstraint(
                condition=Q(tag__isnull=False, campaign__isnull=True)
                | Q(tag__isnull=True, campaign__isnull=False),
                name="journeys_schedule_one_audience",
            )
        ]
        indexes = [models.Index(fields=["cadence", "tag"], name="journeys_schedule_cadence")]


class SyncRun(models.Model):
    """One sync of an audience to a destination (the sync log): what was sent and skipped, how long it took,
    its error; a failed one is retried in place (its batches keep their bodies and keys)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Origin(models.TextChoices):
        API = "api", _("API")
        PAGE = "page", _("Page")
        SCHEDULE = "schedule", _("Schedule")
        BUILD = "build", _("After a build")

    destination = models.ForeignKey(
        "journeys.Destination", verbose_name=_("destination"), on_delete=models.CASCADE, related_name="syncs"
    )
    schedule = models.ForeignKey(
        ActivationSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    tag = models.ForeignKey(
        "crm_tags.Tag", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # what the delta baseline is kept under: "tag:<id>:<purpose>" or "campaign:<id>:<purpose>"
    audience = models.CharField(max_length=80)
    audience_label = models.CharField(_("audience"), max_length=200)
    mode = models.CharField(_("mode"), max_length=10, choices=SyncMode.choices)
    purpose = models.CharField(_("consent purpose"), max_length=32, blank=True, default="")
    origin = models.CharField(_("origin"), max_length=10, choices=Origin.choices, default=Origin.API)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    staged = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    members = models.PositiveIntegerField(_("members"), default=0)
    entered = models.PositiveIntegerField(_("entered"), default=0)
    exited = models.PositiveIntegerField(_("exited"), default=0)
    sent = models.PositiveIntegerField(_("sent"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    batches = models.PositiveIntegerField(_("batches"), default=0)
    seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    # codes, statuses and paths only: never a customer's value
    error = models.CharField(_("error"), max_length=500, blank=True, default="")
    file_path = models.CharField(max_length=500, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audience sync")
        verbose_name_plural = _("audience syncs")
        indexes = [
            models.Index(fields=["destination", "-created_at"], name="journeys_sync_destination"),
            models.Index(fields=["status", "-created_at"], name="journeys_sync_status"),
            # the open run of a stream (one at a time): queued, running or failed awaiting its retry
            models.Index(
                fields=["destination", "audience"],
                condition=Q(status__in=["queued", "running", "failed"]),
                name="journeys_sync_open",
            ),
        ]


class SyncBatch(models.Model):
    """One webhook request of a sync: its body (and so its signature and Idempotency-Key) fixed when made,
    re-sent only while it has no 2xx answer; the body is cleared once delivered."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="requests")
    number = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=64, unique=True)
    body = models.TextField()
    items = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="journeys_syncbatch_number")]


class SyncMember(models.Model):
    """A run's staged set (its members, or its entered / exited), kept until the run succeeds and moves the
    baseline; deleted then."""

    class Change(models.TextChoices):
        MEMBER = "member", _("Member")
        ENTERED = "entered", _("Entered")
        EXITED = "exited", _("Exited")

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(
        "crm_tags.Customer", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    change = models.CharField(max_length=8, choices=Change.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "customer"], name="journeys_syncmember_once")]


class SyncBaseline(models.Model):
    """Who a destination holds of an audience after its last successful sync: a delta is computed against it,
    and it moves only when a sync succeeds."""

    destination = models.ForeignKey(
        "journeys.Destination", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    audience = models.CharField(max_length=80)
    customer = models.ForeignKey(
        "crm_tags.Customer", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["destination", "audience", "customer"], name="journeys_syncbaseline_member"
            )
        ]
