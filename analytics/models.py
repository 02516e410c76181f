"""Report jobs (CSV/XLSX exports run on Celery) and scheduled e-mail reports with their delivery log."""

import datetime as dt

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from config.db_router import REPLICA_ALIAS, ReadSource


class ReportKind(models.TextChoices):
    """What a report job exports."""

    TICKETS = "tickets", _("Tickets")
    SLA_BREACHES = "sla_breaches", _("SLA breaches")
    CAMPAIGN_METRICS = "campaign_metrics", _("Campaign metrics")
    TAG_MEMBERS = "tag_members", _("Tag members")
    CUSTOMERS = "customers", _("Customers")


class ReportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX"


class ReportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class DataSource(models.TextChoices):
    """Which database a finished report's rows were read from (config/db_router.py)."""

    PRIMARY = "primary", _("Primary")
    REPLICA = "replica", _("Replica")


class ReportJob(models.Model):
    """One export: queued → running → done | failed | cancelled, written by a Celery task with progress
    and a heartbeat."""

    Kind = ReportKind
    Format = ReportFormat
    Status = ReportStatus
    Source = DataSource

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_jobs")
    kind = models.CharField(_("report"), max_length=20, choices=Kind.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    format = models.CharField(_("format"), max_length=4, choices=Format.choices, default=Format.CSV)
    # sha256 of owner, kind, normalised params and format: the same request while one is active joins it.
    dedupe_key = models.CharField(max_length=64)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress %"), default=0)
    rows = models.PositiveBigIntegerField(_("rows written"), default=0)
    total_rows = models.PositiveBigIntegerField(null=True, blank=True)
    truncated = models.BooleanField(_("cut at the spreadsheet's row limit"), default=False)
    file = models.FileField(max_length=300, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when the job is done: the time its rows are current as of (the replica's replay point, or when
    # the primary was read), where they were read, and how far behind the replica was (null: the primary).
    data_as_of = models.DateTimeField(_("data as of"), null=True, blank=True)
    data_source = models.CharField(_("data source"), max_length=10, choices=Source.choices, blank=True)
    replica_lag_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("report job")
        verbose_name_plural = _("report jobs")
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=Q(status__in=["queued", "running"]),
                name="reportjob_one_active_per_key",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="reportjob_progress_le_100"),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="reportjob_owner_created"),
            models.Index(fields=["status", "heartbeat_at"], name="reportjob_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}.{self.format} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def data_read(self) -> ReadSource | None:
        """Where and as of when the finished job's rows were read; None until it is done."""
        if not self.data_source or self.data_as_of is None:
            return None
        if self.data_source != self.Source.REPLICA:
            return ReadSource(DEFAULT_DB_ALIAS, checked_at=self.data_as_of)
        lag = self.replica_lag_seconds or 0.0
        # ReadSource.as_of() is its check time less the lag: the check time that gives back data_as_of
        checked = self.data_as_of + dt.timedelta(seconds=lag)
        return ReadSource(REPLICA_ALIAS, lag_seconds=lag, checked_at=checked)


class ReportSubscription(models.Model):
    """A manager's weekly e-mail report (support operations or campaigns)."""

    class Kind(models.TextChoices):
        SUPPORT_WEEKLY = "support_weekly", _("Weekly support report")
        CAMPAIGN_WEEKLY = "campaign_weekly", _("Weekly campaign report")

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_subscriptions"
    )
    kind = models.CharField(_("report"), max_length=20, choices=Kind.choices)
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices, default=Weekday.MONDAY)
    hour = models.PositiveSmallIntegerField(_("hour (your time zone)"), default=8)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sent_at = models.DateTimeField(_("last sent"), null=True, blank=True)

    class Meta:
        ordering = ["kind", "id"]
        verbose_name = _("report subscription")
        verbose_name_plural = _("report subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["owner", "kind"], name="reportsub_owner_kind"),
            models.CheckConstraint(condition=Q(hour__lte=23), name="reportsub_hour_0_23"),
        ]
        indexes = [models.Index(fields=["active", "weekday"], name="reportsub_active_weekday")]

    def __str__(self) -> str:
        return f"{self.owner_id} {self.kind}"


