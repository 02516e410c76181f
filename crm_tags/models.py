"""Customers, their events, and tags computed from rules (or uploaded by hand)."""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils.translation import gettext_lazy as _

# The columns of a customer file, in order: what an import reads and what exports and reports write.
CUSTOMER_FILE_COLUMNS = (
    "external_id",
    "name",
    "email",
    "phone",
    "city",
    "gender",
    "birth_date",
    "signup_at",
    "source_channel",
)


class Customer(models.Model):
    """One person; optional contact fields are NULL (not "") when unknown, so `is_null` is exact."""

    external_id = models.CharField(_("external id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    email = models.CharField(_("email"), max_length=254, null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=32, null=True, blank=True)
    city = models.CharField(_("city"), max_length=100, null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=16, null=True, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    signup_at = models.DateTimeField(_("signup time"), null=True, blank=True)
    source_channel = models.CharField(_("source channel"), max_length=64, null=True, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [
            models.Index(fields=["city"], name="crm_customer_city"),
            models.Index(fields=["signup_at"], name="crm_customer_signup"),
            GinIndex(fields=["name"], name="crm_customer_name_trgm", opclasses=["gin_trgm_ops"]),
            GinIndex(fields=["email"], name="crm_customer_email_trgm", opclasses=["gin_trgm_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})" if self.name else self.external_id


class Event(models.Model):
    """Something a customer did: a page view, an order (with an amount), a redeemed coupon..."""

    # indexed by crm_event_cust_at (customer first); no separate FK index to maintain on loads
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events", db_index=False)
    event_type = models.CharField(_("event type"), max_length=64)
    occurred_at = models.DateTimeField(_("occurred at"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2, null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=64, blank=True, default="")
    # a database default too: a bulk import without extra columns leaves it out of its COPY
    properties = models.JSONField(
        _("properties"), default=dict, db_default=models.Value({}, models.JSONField()), blank=True
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            # Timeline of one customer, and per-customer windows in rule leaves.
            # (The event type is filtered, not indexed: a customer has a few dozen events, and
            # without it this index builds 29 % faster and is a third smaller on bulk loads.)
            models.Index(fields=["customer", "occurred_at"], name="crm_event_cust_at"),
            # Windowed rule leaves scan one type's window without touching the heap.
            models.Index(
                fields=["event_type", "occurred_at"],
                include=["customer_id", "amount"],
                name="crm_event_type_at_cover",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class CustomerEventTotal(models.Model):
    """Lifetime aggregates per customer and event type, kept exact in every import's transaction.

    All-time rule leaves read these instead of every event (falling back to the events of the
    customers whose last event is after `as_of`, so back-tests stay exact).
    """

    # indexed by the unique (customer, event_type): one index fewer to build on bulk loads
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    event_type = models.CharField(max_length=64)
    events = models.BigIntegerField(default=0)
    amount_count = models.BigIntegerField(default=0)
    amount_sum = models.DecimalField(max_digits=20, decimal_places=2, null=True)
    amount_min = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    amount_max = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        constraints = [
            # customer first: it serves a customer's lookups, and rule look-ups per candidate walk it
            # in customer order
            models.UniqueConstraint(fields=["customer", "event_type"], name="crm_total_customer_type")
        ]
        # finds the few customers whose events go past a back-test's as_of
        indexes = [models.Index(fields=["event_type", "last_at"], name="crm_total_type_last")]


class RankedCount(models.Model):
    """An (event type, k) pair whose ranks EventRank keeps, because a rule leaf "count ≥ k in the last
    N days" drives a statement with it. Registered (with every rank computed) in one transaction."""

    event_type = models.CharField(max_length=64)
    k = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event_type", "k"], name="crm_rankedcount_type_k")]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.k}"


class EventRank(models.Model):
    """The time of a customer's k-th most recent event of a type, for each registered (type, k) pair
    and each customer with at least k such events; exact in the transaction that writes the events
    (statement triggers, or the bulk import itself). With every event at or before as_of, "at least k
    events in (as_of − N days, as_of]" is "the k-th most recent is after as_of − N days": one range
    scan of the index that returns only the matches."""

    pk = models.CompositePrimaryKey("event_type", "customer", "k")
    event_type = models.CharField(max_length=64)
    k = models.PositiveSmallIntegerField()
    # no index of its own (one fewer to build on bulk loads): the key (type, customer, k) serves the
    # refreshes, and only a customer's deletion looks rows up by customer alone
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["event_type", "k", "occurred_at"], include=["customer_id"], name="crm_rank_type_k_at"
            )
        ]


class TagCategory(models.Model):
    """A branch of the tag tree (category → tag)."""

    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("tag category")
        verbose_name_plural = _("tag categories")

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A customer tag: computed by a rule (versions, gray release) or a manually uploaded list."""

    class Kind(models.TextChoices):
        RULE = "rule", _("Rule")
        MANUAL = "manual", _("Manual")

    class Schedule(models.TextChoices):
        NONE = "none", _("Only on publish and import")
        HOURLY = "hourly", _("Hourly")
        DAILY = "daily", _("Daily")

    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    category = models.ForeignKey(
        TagCategory,
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tags",
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.RULE)
    current_version = models.ForeignKey(
        "TagVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rollout_percent = models.PositiveSmallIntegerField(_("rollout %"), default=0)
    schedule = models.CharField(
        _("schedule"), max_length=10, choices=Schedule.choices, default=Schedule.HOURLY
    )
    members_count = models.PositiveIntegerField(default=0)
    last_built_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        indexes = [models.Index(fields=["category", "name"], name="crm_tag_category_name")]

    def __str__(self) -> str:
        return self.name


class TagVersion(models.Model):
    """One immutable rule definition of a tag; publishing points the tag at one of them."""

    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    depends_on = models.JSONField(default=list, help_text="slugs of the tags this rule reads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tag", "-number"]
        constraints = [models.UniqueConstraint(fields=["tag", "number"], name="crm_tagversion_number")]

    def __str__(self) -> str:
        return f"{self.tag.slug} v{self.number}"


class TagMembership(models.Model):
    """A customer currently in a tag, since when."""

    # Both covered by the unique (tag, customer) and the (customer, tag) indexes. No database key
    # checks: each one runs per row at commit and locks the referenced row (a write to its page and
    # the WAL); at ~6,000 entries the customer checks were 40 % of a build and the tag checks, once
    # those were gone, 15-20 %. The rows come from a build's statement over the customers table or from
    # an upload that looked the customers up, both holding the tag's row locked (select_for_update);
    # the app deletes customers only through the ORM, whose cascade removes their memberships, and
    # never deletes tags (a tag deletion must lock the tag's row first, as builds do).
    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, related_name="memberships", db_index=False, db_constraint=False
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="tag_memberships",
        db_index=False,
        db_constraint=False,
    )
    since = models.DateTimeField()

    class Meta:
        ordering = ["-since"]
        constraints = [
            models.UniqueConstraint(fields=["tag", "customer"], name="crm_membership_tag_customer")
        ]
        indexes = [models.Index(fields=["customer", "tag"], name="crm_membership_customer")]


class TagBuild(models.Model):
    """One recompute of a tag's membership: when, how long, what changed, and whether it failed."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        PUBLISH = "publish", _("Publish")
        ROLLBACK = "rollback", _("Rollback")
        SCHEDULE = "schedule", _("Schedule")
        IMPORT = "import", _("Import")
        MANUAL = "manual", _("Manual")
        UPLOAD = "upload", _("Upload")
        DEPENDENCY = "dependency", _("Dependency")

    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="builds")
    version = models.ForeignKey(
        TagVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rollout_percent = models.PositiveSmallIntegerField(default=100)
    as_of = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.MANUAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    entered = models.PositiveIntegerField(default=0)
    exited = models.PositiveIntegerField(default=0)
    members = models.PositiveIntegerField(default=0)
    # rule matches left out because the customer withdrew consent to personalisation
    excluded_by_consent = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tag", "-created_at"], name="crm_build_tag_created")]

    def __str__(self) -> str:
        return f"{self.tag.slug} build {self.pk} ({self.status})"


class TagBuildPart(models.Model):
    """One customer-id range [low, high) of a build fanned out over ranges (crm_tags/fanout.py)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    build = models.ForeignKey(TagBuild, on_delete=models.CASCADE, related_name="parts")
    number = models.PositiveSmallIntegerField(_("range"))
    low = models.BigIntegerField(_("from customer id"))
    high = models.BigIntegerField(_("to customer id (excluded)"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    matched = models.PositiveIntegerField(_("matched"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    seconds = models.FloatField(_("seconds"), null=True, blank=True)

    class Meta:
        ordering = ["build", "number"]
        verbose_name = _("build range")
        verbose_name_plural = _("build ranges")
        constraints = [models.UniqueConstraint(fields=["build", "number"], name="crm_buildpart_build_number")]

    def __str__(self) -> str:
        return f"build {self.build_id} range {self.number}"


class TagMembershipChange(models.Model):
    """History: a customer entered or exited a tag in a build (with the rule version)."""

    class Change(models.TextChoices):
        ENTERED = "entered", _("Entered")
        EXITED = "exited", _("Exited")
        ERASED = "erased", _("Erased")

    # Written only by a build's statements, which hold the tag and build rows locked and take the
    # customers from the membership rows they insert or delete: no database key checks (three per
    # entry at commit cost a build as much as all its other writes). The ORM's cascades keep it in
    # step on deletes.
    # Indexed by crm_history_tag_at and crm_history_customer_at. Not by build: nothing reads history by
    # build (builds are never deleted), and an index fewer is one insert fewer per entry of a build.
    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, related_name="history", db_index=False, db_constraint=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    change = models.CharField(max_length=8, choices=Change.choices)
    version = models.PositiveIntegerField(null=True, blank=True, help_text="rule version number")
    build = models.ForeignKey(
        TagBuild,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tag", "created_at"], name="crm_history_tag_at"),
            models.Index(fields=["customer", "created_at"], name="crm_history_customer_at"),
        ]


class ImportJob(models.Model):
    """A customers or events CSV uploaded in the browser and loaded by a Celery job: queued → running →
    done | rejected (bad rows: nothing written) | failed, with progress written while it runs."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        EVENTS = "events", _("Events")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    # the stored upload (under imports/), removed once the job ends
    file = models.FileField(max_length=300, blank=True)
    file_name = models.CharField(_("file"), max_length=200)
    size = models.PositiveBigIntegerField(_("bytes"), default=0)
    total_rows = models.PositiveBigIntegerField(null=True, blank=True)  # counted lines: an estimate
    rows_read = models.PositiveBigIntegerField(default=0)
    added = models.PositiveBigIntegerField(default=0)
    updated = models.PositiveBigIntegerField(default=0)
    unchanged = models.PositiveBigIntegerField(default=0)
    customers = models.PositiveBigIntegerField(default=0)
    # the bad rows ({"row", "column", "message"}: the first MAX_ERRORS) and how many there were
    errors = models.JSONField(default=list, blank=True)
    error_total = models.PositiveIntegerField(default=0)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="crm_import_owner_created"),
            models.Index(fields=["status", "heartbeat_at"], name="crm_import_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class ValueModelFit(models.Model):
    """One fit of the value models (BG/NBD and Gamma-Gamma) on the orders up to `as_of`; the newest is
    the one CustomerValue rows were computed with."""

    class TimeUnit(models.TextChoices):
        WEEKS = "weeks", _("weeks")
        DAYS = "days", _("days")

    as_of = models.DateField(_("as of"))
    time_unit = models.CharField(_("time unit"), max_length=5, choices=TimeUnit.choices)
    # {"bg_nbd": {r, alpha, a, b}, "gamma_gamma": {p, q, gamma}, "log_likelihood": ..., "order_event_type": ...}
    params = models.JSONField(_("parameters"), default=dict)
    customers = models.PositiveBigIntegerField(_("customers"), default=0)
    fitted_at = models.DateTimeField(_("fitted at"), auto_now_add=True)
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-fitted_at", "-id"]
        get_latest_by = ["fitted_at", "id"]

    def __str__(self) -> str:
        return f"value model as of {self.as_of} ({self.time_unit})"


class CustomerValue(models.Model):
    """A customer's computed value (RFM scores and segment, CLV, lead score) as of the last fit; written
    set-based for the whole base at once. NULL where the customer has no order by `as_of`."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="value", verbose_name=_("customer")
    )
    recency_score = models.PositiveSmallIntegerField(_("recency score"), null=True)
    frequency_score = models.PositiveSmallIntegerField(_("frequency score"), null=True)
    monetary_score = models.PositiveSmallIntegerField(_("monetary score"), null=True)
    segment = models.CharField(_("RFM segment"), max_length=32, null=True)
    expected_purchases_90d = models.FloatField(_("expected purchases in 90 days"), null=True)
    p_alive = models.FloatField(_("probability of being active"), null=True)
    expected_spend = models.FloatField(_("expected spend per order"), null=True)
    clv_12m = models.FloatField(_("12-month customer lifetime value"), null=True)
    lead_score = models.FloatField(_("lead score"), default=0)
    computed_at = models.DateTimeField(_("computed at"))
    as_of = models.DateField(_("as of"))

    class Meta:
        verbose_name = _("customer value")
        verbose_name_plural = _("customer values")

    def __str__(self) -> str:
        return f"value of customer {self.customer_id}"

    @property
    def segment_label(self) -> str:
        """The segment in words (the viewer's language)."""
        from crm_tags.value.rfm import SEGMENTS

        return str(SEGMENTS.get(self.segment, self.segment or ""))


class LeadScoreRule(models.Model):
    """Points a customer earns: per event of a type (decaying by half-life from the event's time to as_of),
    or once for matching an attribute condition (a rule-language attribute leaf)."""

    class Kind(models.TextChoices):
        EVENT = "event", _("per event")
        ATTRIBUTE = "attribute", _("attribute condition")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    event_type = models.CharField(_("event type"), max_length=64, blank=True, default="")
    condition = models.JSONField(_("condition"), null=True, blank=True)
    points = models.DecimalField(_("points"), max_digits=10, decimal_places=2)
    # NULL: no decay (an event counts its full points however old it is)
    half_life_days = models.PositiveIntegerField(_("half-life (days)"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("lead score rule")
        verbose_name_plural = _("lead score rules")

    def __str__(self) -> str:
        return self.name


# identity (OneID) and the value fit's purchase days, kept in their own modules; registered here with the
# app's models (and importable from here)
from crm_tags.identity_tables import (  # noqa: E402, F401
    BlockedIdentifier,
    CustomerIdentifier,
    CustomerMerge,
    IdentifierKind,
    MergeRule,
)
from crm_tags.value.tables import CustomerPurchaseDays, PurchaseDaysUpkeep  # noqa: E402, F401
