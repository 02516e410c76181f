"""The set-based bulk merge: on random bases, merging a batch of pairs at once leaves exactly what merging
them one by one (`customers_merge`) leaves, records and all, and undoing every merge restores the base."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEntry
from campaigns.models import Touchpoint
from crm_tags.identity import customers_merge, customers_unmerge
from crm_tags.identity.bulk import customers_merge_bulk, snapshot_sql
from crm_tags.models import (
    Customer,
    CustomerEventTotal,
    CustomerIdentifier,
    CustomerMerge,
    CustomerValue,
    Event,
    MergeRule,
    Tag,
    TagMembership,
)
from privacy.models import Consent
from tests.campaigns.factories import campaign_make
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
STATES = ["granted", "unknown", "withdrawn"]

profile = st.fixed_dictionaries(
    {
        "orders": st.lists(st.integers(1, 90), max_size=3),
        "visits": st.integers(0, 2),
        "consent": st.dictionaries(
            st.sampled_from(["marketing_email", "analytics"]), st.sampled_from(STATES)
        ),
        "tags": st.sets(st.sampled_from([0, 1])),
        "touch": st.booleans(),
        "value": st.booleans(),
        "member_no": st.booleans(),
    }
)
# a base of 2-6 profiles and how they group: each profile's group number (the lowest id of a group survives)
bases = st.lists(profile, min_size=2, max_size=6).flatmap(
    lambda ps: st.tuples(st.just(ps), st.lists(st.integers(0, 2), min_size=len(ps), max_size=len(ps)))
)

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _build(profiles: list[dict[str, Any]], owner) -> list[Customer]:
    # the caller of a bulk merge has checked the limits: none here
    MergeRule.objects.update(max_per_profile=None)
    for model in (CustomerMerge, CustomerIdentifier, TagMembership, Touchpoint, Consent, CustomerValue):
        model.objects.all().delete()
    Event.objects.all().delete()
    CustomerEventTotal.objects.all().delete()
    Customer.objects.all().delete()
    tags = [Tag.objects.get_or_create(slug=f"bulk-{i}", defaults={"name": f"bulk {i}"})[0] for i in (0, 1)]
    campaign = campaign_make(owner=owner)
    customers, rows = [], []
    for i, p in enumerate(profiles):
        c = factories.customer(external_id=f"X{i}")
        customers.append(c)
        rows += [(c, "order", AT + timedelta(days=d), Decimal(d)) for d in p["orders"]]
        rows += [(c, "visit", AT, None)] * p["visits"]
        for purpose, state in p["consent"].items():
            Consent.objects.create(customer=c, purpose=purpose, state=state, source="test", at=AT)
        for t in p["tags"]:
            TagMembership.objects.create(tag=tags[t], customer=c, since=AT + timedelta(hours=i))
        if p["touch"]:
            Touchpoint.objects.create(
                campaign=campaign, customer_external_id=c.external_id, channel="email", occurred_at=AT
            )
        if p["value"]:
            CustomerValue.objects.create(
                customer=c, segment="at_risk", clv_12m=12.5 * i, computed_at=AT, as_of=AT.date()
            )
        if p["member_no"]:
            CustomerIdentifier.objects.create(customer=c, kind="member_no", value=f"M{i}")
    if rows:
        factories.events(rows)
    for tag in tags:
        tag.members_count = TagMembership.objects.filter(tag=tag).count()
        tag.save(update_fields=["members_count"])
    return customers


def _pairs(customers: list[Customer], groups: list[int]) -> list[tuple[int, int]]:
    by_group: dict[int, list[int]] = {}
    for c, g in zip(customers, groups, strict=True):
        by_group.setdefault(g, []).append(c.pk)
    return [(ids[0], loser) for ids in by_group.values() for loser in ids[1:]]


def _state(*, ids: bool) -> dict:
    """Everything a merge touches; without `ids`, rows a merge creates (identifiers, consent) compare by
    what they hold (their ids come from sequences a rolled-back run does not reset)."""
    identifiers = CustomerIdentifier.objects.values_list(
        *(["pk"] if ids else []), "customer_id", "kind", "value"
    )
    consent = Consent.objects.values_list(*(["pk"] if ids else []), "customer_id", "purpose", "state", "at")
    return {
        "customers": sorted(
            Customer.objects.values_list("pk", "external_id", "email", "created_at", "updated_at")
        ),
        "identifiers": sorted(identifiers),
        "events": sorted(Event.objects.values_list("pk", "customer_id")),
        "totals": sorted(
            CustomerEventTotal.objects.values_list(
                "customer_id", "event_type", "events", "amount_sum", "first_at", "last_at"
            )
        ),
        "consent": sorted(consent),
        "memberships": sorted(TagMembership.objects.values_list("tag_id", "customer_id", "since")),
        "counts": sorted(Tag.objects.values_list("pk", "members_count")),
        "touchpoints": sorted(Touchpoint.objects.values_list("pk", "customer_external_id")),
        "values": sorted(
            CustomerValue.objects.values_list("customer_id", "segment", "clv_12m", "computed_at")
        ),
    }


def _restored(snapshot: dict) -> dict:
    """A snapshot's values as the model's Python values (the SQL and the Python snapshots format times
    differently; what `row_restore` makes of them must be the same)."""
    model = apps.get_model(snapshot["model"])
    fields = {f.attname: f for f in model._meta.concrete_fields}
    return {k: None if v is None else fields[k].to_python(v) for k, v in snapshot["fields"].items()}


def _records() -> list[tuple]:
    """The merge records, comparable across runs (added identifiers by what they are, not their ids)."""
    names = dict(
        (pk, (kind, value))
        for pk, kind, value in CustomerIdentifier.objects.values_list("pk", "kind", "value")
    )
    out = []
    for m in CustomerMerge.objects.order_by("merged_customer_id"):
        moved = dict(m.moved)
        moved["identifiers_added"] = sorted(names[pk] for pk in moved["identifiers_added"] if pk in names)
        moved.pop("crm_tags.customeridentifier", None)  # ids of added ones differ between the runs
        consent = moved["consent"]
        if not consent["merged"]:
            consent = {"survivor": None, "merged": []}  # nothing came: the survivor's stayed as it was

        def rows(kept: list | None) -> list | None:
            # rows an earlier merge of the run created have run-specific ids
            return (
                None
                if kept is None
                else sorted(sorted((k, v) for k, v in r.items() if k != "id") for r in kept)
            )

        moved["consent"] = {"survivor": rows(consent["survivor"]), "merged": rows(consent["merged"])}
        moved["memberships"] = {
            "moved": moved["memberships"]["moved"],
            "dropped": sorted((t, datetime.fromisoformat(s)) for t, s in moved["memberships"]["dropped"]),
        }
        if "deleted" in moved:
            moved["deleted"] = {k: [_restored(r) for r in rows] for k, rows in moved["deleted"].items()}
        out.append((m.survivor_id, m.merged_external_id, m.merged_customer_id, _restored(m.snapshot), moved))
    return out


def _in_savepoint(work) -> tuple[dict, list]:
    with transaction.atomic():
        work()
        result = _state(ids=False), _records()
        transaction.set_rollback(True)
    return result


@SETTINGS
@given(base=bases)
def test_a_bulk_merge_leaves_what_merging_one_by_one_leaves(base, manager):
    # given a random base and a grouping of its profiles
    profiles, groups = base
    customers = _build(profiles, manager)
    pairs = _pairs(customers, groups)
    by_id = {c.pk: c for c in customers}

    def one_by_one() -> None:
        for survivor, loser in pairs:
            customers_merge(
                survivor=by_id[survivor], loser=by_id[loser], by=None, source="batch", rebuild=False
            )

    # when the pairs merge at once, and (on the same base) one by one
    bulk = _in_savepoint(lambda: customers_merge_bulk(pairs=pairs, by=None))
    single = _in_savepoint(one_by_one)
    # then the base and the records are the same
    assert bulk[0] == single[0]
    assert bulk[1] == single[1]


@SETTINGS
@given(base=bases)
def test_undoing_every_bulk_merge_restores_the_base_exactly(base, manager):
    profiles, groups = base
    customers = _build(profiles, manager)
    pairs = _pairs(customers, groups)
    before = _state(ids=True)
    merged = customers_merge_bulk(pairs=pairs, by=manager)
    assert len(merged) == len(pairs)
    assert Customer.objects.count() == len(customers) - len(pairs)
    # the latest merge first, as a person undoing them would
    for merge in CustomerMerge.objects.order_by("-pk"):
        customers_unmerge(survivor=merge.survivor, merge_id=merge.pk, by=manager, rebuild=False)
    assert _state(ids=True) == before


def test_a_bulk_merge_is_audited_with_external_ids_only(manager):
    a = factories.customer(external_id="A", email="planted@example.com", phone="13912345678")
    b = factories.customer(external_id="B", email="other@example.com", phone="13987654321")
    merged = customers_merge_bulk(pairs=[(a.pk, b.pk)], by=manager, source="batch")
    assert merged == {b.pk: a.pk}
    entry = AuditEntry.objects.get(action="crm.customer_merge_batch")
    merge = CustomerMerge.objects.get()
    assert entry.actor == manager and entry.changes["merged"] == [[merge.pk, "B", "A"]]
    text = str(entry.changes)
    assert "planted" not in text and "13912345678" not in text and "other@" not in text


def test_a_pair_whose_profile_is_gone_is_skipped():
    a, b, c = (factories.customer(external_id=x) for x in "ABC")
    gone = c.pk
    c.delete()
    merged = customers_merge_bulk(pairs=[(a.pk, b.pk), (a.pk, gone)], by=None)
    assert merged == {b.pk: a.pk} and CustomerMerge.objects.count() == 1


def test_a_profile_merged_twice_in_one_batch_is_refused():
    a, b, c = (factories.customer(external_id=x) for x in "ABC")
    with pytest.raises(ValueError, match="at most once"):
        customers_merge_bulk(pairs=[(a.pk, b.pk), (c.pk, b.pk)], by=None)
    with pytest.raises(ValueError, match="at most once"):
        customers_merge_bulk(pairs=[(a.pk, b.pk), (b.pk, c.pk)], by=None)
    assert Customer.objects.count() == 3


def test_the_sql_snapshot_restores_to_the_python_one():
    from crm_tags.identity.merge import row_snapshot

    c = factories.customer(external_id="S", attributes={"k": [1, "二"]}, birth_date=AT.date())
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {snapshot_sql(Customer, 'c')} FROM crm_tags_customer c WHERE c.id = %s", [c.pk]
        )
        sql = json.loads(cursor.fetchone()[0])  # Django reads jsonb as text
    assert _restored(sql) == _restored(row_snapshot(c))
