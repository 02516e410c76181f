"""Merging two profiles of one person, and undoing it.

The survivor keeps its own row; the other profile's identifiers, events (with their lifetime totals and
ranks recomputed), consent (the most restrictive state wins), tag memberships and history, campaign
touchpoints and conversions, and every other row that pointed at it move to the survivor, and its own
row goes. The merge record keeps the merged row and the ids of everything that moved (plus the
survivor's consent before), so that `customers_unmerge` puts both profiles back as they were.
"""

# SQL is assembled from fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

import logging
from collections import Counter
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from config.task_queue import enqueue
from crm_tags.identity.normalise import EXTERNAL_ID
from crm_tags.identity.rules import IdentityRules, identity_rules
from crm_tags.models import (
    Customer,
    CustomerEventTotal,
    CustomerIdentifier,
    CustomerMerge,
    Event,
    EventRank,
    TagBuild,
    TagMembership,
)
from crm_tags.retention import RECOMPUTE

log = logging.getLogger(__name__)

# consent: the more restrictive state of two (no row at all means nothing is known and never wins)
_RESTRICTION = {"granted": 0, "unknown": 1, "withdrawn": 2}
# relations moved by the steps below, not by the generic move
_HANDLED = {Event, CustomerEventTotal, EventRank, TagMembership}


class MergeRefused(ValueError):
    """Two profiles that may not merge (the same one, or a kind would go past its limit per profile)."""


class UnmergeRefused(ValueError):
    """A merge that cannot be undone (already undone, or its external id taken since)."""


def identifier_counts(customer_id: int) -> Counter:
    """How many identifiers of each kind a profile holds."""
    return Counter(
        dict(
            CustomerIdentifier.objects.filter(customer_id=customer_id)
            .values("kind")
            .annotate(n=models.Count("id"))
            .values_list("kind", "n")
        )
    )


def external_id_identifier_ensure(customer: Customer) -> int | None:
    """A profile's own external id is one of its identifiers (so a merged one still resolves); returns
    the new row's id when it had to be added."""
    row, created = CustomerIdentifier.objects.get_or_create(
        kind=EXTERNAL_ID, value=customer.external_id, defaults={"customer": customer}
    )
    return row.pk if created else None


def merge_blockers(*, survivor: Customer, loser: Customer, rules: IdentityRules) -> list[str]:
    """Kinds that would go past their limit per profile if the two were one (empty: they may merge)."""
    counts = [identifier_counts(survivor.pk), identifier_counts(loser.pk)]
    # each keeps its own external id as an identifier, once merged too
    for held, customer in zip(counts, (survivor, loser), strict=True):
        if not CustomerIdentifier.objects.filter(kind=EXTERNAL_ID, value=customer.external_id).exists():
            held[EXTERNAL_ID] += 1
    return rules.combined_over_limit(*counts)


def row_snapshot(obj: models.Model) -> dict[str, Any]:
    """A row as JSON, every column at full precision (times to the microsecond)."""
    return {
        "model": obj._meta.label_lower,
        "fields": {
            f.attname: None if f.value_from_object(obj) is None else f.value_to_string(obj)
            for f in obj._meta.concrete_fields
        },
    }


def row_restore(snapshot: dict[str, Any]) -> models.Model:
    """Insert a row exactly as `row_snapshot` kept it (a raw save: no auto_now, no signals' defaults)."""
    from django.apps import apps

    model = apps.get_model(snapshot["model"])
    fields = {f.attname: f for f in model._meta.concrete_fields}
    obj = model(
        **{
            name: None if value is None else fields[name].to_python(value)
            for name, value in snapshot["fields"].items()
        }
    )
    obj.save_base(raw=True, force_insert=True)
    return obj


def other_relations() -> list[tuple[type[models.Model], str, bool]]:
    """(model, field, unique per customer) of every other table that points at customers, those with no
    reverse accessor (`related_name="+"`: consent history, privacy requests, unmasking records…) too."""
    found = []
    for rel in Customer._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
            continue
        model, fk = rel.related_model, rel.field
        if model in _HANDLED or not fk.concrete:
            continue
        unique = fk.unique or any(
            isinstance(c, models.UniqueConstraint) and fk.name in c.fields for c in model._meta.constraints
        )
        found.append((model, fk.name, unique))
    return sorted(found, key=lambda found: found[0]._meta.label_lower)


