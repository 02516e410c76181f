"""Writes for journeys and destinations: create (validated, audited), activate (approval above the gray
limit), pause; destinations and e-mail templates. The engine's writes are in engine.py and admission.py."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Team, User
from accounts.services import audit_record
from crm_tags.models import Event, Tag, TagBuild
from crm_tags.rules import RuleError
from journeys import definition, permissions
from journeys.definition import DefinitionInvalid
from journeys.models import Destination, EmailTemplate, Journey, JourneyVersion
from privacy import personal_data

log = logging.getLogger(__name__)


class JourneyStateError(ValueError):
    """A journey operation that its current status does not allow."""


def _context(*, has_campaign: bool, now: Any = None) -> definition.Context:
    tags = dict(Tag.objects.values_list("slug", "kind"))
    return definition.Context(
        has_campaign=has_campaign,
        now=now,
        tags=set(tags),
        manual_tags={slug for slug, kind in tags.items() if kind == Tag.Kind.MANUAL},
        destinations={d.pk: d for d in Destination.objects.all()},
        email_templates=set(EmailTemplate.objects.values_list("pk", flat=True)),
        teams=set(Team.objects.values_list("name", flat=True)),
        users=set(User.objects.filter(is_active=True).values_list("username", flat=True)),
    )


def _rule_trees(entry: Any, steps: Any) -> list[Any]:
    """Every rule tree of a (valid) definition: the entry condition and each branch's `if`."""
    trees = [entry["condition"]] if isinstance(entry, dict) and entry.get("condition") else []
    program = definition.program_of(steps)
    trees += [node.spec["branch"]["if"] for node in program.nodes.values() if node.kind == "branch"]
    return trees


def definition_check(
    *,
    trigger: Any,
    entry: Any,
    steps: Any,
    goal: Any,
    by: User | None,
    has_campaign: bool,
    written_at: Any = None,
) -> None:
    """Raise DefinitionInvalid (paths named) or PersonalRuleForbidden (a personal literal in a rule tree
    written by someone without view_pii). `written_at`: the definition is being written now (a one-off
    schedule must then lie in the future; at activation it is not checked again)."""
    errors, _program = definition.validate_definition(
        trigger=trigger,
        entry=entry,
        steps=steps,
        goal=goal,
        ctx=_context(has_campaign=has_campaign, now=written_at),
    )
    if errors:
        raise DefinitionInvalid(errors)
    if by is not None:
        for tree in _rule_trees(entry, steps):
            personal_data.check_rule_allowed(tree, viewer=by)


@transaction.atomic
def journey_create(
    *,
    by: User,
    name: str,
    trigger: Any,
    entry: Any = None,
    steps: Any = None,
    goal: Any = None,
    campaign: Any = None,
) -> Journey:
    """A draft journey with its first version (validated; audited)."""
    if not permissions.can_create_journey(by):
        raise PermissionDenied(_("You may not create journeys."))
    name = (name or "").strip()
    if not name:
        raise DefinitionInvalid([RuleError("name", _("is required"))])
    entry = entry if entry is not None else {}
    steps = steps if steps is not None else []
    definition_check(
        trigger=trigger,
        entry=entry,
        steps=steps,
        goal=goal,
        by=by,
        has_campaign=campaign is not None,
        written_at=timezone.now(),
    )
    journey = Journey.objects.create(name=name[:200], owner=by, team_id=by.team_id, campaign=campaign)
    version = JourneyVersion.objects.create(
        journey=journey, number=1, trigger=trigger, entry=entry, steps=steps, goal=goal, created_by=by
    )
    audit_record(
        actor=by,
        action="journey.create",
        obj=journey,
        changes={"name": journey.name, "version": version.number, "trigger": trigger.get("kind")},
    )
    return journey


