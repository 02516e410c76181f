"""Journeys (a trigger, entry rules and a tree of steps), their enrolments and step runs, and the
destinations webhook actions deliver to (docs/journeys.md)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Journey(models.Model):
    """A named automation; what it does lives in its versions, the one that admits is `active_version`."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ARCHIVED = "archived", _("Archived")

    name = models.CharField(_("name"), max_length=200)
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="journeys",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    active_version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # the gray share admitted now (0-100): the entry's percent at activation, raised later by a manager
    percent = models.PositiveSmallIntegerField(_("gray share %"), default=0)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # the last trigger source already admitted: a tag build id (tag triggers) or an event id (event ones)
    trigger_cursor = models.BigIntegerField(default=0)
    # date and schedule triggers: the moment up to which their occurrences have been admitted
    trigger_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        indexes = [models.Index(fields=["status"], name="journey_status")]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """One definition of a journey; immutable once it has been activated (a change is a new version)."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    trigger = models.JSONField()
    entry = models.JSONField(default=dict)
    steps = models.JSONField(default=list)
    goal = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["journey", "-number"]
        constraints = [models.UniqueConstraint(fields=["journey", "number"], name="journey_version_number")]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            stored = JourneyVersion.objects.filter(pk=self.pk).values("activated_at").first()
            if stored is not None and stored["activated_at"] is not None:
                fields = kwargs.get("update_fields")
                if fields is None or set(fields) - {"activated_at"}:
                    raise ValidationError(
                        _("An activated journey version cannot change; make a new version.")
                    )
        super().save(*args, **kwargs)


class Enrolment(models.Model):
    """A customer walking one version of a journey; `next_at` is when the engine next looks at it."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        CONVERTED = "converted", _("Converted")
        EXITED = "exited", _("Exited")

    # No database FK on the engine's own high-volume links (here, StepRun's and Delivery's): Postgres checks
    # an FK with a trigger per inserted row, a third of writing a million enrolments (docs/journeys.md,
    # "Measured"). The engine writes them only from rows it has just read or locked, and deleting a journey
    # or an enrolment cascades through Django as before; the customer keeps its database FK.
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="enrolments", db_index=False, db_constraint=False
    )
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    customer = models.ForeignKey(
        "crm_tags.Customer", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # what admitted it: "b<build id>" (tag triggers), "e<event id>" (event triggers), "d<year>" (a date
    # trigger: the anniversary's year) or "s<YYYYMMDDTHHMM>" (a schedule's occurrence, UTC); unique per
    # journey and customer, so admitting the same source twice adds nobody
    trigger_ref = models.CharField(max_length=32)
    holdout = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    step = models.CharField(max_length=200, blank=True, default="")
    # when the current step (a wait) started; NULL until the step is first reached
    step_started_at = models.DateTimeField(null=True, blank=True)
    wait_deadline = models.DateTimeField(null=True, blank=True)
    # the event an until_event wait is waiting for ("" otherwise): an arriving event wakes it early
    wait_event = models.CharField(max_length=64, blank=True, default="")
    next_at = models.DateTimeField(null=True, blank=True)
    entered_at = models.DateTimeField()
    converted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["-entered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "customer", "trigger_ref"], name="journey_enrolment_source"
            )
        ]
        indexes = [
            # the tick's claim: only the due, active ones are in it (a waiting million costs one probe)
            models.Index(fields=["next_at"], condition=Q(state="active"), name="journey_enrolment_due"),
            models.Index(fields=["customer", "journey"], name="journey_enrolment_customer"),
            models.Index(fields=["journey", "state"], name="journey_enrolment_state"),
        ]

    def __str__(self) -> str:
        return f"enrolment {self.pk} of journey {self.journey_id}"


class StepRun(models.Model):
    """One step of one enrolment, run once: the unique key makes a retried batch add nothing."""

    class Outcome(models.TextChoices):
        PASSED = "passed", _("Passed")
        ACTED = "acted", _("Acted")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    enrolment = models.ForeignKey(
        Enrolment, on_delete=models.CASCADE, related_name="runs", db_index=False, db_constraint=False
    )
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    step = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    # codes and ids only (a reason, a path taken, a delivery id), never a customer's personal value
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["enrolment", "step"], name="journey_steprun_once")]
        indexes = [models.Index(fields=["journey", "step", "outcome"], name="journey_steprun_stats")]