def _move_rows(moved: dict[str, Any], *, source: int, target: int) -> None:
    """Every other table: rows move (ids kept); rows unique per customer go, kept whole in the record."""
    for model, field, unique in other_relations():
        label = model._meta.label_lower
        rows = model._default_manager.filter(**{f"{field}_id": source})
        if unique:
            kept = [row_snapshot(row) for row in rows]
            if kept:
                moved.setdefault("deleted", {})[label] = kept
                rows.delete()
            continue
        ids = list(rows.values_list("pk", flat=True))
        if ids:
            moved[label] = ids
            model._default_manager.filter(pk__in=ids).update(**{f"{field}_id": target})


def _move_rows_back(moved: dict[str, Any], *, source: int, target: int) -> None:
    for model, field, _unique in other_relations():
        ids = moved.get(model._meta.label_lower)
        if ids:
            model._default_manager.filter(pk__in=ids, **{f"{field}_id": source}).update(
                **{f"{field}_id": target}
            )
    for rows in moved.get("deleted", {}).values():
        for row in rows:
            row_restore(row)


def _events_move(cursor: Any, *, ids: list[int] | None, source: int, target: int) -> list[int]:
    """Move events (all of `source`'s, or those ids) and recompute both profiles' totals; the events'
    update trigger refreshes their ranks."""
    # imports and the ranks' sync take this lock too: no event of these profiles is written meanwhile
    cursor.execute("LOCK TABLE crm_tags_event IN SHARE ROW EXCLUSIVE MODE")
    if ids is None:
        cursor.execute(
            "UPDATE crm_tags_event SET customer_id = %s WHERE customer_id = %s RETURNING id, event_type",
            [target, source],
        )
    else:
        cursor.execute(
            "UPDATE crm_tags_event SET customer_id = %s WHERE customer_id = %s AND id = ANY(%s) "
            "RETURNING id, event_type",
            [target, source, ids],
        )
    rows = cursor.fetchall()
    for event_type in sorted({row[1] for row in rows}):
        cursor.execute(RECOMPUTE, {"customers": [source, target], "type": event_type})
    return sorted(row[0] for row in rows)


def _memberships_move(cursor: Any, *, source: int, target: int) -> dict[str, Any]:
    """The source's memberships go to the target; where both were members the source's row goes (the
    tag then counts one member fewer). Tags are locked in id order first, as builds do."""
    cursor.execute(
        "SELECT id FROM crm_tags_tag WHERE id IN (SELECT tag_id FROM crm_tags_tagmembership "
        "WHERE customer_id = ANY(%s)) ORDER BY id FOR UPDATE",
        [[source, target]],
    )
    cursor.execute(
        "WITH gone AS (DELETE FROM crm_tags_tagmembership m WHERE m.customer_id = %s AND EXISTS ("
        "SELECT 1 FROM crm_tags_tagmembership o WHERE o.tag_id = m.tag_id AND o.customer_id = %s) "
        "RETURNING tag_id, since), "
        "counted AS (UPDATE crm_tags_tag t SET members_count = GREATEST(t.members_count - 1, 0) "
        "FROM gone WHERE t.id = gone.tag_id RETURNING t.id) "
        "SELECT tag_id, since FROM gone",
        [source, target],
    )
    dropped = [[tag, since.isoformat()] for tag, since in cursor.fetchall()]
    cursor.execute(
        "UPDATE crm_tags_tagmembership SET customer_id = %s WHERE customer_id = %s RETURNING tag_id",
        [target, source],
    )
    return {"moved": sorted(row[0] for row in cursor.fetchall()), "dropped": dropped}