class ReportDelivery(models.Model):
    """One attempt to e-mail a scheduled report: sent, or failed with the reason (never silent)."""

    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    subscription = models.ForeignKey(ReportSubscription, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("to"))
    recipient = models.CharField(_("recipient"), max_length=254, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("attempted"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("report delivery")
        verbose_name_plural = _("report deliveries")
        indexes = [models.Index(fields=["subscription", "-created_at"], name="reportdelivery_sub_created")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.status} {self.created_at:%Y-%m-%d}"


# Rollups (see analytics.rollups): delta rows written by Postgres triggers; readers sum them.


class TicketDayDimensions(models.Model):
    """What both ticket rollups are grouped by: a day and the dashboards' ticket filters."""

    day = models.DateField()
    team_id = models.BigIntegerField(null=True)
    urgency = models.CharField(max_length=20)
    type = models.CharField(max_length=30)
    channel = models.CharField(max_length=20)
    campaign_id = models.BigIntegerField(null=True)

    class Meta:
        abstract = True


class TicketCreatedDay(TicketDayDimensions):
    """Tickets by created day (rollup time zone): opened, and SLA targets decided by their timestamps."""

    opened = models.BigIntegerField(default=0)
    responded = models.BigIntegerField(default=0)  # with a first response
    fr_met = models.BigIntegerField(default=0)
    fr_missed = models.BigIntegerField(default=0)
    res_met = models.BigIntegerField(default=0)
    res_missed = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day"], name="analytics_tcd_day")]


class TicketResolvedDay(TicketDayDimensions):
    """Tickets by resolved day (rollup time zone): closed, and resolved within the resolution target."""

    closed = models.BigIntegerField(default=0)
    in_time = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day"], name="analytics_trd_day")]


class MetricChannelDay(models.Model):
    """Campaign metrics summed per (date, channel)."""

    date = models.DateField()
    channel = models.CharField(max_length=40)
    spend = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    leads = models.BigIntegerField(default=0)
    conversions = models.BigIntegerField(default=0)
    n = models.BigIntegerField(default=0)  # metric rows summed

    class Meta:
        indexes = [models.Index(fields=["date", "channel"], name="analytics_mcd_date")]


class MetricCampaignMonth(models.Model):
    """Campaign metrics summed per (month, campaign, channel)."""

    month = models.DateField()
    campaign_id = models.BigIntegerField()
    channel = models.CharField(max_length=40)
    spend = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    leads = models.BigIntegerField(default=0)
    conversions = models.BigIntegerField(default=0)
    n = models.BigIntegerField(default=0)  # metric rows summed

    class Meta:
        indexes = [
            models.Index(fields=["month", "campaign_id"], name="analytics_mcm_month"),
            models.Index(fields=["campaign_id", "month"], name="analytics_mcm_campaign"),
        ]


class TagDay(models.Model):
    """Tag membership changes per (day in the rollup time zone, tag)."""

    day = models.DateField()
    tag_id = models.BigIntegerField()
    entered = models.BigIntegerField(default=0)
    exited = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "tag_id"], name="analytics_tagday_day")]


class CustomerOrderMonth(models.Model):
    """A customer had at least one order in this month (rollup time zone)."""

    customer_id = models.BigIntegerField()
    month = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer_id", "month"], name="analytics_com_unique")]


class CohortCell(models.Model):
    """Customers by signup day and source channel with an order in `month` (NULL: all of them)."""

    signup_day = models.DateField()
    channel = models.CharField(max_length=64, null=True)
    month = models.DateField(null=True)
    customers = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["signup_day"], name="analytics_cohortcell_day")]


class RollupState(models.Model):
    """Watermarks and settings of the rollups (time zone, events id watermark, last refresh)."""

    key = models.CharField(max_length=40, primary_key=True)
    value = models.TextField()
    updated_at = models.DateTimeField()