@transaction.atomic
def journey_version_create(
    *, journey: Journey, by: User, trigger: Any, entry: Any = None, steps: Any = None, goal: Any = None
) -> JourneyVersion:
    """A new version of a journey (validated; audited). Versions are immutable once active: this one waits
    until the journey is activated again, and then admits new enrolments while those already walking keep
    the version they entered with."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if not permissions.can_edit_journey(by, journey):
        raise PermissionDenied(_("You may not change this journey."))
    entry = entry if entry is not None else {}
    steps = steps if steps is not None else []
    definition_check(
        trigger=trigger,
        entry=entry,
        steps=steps,
        goal=goal,
        by=by,
        has_campaign=journey.campaign_id is not None,
        written_at=timezone.now(),
    )
    number = (journey.versions.aggregate(m=Max("number"))["m"] or 0) + 1
    version = JourneyVersion.objects.create(
        journey=journey, number=number, trigger=trigger, entry=entry, steps=steps, goal=goal, created_by=by
    )
    journey.save(update_fields=["updated_at"])
    audit_record(
        actor=by,
        action="journey.version_create",
        obj=journey,
        changes={"version": number, "trigger": trigger.get("kind")},
    )
    return version


def latest_version(journey: Journey) -> JourneyVersion:
    return journey.versions.order_by("-number").first()


def _trigger_position(trigger: dict) -> int:
    """Where a trigger starts reading at activation: the tag's newest build, or the newest event (date and
    schedule triggers read from `trigger_at`, the activation's moment)."""
    if trigger["kind"] in definition.TIME_TRIGGERS:
        return 0
    if trigger["kind"] in definition.TAG_TRIGGERS:
        tag_id = Tag.objects.filter(slug=trigger["tag"]).values_list("pk", flat=True).first()
        return TagBuild.objects.filter(tag_id=tag_id).aggregate(m=Max("pk"))["m"] or 0
    return Event.objects.aggregate(m=Max("pk"))["m"] or 0


@transaction.atomic
def journey_activate(*, journey: Journey, by: User, percent: int | None = None) -> Journey:
    """Start (or resume) admitting with the latest version at `percent` % (default: the entry's percent).
    Above the gray limit a manager must do it, which records the approval. Raising the share of an active
    journey only adds people (the gray hash is stable)."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == Journey.Status.ARCHIVED:
        raise JourneyStateError(_("An archived journey cannot be activated."))
    version = latest_version(journey)
    if percent is None:
        percent = int(version.entry.get("percent", 100))
    if not permissions.can_activate_journey(by, journey, percent):
        raise PermissionDenied(
            _("Only a manager may activate a journey for more than %(n)d %% of its customers.")
            % {"n": permissions.GRAY_LIMIT}
        )
    # the trigger is re-validated: a tag or destination it names may have gone since it was drafted
    definition_check(
        trigger=version.trigger,
        entry=version.entry,
        steps=version.steps,
        goal=version.goal,
        by=None,
        has_campaign=journey.campaign_id is not None,
    )
    now = timezone.now()
    old = {"status": journey.status, "percent": journey.percent}
    if journey.status != Journey.Status.ACTIVE or journey.active_version_id != version.pk:
        # a new version of a running journey with the same trigger reads on from where the old one was:
        # nothing missed, nothing twice. Otherwise it admits from now on: what the trigger produced before
        # activation (or while paused) is not replayed.
        running_same_trigger = (
            journey.status == Journey.Status.ACTIVE
            and journey.active_version is not None
            and journey.active_version.trigger == version.trigger
        )
        if not running_same_trigger:
            journey.trigger_cursor = _trigger_position(version.trigger)
            journey.trigger_at = now
        journey.activated_at = now
    if version.activated_at is None:
        version.activated_at = now
        version.save(update_fields=["activated_at"])
    journey.status = Journey.Status.ACTIVE
    journey.active_version = version
    journey.percent = percent
    if percent > permissions.GRAY_LIMIT:
        journey.approved_by, journey.approved_at = by, now
    journey.save()
    audit_record(
        actor=by,
        action="journey.activate",
        obj=journey,
        changes={
            "status": [old["status"], journey.status],
            "percent": [old["percent"], percent],
            "version": version.number,
        },
    )
    log.info("journey %s active at %s%% (version %s)", journey.pk, percent, version.number)
    return journey


@transaction.atomic
def journey_pause(*, journey: Journey, by: User) -> Journey:
    """Stop admitting and acting; enrolments keep their place and go on when it is activated again."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if not permissions.can_pause_journey(by, journey):
        raise PermissionDenied(_("You may not pause this journey."))
    if journey.status != Journey.Status.ACTIVE:
        raise JourneyStateError(_("Only an active journey can be paused."))
    journey.status = Journey.Status.PAUSED
    journey.save(update_fields=["status", "updated_at"])
    audit_record(actor=by, action="journey.pause", obj=journey, changes={"status": ["active", "paused"]})
    return journey