def _memberships_move_back(cursor: Any, memberships: dict[str, Any], *, survivor: int, restored: int) -> None:
    tags = sorted({*memberships["moved"], *(tag for tag, _since in memberships["dropped"])})
    cursor.execute("SELECT id FROM crm_tags_tag WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [tags])
    cursor.execute(
        "UPDATE crm_tags_tagmembership SET customer_id = %s WHERE customer_id = %s AND tag_id = ANY(%s)",
        [restored, survivor, memberships["moved"]],
    )
    for tag, since in memberships["dropped"]:
        cursor.execute(
            "WITH back AS (INSERT INTO crm_tags_tagmembership (tag_id, customer_id, since) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING tag_id) "
            "UPDATE crm_tags_tag t SET members_count = t.members_count + 1 FROM back WHERE t.id = back.tag_id",
            [tag, restored, since],
        )


def _consent_rows(customer_id: int) -> list[dict[str, Any]]:
    """A profile's consent rows as JSON, times to the microsecond (DjangoJSONEncoder keeps milliseconds
    only: an unmerge would not give the same time back)."""
    from privacy.models import Consent

    rows = Consent.objects.filter(customer_id=customer_id).values("id", "purpose", "state", "source", "at")
    return [{**row, "at": row["at"].isoformat()} for row in rows]


def consent_merge(*, survivor: int, loser: int, moved: dict[str, Any]) -> None:
    """The survivor takes the more restrictive state of the two per purpose; the loser's rows go (kept,
    with the survivor's before, in the record)."""
    from privacy.models import Consent

    mine, theirs = _consent_rows(survivor), _consent_rows(loser)
    moved["consent"] = {"survivor": mine, "merged": theirs}
    current = {row["purpose"]: row for row in mine}
    Consent.objects.filter(customer_id=loser).delete()
    for row in theirs:
        have = current.get(row["purpose"])
        if have is None:
            Consent.objects.create(
                customer_id=survivor,
                purpose=row["purpose"],
                state=row["state"],
                source=row["source"],
                at=row["at"],
            )
        elif _RESTRICTION.get(row["state"], 0) > _RESTRICTION.get(have["state"], 0):
            Consent.objects.filter(pk=have["id"]).update(
                state=row["state"], source=row["source"], at=row["at"]
            )


def _consent_restore(*, survivor: int, restored: int, consent: dict[str, Any]) -> None:
    """The merged profile's consent comes back; the survivor's is put back as it was before the merge
    (`survivor` None: the merge left it as it was, the merged profile having held none)."""
    from privacy.models import Consent

    if consent["survivor"] is not None:
        Consent.objects.filter(customer_id=survivor).delete()
        Consent.objects.bulk_create([Consent(customer_id=survivor, **row) for row in consent["survivor"]])
    Consent.objects.bulk_create([Consent(customer_id=restored, **row) for row in consent["merged"]])


def _touchpoints_move(*, source: str, target: str, moved: dict[str, Any]) -> None:
    """Campaign touchpoints and conversions are keyed by external id: they follow the person."""
    from campaigns.models import Conversion, Touchpoint

    for model in (Touchpoint, Conversion):
        rows = model.objects.filter(customer_external_id=source)
        ids = list(rows.values_list("pk", flat=True))
        if ids:
            moved[f"{model._meta.label_lower}:external_id"] = ids
            model.objects.filter(pk__in=ids).update(customer_external_id=target)


def _touchpoints_move_back(*, survivor: str, restored: str, moved: dict[str, Any]) -> None:
    from campaigns.models import Conversion, Touchpoint

    for model in (Touchpoint, Conversion):
        ids = moved.get(f"{model._meta.label_lower}:external_id")
        if ids:
            model.objects.filter(pk__in=ids, customer_external_id=survivor).update(
                customer_external_id=restored
            )


def tags_rebuild_after_merge() -> None:
    """Rule tags read the merged profiles' events and memberships: rebuild them after commit."""
    enqueue("crm_tags.tasks.rebuild_all_tags", trigger=TagBuild.Trigger.MANUAL)


@transaction.atomic
def customers_merge(
    *,
    survivor: Customer,
    loser: Customer,
    by: User | None,
    source: str = "manual",
    rules: IdentityRules | None = None,
    rebuild: bool = True,
) -> CustomerMerge:
    """Merge `loser` into `survivor` (MergeRefused when they are one, or a kind would pass its limit)."""
    if survivor.pk == loser.pk:
        raise MergeRefused(_("A profile cannot be merged into itself."))
    locked = {
        c.pk: c
        for c in Customer.objects.select_for_update().filter(pk__in=[survivor.pk, loser.pk]).order_by("pk")
    }
    if len(locked) < 2:
        raise MergeRefused(_("One of the profiles no longer exists."))
    survivor, loser = locked[survivor.pk], locked[loser.pk]
    rules = rules or identity_rules()
    blockers = merge_blockers(survivor=survivor, loser=loser, rules=rules)
    if blockers:
        raise MergeRefused(
            _("Merging would give one profile more identifiers than allowed: %(kinds)s.")
            % {"kinds": ", ".join(blockers)}
        )
    # the merged profile's external id resolves to the survivor from now on (the survivor's own resolves
    # through its row); added for the merge, an unmerge takes it away again
    added = external_id_identifier_ensure(loser)
    snapshot = row_snapshot(loser)
    moved: dict[str, Any] = {"identifiers_added": [] if added is None else [added]}
    with connection.cursor() as cursor:
        moved["events"] = _events_move(cursor, ids=None, source=loser.pk, target=survivor.pk)
        moved["memberships"] = _memberships_move(cursor, source=loser.pk, target=survivor.pk)
    consent_merge(survivor=survivor.pk, loser=loser.pk, moved=moved)
    _touchpoints_move(source=loser.external_id, target=survivor.external_id, moved=moved)
    _move_rows(moved, source=loser.pk, target=survivor.pk)
    Customer.objects.filter(pk=loser.pk)._raw_delete(using="default")
    merge = CustomerMerge.objects.create(
        survivor=survivor,
        merged_external_id=loser.external_id,
        merged_customer_id=loser.pk,
        snapshot=snapshot,
        moved=moved,
        source=source,
        by=by if by is not None and by.pk else None,
        at=timezone.now(),
    )
    audit_record(
        actor=by,
        action="crm.customer_merge",
        obj=survivor,
        changes={"merge_id": merge.pk, "from": loser.external_id, "events": len(moved["events"])},
    )
    log.info("customer %s merged into %s: %s events", loser.pk, survivor.pk, len(moved["events"]))
    if rebuild:
        tags_rebuild_after_merge()
    return merge


@transaction.atomic
def customers_unmerge(
    *, survivor: Customer, merge_id: int, by: User | None, rebuild: bool = True
) -> Customer:
    """Undo one merge into `survivor`: the merged profile comes back with its own row, identifiers,
    events, consent, memberships and touchpoints, and the survivor's consent is as it was. Returns the
    restored profile."""
    survivor = Customer.objects.select_for_update().get(pk=survivor.pk)
    merge = CustomerMerge.objects.select_for_update().filter(pk=merge_id, survivor=survivor).first()
    if merge is None:
        raise UnmergeRefused(_("No merge %(id)s into this profile.") % {"id": merge_id})
    if merge.unmerged_at is not None:
        raise UnmergeRefused(_("Merge %(id)s was undone already.") % {"id": merge_id})
    if Customer.objects.filter(external_id=merge.merged_external_id).exists():
        raise UnmergeRefused(
            _("Another profile has the external id %(external_id)s now.")
            % {"external_id": merge.merged_external_id}
        )
    restored = row_restore(merge.snapshot)
    moved = merge.moved
    # the merged profile's other rows first: its identifiers, history and earlier merges
    _move_rows_back(moved, source=survivor.pk, target=restored.pk)
    with connection.cursor() as cursor:
        _events_move(cursor, ids=moved.get("events", []), source=survivor.pk, target=restored.pk)
        _memberships_move_back(cursor, moved["memberships"], survivor=survivor.pk, restored=restored.pk)
    _consent_restore(survivor=survivor.pk, restored=restored.pk, consent=moved["consent"])
    _touchpoints_move_back(survivor=survivor.external_id, restored=restored.external_id, moved=moved)
    CustomerIdentifier.objects.filter(pk__in=moved.get("identifiers_added", [])).delete()
    merge.unmerged_at = timezone.now()
    merge.unmerged_by = by if by is not None and by.pk else None
    merge.save(update_fields=["unmerged_at", "unmerged_by"])
    audit_record(
        actor=by,
        action="crm.customer_unmerge",
        obj=survivor,
        changes={"merge_id": merge.pk, "from": merge.merged_external_id},
    )
    if rebuild:
        tags_rebuild_after_merge()
    return restored
