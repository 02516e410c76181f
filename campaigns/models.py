"""Campaigns: the plan, its tasks, daily figures per channel, UTM links, A/B tests, attribution, review."""

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.concurrency import Versioned

code_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]*$",
    _("Use lower-case letters, digits, hyphens and underscores, starting with a letter or digit."),
)
channel_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]*$", _("Use lower-case letters, digits, dots, hyphens and underscores.")
)


class Campaign(Versioned):
    """A marketing campaign from plan to review."""

    unversioned_fields = frozenset({"budget_warned_80_at", "budget_warned_100_at"})

    class Status(models.TextChoices):
        PLANNING = "planning", _("Planning")
        APPROVED = "approved", _("Approved")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        REVIEWED = "reviewed", _("Reviewed")

    class IncludeMode(models.TextChoices):
        ANY = "any", _("any of the tags")
        ALL = "all", _("all of the tags")

    name = models.CharField(_("name"), max_length=200)
    code = models.CharField(
        _("code"),
        max_length=60,
        unique=True,
        validators=[code_validator],
        help_text=_("Unique; used in addresses and as the UTM campaign."),
    )
    objective = models.TextField(_("objective"), blank=True)
    kpi_targets = models.JSONField(
        _("KPI targets"),
        default=dict,
        blank=True,
        help_text=_('For example {"conversions": 5000, "roi": 1.5}.'),
    )
    channels = ArrayField(
        models.CharField(max_length=40, validators=[channel_validator]),
        verbose_name=_("channels"),
        default=list,
        blank=True,
    )
    budget = models.DecimalField(
        _("budget"), max_digits=14, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    start_date = models.DateField(_("start date"))
    end_date = models.DateField(_("end date"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="owned_campaigns",
    )
    team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team"), on_delete=models.PROTECT, related_name="campaigns"
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PLANNING)
    # Set when someone changes running/completed by hand: the beat task then leaves the status alone.
    status_manual = models.BooleanField(_("status set by hand"), default=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    audience_include = ArrayField(
        models.SlugField(max_length=100), verbose_name=_("tags to include"), default=list, blank=True
    )
    audience_include_mode = models.CharField(
        _("include mode"), max_length=3, choices=IncludeMode.choices, default=IncludeMode.ANY
    )
    audience_exclude = ArrayField(
        models.SlugField(max_length=100), verbose_name=_("tags to exclude"), default=list, blank=True
    )
    budget_warned_80_at = models.DateTimeField(null=True, blank=True, editable=False)
    budget_warned_100_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-start_date", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        indexes = [
            models.Index(fields=["team", "-start_date"], name="campaign_team_start"),
            models.Index(fields=["status", "-start_date"], name="campaign_status_start"),
            models.Index(fields=["start_date", "end_date"], name="campaign_dates"),
            models.Index(fields=["owner"], name="campaign_owner"),
            GinIndex(fields=["channels"], name="campaign_channels_gin"),
            GinIndex(fields=["name"], name="campaign_name_trgm", opclasses=["gin_trgm_ops"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__gte=models.F("start_date")), name="campaign_end_after_start"
            ),
            models.CheckConstraint(condition=models.Q(budget__gte=0), name="campaign_budget_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("campaigns:detail", kwargs={"code": self.code})


class CampaignTask(models.Model):
    """A piece of work in a campaign's plan."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(_("title"), max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="campaign_tasks",
    )
    due_date = models.DateField(_("due date"), null=True, blank=True)
    done = models.BooleanField(_("done"), default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["done", "due_date", "id"]
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        indexes = [models.Index(fields=["campaign", "done", "due_date"], name="ctask_campaign_due")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        return not self.done and self.due_date is not None and self.due_date < timezone.localdate()


class DailyMetric(models.Model):
    """One day of one channel's figures; re-importing the day replaces the row."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="daily_metrics")
    date = models.DateField(_("date"))
    channel = models.CharField(_("channel"), max_length=40)
    spend = models.DecimalField(_("spend"), max_digits=14, decimal_places=2, default=Decimal("0"))
    impressions = models.BigIntegerField(_("impressions"), default=0)
    clicks = models.BigIntegerField(_("clicks"), default=0)
    leads = models.BigIntegerField(_("leads"), default=0)
    conversions = models.BigIntegerField(_("conversions"), default=0)
    revenue = models.DecimalField(_("revenue"), max_digits=14, decimal_places=2, default=Decimal("0"))
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["date", "channel"]
        verbose_name = _("daily metric")
        verbose_name_plural = _("daily metrics")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "date", "channel"], name="dailymetric_campaign_day_channel"
            )
        ]
        indexes = [
            models.Index(fields=["date", "channel"], name="dailymetric_date_channel"),
            models.Index(fields=["channel", "date"], name="dailymetric_channel_date"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.date} {self.channel}"


class UtmLink(models.Model):
    """A tagged link built for a campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="utm_links")
    base_url = models.URLField(_("address"), max_length=1000)
    source = models.CharField(_("source"), max_length=100)
    medium = models.CharField(_("medium"), max_length=100)
    utm_campaign = models.CharField(_("campaign"), max_length=100)
    content = models.CharField(_("content"), max_length=100, blank=True)
    term = models.CharField(_("term"), max_length=100, blank=True)
    url = models.URLField(_("tagged link"), max_length=2000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["campaign", "-created_at"], name="utmlink_campaign_created")]

    def __str__(self) -> str:
        return self.url


class ABTest(models.Model):
    """An A/B (or A/B/n) test; the first variant is the control."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="ab_tests")
    name = models.CharField(_("name"), max_length=200)

    class Sequential(models.TextChoices):
        NONE = "", _("Fixed sample (judge once, at the planned sample)")
        MSPRT = "msprt", _("Sequential (mSPRT, always valid: may be checked at any time)")

    min_sample = models.PositiveIntegerField(
        _("minimum sample per variant"), default=1000, validators=[MinValueValidator(1)]
    )
    # The design, fixed when the test is created (campaigns/abtest.py reads it; docs/campaigns.md).
    planned_sample = models.PositiveIntegerField(
        _("planned sample per variant"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    baseline_rate = models.DecimalField(
        _("expected control conversion rate"),
        max_digits=7,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.000001")), MaxValueValidator(Decimal("0.999999"))],
    )
    sequential = models.CharField(
        _("sequential method"), max_length=10, choices=Sequential.choices, blank=True, default=""
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("A/B test")
        verbose_name_plural = _("A/B tests")
        indexes = [models.Index(fields=["campaign", "-created_at"], name="abtest_campaign_created")]

    def __str__(self) -> str:
        return self.name


class ABVariant(models.Model):
    test = models.ForeignKey(ABTest, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveSmallIntegerField(default=0)
    exposures = models.PositiveIntegerField(_("exposures"), default=0)
    conversions = models.PositiveIntegerField(_("conversions"), default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["test", "name"], name="abvariant_test_name"),
            models.CheckConstraint(
                condition=models.Q(conversions__lte=models.F("exposures")), name="abvariant_conv_le_exposures"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Touchpoint(models.Model):
    """A customer's contact with the campaign through one channel."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="touchpoints")
    customer_external_id = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    channel = models.CharField(max_length=40)
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(
                fields=["campaign", "customer_external_id", "occurred_at"], name="touch_campaign_cust_at"
            ),
            # a person's touchpoints across campaigns (their data export, their erasure)
            models.Index(fields=["customer_external_id"], name="touch_customer"),
            # retention deletes the oldest first, in batches
            models.Index(fields=["occurred_at"], name="touch_occurred"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_external_id} {self.channel} {self.occurred_at}"


class Conversion(models.Model):
    """A customer's conversion, credited to touchpoints by the attribution models."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="conversions")
    customer_external_id = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(
                fields=["campaign", "customer_external_id", "occurred_at"], name="conv_campaign_cust_at"
            ),
            models.Index(fields=["customer_external_id"], name="conv_customer"),
            models.Index(fields=["occurred_at"], name="conv_occurred"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_external_id} {self.occurred_at}"


class CampaignReview(models.Model):
    """The review (复盘) after completion, with the figures frozen when it was written."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="review")
    what_worked = models.TextField(_("what worked"))
    what_to_improve = models.TextField(_("what to improve"))
    figures = models.JSONField(_("figures at review time"), default=dict)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    kb_article_id = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")

    def __str__(self) -> str:
        return f"Review of {self.campaign_id}"