@transaction.atomic
def destination_create(
    *,
    by: User,
    name: str,
    kind: str,
    url: str = "",
    secret: str = "",
    folder: str = "",
    batch_size: int = 1,
    purpose: str = "",
    customer_facing: bool = False,
    personal_fields: list[str] | None = None,
) -> Destination:
    """A webhook or file destination (the secret is stored, never shown back; the audit says only
    whether one was set). Its checks (a file folder confined to ACTIVATION_FILE_ROOT, personal fields only
    with a purpose and by view_pii) are audience activation's."""
    from journeys.activation.services import destination_errors

    if not permissions.can_manage_destinations(by):
        raise PermissionDenied(_("You may not create destinations."))
    errors: list[RuleError] = [
        RuleError(field, message)
        for field, message in destination_errors(
            kind=kind, url=url, folder=folder, purpose=purpose, personal_fields=personal_fields, by=by
        )
    ]
    if Destination.objects.filter(name=name).exists():
        errors.append(RuleError("name", _("a destination with this name exists")))
    if errors:
        raise DefinitionInvalid(errors)
    destination = Destination.objects.create(
        name=name,
        kind=kind,
        url=url,
        secret=secret,
        folder=folder,
        batch_size=batch_size,
        purpose=purpose,
        customer_facing=customer_facing,
        personal_fields=list(personal_fields or []),
        created_by=by,
    )
    audit_record(
        actor=by,
        action="journey.destination_create",
        obj=destination,
        changes={
            "name": name,
            "kind": kind,
            "purpose": purpose,
            "secret_set": bool(secret),
            "personal_fields": list(personal_fields or []),
        },
    )
    return destination


@transaction.atomic
def email_template_create(*, by: User | None, name: str, texts: dict[str, dict[str, str]]) -> EmailTemplate:
    """An e-mail template with a subject and body per language (Django template syntax over `customer`)."""
    from django.template import Engine, TemplateSyntaxError

    engine = Engine.get_default()
    errors: list[RuleError] = []
    for language, text in texts.items():
        for key in ("subject", "body"):
            try:
                engine.from_string(str(text.get(key, "")))
            except TemplateSyntaxError as exc:
                errors.append(RuleError(f"texts.{language}.{key}", str(exc)))
    if errors:
        raise DefinitionInvalid(errors)
    template = EmailTemplate.objects.create(name=name, texts=texts)
    audit_record(actor=by, action="journey.email_template_create", obj=template, changes={"name": name})
    return template


def customer_erase(*, customer: Any, surrogate: Any, scrubber: Any) -> dict[str, int]:
    """An erasure's step (privacy.rights): the person's enrolments, contact counts and audience-sync rows
    move to the surrogate (so the customer row can go and the counts stay), and the person's values leave
    every stored request body (journey webhooks pending or dead-lettered: a template may have put them there;
    sync batches not yet delivered lose the person's items, so a failed sync's retry sends only the others).
    Returns the counts."""
    from django.db.models import Q

    from journeys.activation.sync import unsent_batches_erase
    from journeys.activation_tables import SyncBaseline, SyncMember
    from journeys.models import ContactCount, Enrolment, WebhookRequest

    report: dict[str, int] = {}
    for label, model in (
        ("journey_enrolments", Enrolment),
        ("journey_contact_counts", ContactCount),
        ("sync_members", SyncMember),
        ("sync_baselines", SyncBaseline),
    ):
        report[label] = model.objects.filter(customer_id=customer.pk).update(customer_id=surrogate.pk)
    holds = Q()
    for value in scrubber.values:
        holds |= Q(body__icontains=value)
    count = 0
    if scrubber:
        for pk, body in WebhookRequest.objects.select_for_update().filter(holds).values_list("pk", "body"):
            scrubbed = scrubber.text(body)
            if scrubbed != body:
                WebhookRequest.objects.filter(pk=pk).update(body=scrubbed)
                count += 1
    report["webhook_requests"] = count
    # a failed sync keeps its unsent batches for the retry: the person's items leave them
    report["sync_batches"] = unsent_batches_erase(external_id=customer.external_id or "", scrubber=scrubber)
    return report