class Destination(models.Model):
    """Where webhook actions (and later audience syncs) deliver: a URL signed with a secret, or a folder."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook")
        FILE = "file", _("File")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    url = models.URLField(_("URL"), max_length=500, blank=True, default="")
    # written, never shown back (API, admin and pages show only whether one is set)
    secret = models.CharField(max_length=200, blank=True, default="")
    folder = models.CharField(_("folder"), max_length=300, blank=True, default="")
    batch_size = models.PositiveIntegerField(_("batch size"), default=1)
    # the consent purpose each delivery needs ("" = none: the payload may then carry no personal value)
    purpose = models.CharField(_("consent purpose"), max_length=32, blank=True, default="")
    customer_facing = models.BooleanField(_("customer-facing"), default=False)
    # audience syncs: personal fields ("email", "phone") sent beside the external id; only with a purpose
    personal_fields = models.JSONField(_("personal fields sent"), default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("destination")
        verbose_name_plural = _("destinations")

    def __str__(self) -> str:
        return self.name


class EmailTemplate(models.Model):
    """An e-mail a journey sends; `texts` holds {language: {"subject", "body"}} (Django template syntax
    over `customer`)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    texts = models.JSONField(_("texts"), default=dict)
    purpose = models.CharField(max_length=32, default="marketing_email")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("e-mail template")
        verbose_name_plural = _("e-mail templates")

    def __str__(self) -> str:
        return self.name


class WebhookRequest(models.Model):
    """One POST to a destination carrying up to `batch_size` deliveries; its body (and so its signature
    and Idempotency-Key) is fixed when made, so every retry sends the same bytes."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        DEAD = "dead", _("Dead letter")

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="requests")
    idempotency_key = models.CharField(max_length=64, unique=True)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="journey_webhook_due"
            ),
            models.Index(fields=["status", "-created_at"], name="journey_webhook_status"),
        ]


class Delivery(models.Model):
    """One action's outgoing message (a webhook item or an e-mail), written in the step's transaction and
    sent after it commits; a webhook item is grouped into a WebhookRequest once, then retried with it."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook")
        EMAIL = "email", _("E-mail")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        # a webhook item: sent with its request, whose status is the item's (not written again per item
        # when the request is delivered: a million items would be rewritten); dead is written per item
        GROUPED = "grouped", _("In a request")
        SENT = "sent", _("Sent")
        DEAD = "dead", _("Dead letter")

    channel = models.CharField(max_length=8, choices=Channel.choices)
    # No index of its own on destination or template (an index is written with every one of a million
    # items; deleting a destination or a template is rare and may scan): items are found by request.
    destination = models.ForeignKey(
        Destination,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_constraint=False,
        db_index=False,
    )
    email_template = models.ForeignKey(
        EmailTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    request = models.ForeignKey(
        WebhookRequest,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="items",
        db_constraint=False,
    )
    enrolment = models.ForeignKey(
        Enrolment, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    step = models.CharField(max_length=200)
    idempotency_key = models.CharField(max_length=260)  # unique (Meta: one index, not unique=True's two)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = _("deliveries")
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="journey_delivery_key")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(channel="email", status="pending"),
                name="journey_delivery_email_due",
            ),
        ]


class ContactCount(models.Model):
    """How many customer-facing contacts a customer got on a channel on a day (company time zone), across
    every journey: the frequency cap reads and raises it in one statement."""

    customer = models.ForeignKey(
        "crm_tags.Customer", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    channel = models.CharField(max_length=32)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel", "day"], name="journey_contact_day")
        ]


class EngineCursor(models.Model):
    """A position the engine has processed up to (`events`: the last event id whose goals, waits and
    event triggers were applied)."""

    name = models.CharField(max_length=32, primary_key=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class DryRun(models.Model):
    """A back-test of a journey over a past period (journeys/dryrun.py), run by a Celery task: what it
    would have done, in the shape of its stats; nothing is sent and no enrolment is written."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="dry_runs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    period_from = models.DateTimeField()
    period_to = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)


# audience activation's tables live in their own module (docs/journeys.md, "Audience activation")
from journeys.activation_tables import (  # noqa: E402, F401
    ActivationSchedule,
    SyncBaseline,
    SyncBatch,
    SyncMember,
    SyncMode,
    SyncRun,
)
