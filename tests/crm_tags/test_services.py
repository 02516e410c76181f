"""Services: validation paths, imports all-or-nothing, gray release, dependencies, failed builds, history."""

import io
from decimal import Decimal

import pytest
from django.utils import timezone

from config.csv_import import ImportRejected
from crm_tags import selectors, services
from crm_tags.models import (
    Customer,
    CustomerEventTotal,
    Event,
    Tag,
    TagBuild,
    TagMembership,
    TagMembershipChange,
)
from crm_tags.rules import RuleInvalid, validate_rule
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = (
    "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel,tier\n"
    "A1,Ann,ann@example.com,13800000001,Shanghai,f,1990-01-02,2026-01-05T10:00:00+08:00,web,gold\n"
    "A2,Bo,,,Beijing,m,,2026-02-01,app,\n"
)


def _paths(definition: object) -> list[tuple[str, str]]:
    return [(e.path, e.message) for e in validate_rule(definition, known_tags={"vip"})]


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ([], ""),
        ({}, ""),
        ({"all": [], "x": 1}, "x"),
        ({"all": []}, "all"),
        ({"any": "nope"}, "any"),
        ({"all": [{"attr": "city"}], "any": []}, ""),
        ({"not": 5}, "not"),
        ({"all": [{"attr": "shoe", "op": "=", "value": "x"}]}, "all[0].attr"),
        ({"all": [{"attr": "city", "op": "~", "value": "x"}]}, "all[0].op"),
        ({"all": [{"attr": "city", "op": "="}]}, "all[0].value"),
        ({"attr": "city", "op": "=", "value": 5}, "value"),
        ({"attr": "city", "op": "=", "value": "x", "extra": 1}, "extra"),
        ({"attr": "city", "op": "in", "value": []}, "value"),
        ({"attr": "city", "op": "in", "value": ["a", 3]}, "value[1]"),
        ({"attr": "city", "op": "between", "value": ["a"]}, "value"),
        ({"attr": "city", "op": "is_null", "value": "yes"}, "value"),
        ({"attr": "city", "op": "contains", "value": 3}, "value"),
        ({"attr": "birth_date", "op": "contains", "value": "1990"}, "op"),
        ({"attr": "birth_date", "op": ">", "value": "1990-13-01"}, "value"),
        ({"attr": "signup_at", "op": ">", "value": "yesterday"}, "value"),
        ({"attr": "attributes.tier", "op": ">", "value": True}, "value"),
        ({"attr": "attributes.tier", "op": "=", "value": [1]}, "value"),
        ({"attr": "attributes.tier", "op": "between", "value": [1, "b"]}, "value"),
        ({"attr": "attributes.bad key", "op": "=", "value": 1}, "attr"),
        ({"event": "", "agg": "count", "op": ">", "value": 1}, "event"),
        ({"event": "order", "agg": "median", "op": ">", "value": 1}, "agg"),
        ({"event": "order", "agg": "avg", "op": ">", "value": 1}, "field"),
        ({"event": "order", "agg": "avg", "field": "price", "op": ">", "value": 1}, "field"),
        ({"event": "order", "agg": "count", "field": "amount", "op": ">", "value": 1}, "field"),
        ({"event": "order", "agg": "count", "window_days": 0, "op": ">", "value": 1}, "window_days"),
        ({"event": "order", "agg": "count", "window_days": "30", "op": ">", "value": 1}, "window_days"),
        (
            {"event": "order", "agg": "days_since_last", "window_days": 3, "op": ">", "value": 1},
            "window_days",
        ),
        ({"event": "order", "agg": "count", "op": "in", "value": 1}, "op"),
        ({"event": "order", "agg": "count", "op": ">"}, "value"),
        ({"event": "order", "agg": "count", "op": ">", "value": "5"}, "value"),
        ({"event": "order", "agg": "count", "op": "between", "value": [1]}, "value"),
        ({"event": "order", "agg": "count", "op": ">", "value": 1, "when": 2}, "when"),
        ({"tag": "ghost"}, "tag"),
        ({"tag": 3}, "tag"),
        ({"tag": "vip", "has": "yes"}, "has"),
        ({"tag": "vip", "other": 1}, "other"),
        ({"any": [{"all": [{"not": {"attr": "city", "op": "!", "value": "x"}}]}]}, "any[0].all[0].not.op"),
    ],
)
def test_every_validation_error_names_its_path(definition, path):
    errors = _paths(definition)
    assert errors, "expected an error"
    assert path in [p for p, _ in errors]


def test_valid_rule_has_no_errors():
    rule = {
        "all": [
            {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 5},
            {"not": {"tag": "vip"}},
            {
                "any": [
                    {"attr": "city", "op": "in", "value": ["Shanghai"]},
                    {"attr": "attributes.tier", "op": "is_null", "value": True},
                ]
            },
        ]
    }
    assert validate_rule(rule, known_tags={"vip"}) == []


def test_nesting_deeper_than_the_limit_is_refused():
    node: dict = {"attr": "city", "op": "=", "value": "x"}
    for _ in range(25):
        node = {"not": node}
    assert any("deeper" in e.message for e in validate_rule(node))


# --- imports -----------------------------------------------------------------------------------


def test_customer_import_creates_and_updates():
    services.customers_import(upload=io.StringIO(CUSTOMERS_CSV), by=None)
    again = CUSTOMERS_CSV.replace("Ann,", "Anna,")
    result = services.customers_import(upload=io.StringIO(again), by=None)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)  # Bo is repeated as he was
    ann = Customer.objects.get(external_id="A1")
    assert (ann.name, ann.attributes, ann.birth_date.isoformat()) == ("Anna", {"tier": "gold"}, "1990-01-02")
    bo = Customer.objects.get(external_id="A2")
    assert (bo.email, bo.phone, bo.attributes) == (None, None, {})
    assert bo.signup_at.isoformat() == "2026-01-31T16:00:00+00:00"  # plain date: midnight Shanghai


def test_customer_import_with_a_bad_row_writes_nothing():
    bad = CUSTOMERS_CSV + "A1,dup,,,,,,,,\nA3,Cy,not-an-email,,,,1990-02-30,,,\nA4,short\n"
    with pytest.raises(ImportRejected) as caught:
        services.customers_import(upload=io.StringIO(bad), by=None)
    errors = [(e.row, e.column) for e in caught.value.errors]
    assert errors == [(4, "external_id"), (5, "email"), (5, "birth_date"), (6, "")]
    assert Customer.objects.count() == 0


def test_event_import_rejects_bad_rows_and_writes_nothing():
    services.customers_import(upload=io.StringIO(CUSTOMERS_CSV), by=None)
    csv = (
        "customer_external_id,event_type,occurred_at,amount,channel\n"
        "A1,order,2026-03-01T10:00:00+08:00,12.5,web\n"
        "A1,order,2026-03-40,1,web\n"
        "A1,order,2026-03-01,ten,web\n"
        "ZZ,order,2026-03-01,1,web\n"
        "A1,bad type!,2026-03-01,,web\n"
    )
    with pytest.raises(ImportRejected) as caught:
        services.events_import(upload=io.StringIO(csv), by=None)
    assert [(e.row, e.column) for e in caught.value.errors] == [
        (3, "occurred_at"),
        (4, "amount"),
        (6, "event_type"),
    ]
    assert Event.objects.count() == 0


def test_unknown_customer_is_reported_by_row():
    services.customers_import(upload=io.StringIO(CUSTOMERS_CSV), by=None)
    csv = "customer_external_id,event_type,occurred_at,amount,channel\nA1,order,2026-03-01,1,web\nZZ,order,2026-03-01,1,web\n"
    with pytest.raises(ImportRejected) as caught:
        services.events_import(upload=io.StringIO(csv), by=None)
    assert [(e.row, e.column, e.message) for e in caught.value.errors] == [
        (3, "customer_external_id", "Unknown customer ZZ.")
    ]
    assert Event.objects.count() == 0


def test_event_import_keeps_totals_exact_across_files():
    services.customers_import(upload=io.StringIO(CUSTOMERS_CSV), by=None)
    head = "customer_external_id,event_type,occurred_at,amount,channel,sku\n"
    services.events_import(
        upload=io.StringIO(head + "A1,order,2026-03-01,10,web,S1\nA1,order,2026-03-02,,web,\n"), by=None
    )
    services.events_import(upload=io.StringIO(head + "A1,order,2026-02-01,30.5,app,S2\n"), by=None)
    total = CustomerEventTotal.objects.get(customer__external_id="A1", event_type="order")
    assert (total.events, total.amount_count, total.amount_sum, total.amount_min, total.amount_max) == (
        3,
        2,
        Decimal("40.50"),
        Decimal("10.00"),
        Decimal("30.50"),
    )
    assert Event.objects.filter(properties={"sku": "S1"}).count() == 1


def test_event_plain_date_is_midnight_in_the_default_time_zone():
    services.customers_import(upload=io.StringIO(CUSTOMERS_CSV), by=None)
    services.events_import(
        upload=io.StringIO(
            "customer_external_id,event_type,occurred_at,amount,channel\nA1,visit,2026-03-01,,web\n"
        ),
        by=None,
    )
    assert Event.objects.get().occurred_at.isoformat() == "2026-02-28T16:00:00+00:00"


def test_import_queues_a_rebuild_of_published_tags(django_capture_on_commit_callbacks):
    factories.customer(external_id="B1")
    tag = factories.rule_tag("buyers", {"event": "order", "agg": "count", "op": ">=", "value": 1})
    Tag.objects.filter(pk=tag.pk).update(current_version=tag.versions.get(), rollout_percent=100)
    with django_capture_on_commit_callbacks(execute=True):
        services.events_import(
            upload=io.StringIO(
                "customer_external_id,event_type,occurred_at,amount,channel\nB1,order,2026-03-01,5,web\n"
            ),
            by=None,
        )
    assert TagMembership.objects.filter(tag=tag).count() == 1
    assert TagBuild.objects.get(tag=tag).trigger == "import"


# --- gray release, dependencies, failures, history --------------------------------------------------


@pytest.fixture
def crowd(db):
    Customer.objects.bulk_create([Customer(external_id=f"P{i:04d}", city="Shanghai") for i in range(400)])


def _build(tag: Tag, version: int, percent: int, capture) -> TagBuild:
    with capture(execute=True):
        build = services.tag_publish(tag=tag, version_number=version, rollout_percent=percent, by=None)
    build.refresh_from_db()
    return build


def _members(tag: Tag) -> set[int]:
    return set(TagMembership.objects.filter(tag=tag).values_list("customer_id", flat=True))


def test_gray_release_10_to_30_keeps_the_first_10_percent(crowd, django_capture_on_commit_callbacks):
    tag = factories.rule_tag("sh", {"attr": "city", "op": "=", "value": "Shanghai"})
    _build(tag, 1, 10, django_capture_on_commit_callbacks)
    first = _members(tag)
    build = _build(tag, 1, 30, django_capture_on_commit_callbacks)
    second = _members(tag)
    assert first < second
    assert 10 < len(first) < 80 and 80 < len(second) < 170
    assert (build.entered, build.exited) == (len(second) - len(first), 0)


def test_gray_group_is_stable_across_rebuilds(crowd, django_capture_on_commit_callbacks):
    tag = factories.rule_tag("sh", {"attr": "city", "op": "=", "value": "Shanghai"})
    _build(tag, 1, 25, django_capture_on_commit_callbacks)
    first = _members(tag)
    services.tags_rebuild_all(trigger="manual")
    assert _members(tag) == first


def test_a_cycle_is_refused_with_the_path_of_the_tag_leaf(db):
    a = factories.rule_tag("a", {"attr": "city", "op": "=", "value": "x"})
    b = factories.rule_tag("b", {"tag": "a"})
    Tag.objects.filter(pk=b.pk).update(current_version=b.versions.get())
    with pytest.raises(RuleInvalid) as caught:
        services.tag_version_create(
            tag=a, definition={"any": [{"attr": "city", "op": "=", "value": "y"}, {"tag": "b"}]}, by=None
        )
    assert [e.path for e in caught.value.errors] == ["any[1].tag"]


def test_a_rule_reading_its_own_tag_is_refused(db):
    a = factories.rule_tag("a")
    with pytest.raises(RuleInvalid):
        services.tag_version_create(tag=a, definition={"tag": "a"}, by=None)


def test_rebuild_runs_in_dependency_order(crowd, django_capture_on_commit_callbacks):
    # "z-base" sorts after "a-derived", yet must be built first because a-derived reads it
    base = factories.rule_tag("z-base", {"attr": "external_id", "op": "<", "value": "P0100"})
    derived = factories.rule_tag("a-derived", {"tag": "z-base"})
    Tag.objects.filter(pk__in=[base.pk, derived.pk]).update(rollout_percent=100)
    Tag.objects.filter(pk=base.pk).update(current_version=base.versions.get())
    Tag.objects.filter(pk=derived.pk).update(current_version=derived.versions.get())
    builds = services.tags_rebuild_all(trigger="manual")
    assert [b.tag.slug for b in builds] == ["z-base", "a-derived"]
    assert len(_members(derived)) == 100


def test_publishing_a_tag_rebuilds_the_tags_that_read_it(crowd, django_capture_on_commit_callbacks):
    base = factories.rule_tag("base", {"attr": "external_id", "op": "<", "value": "P0050"})
    derived = factories.rule_tag("derived", {"tag": "base"})
    Tag.objects.filter(pk=derived.pk).update(current_version=derived.versions.get(), rollout_percent=100)
    _build(base, 1, 100, django_capture_on_commit_callbacks)
    assert _members(derived) == _members(base) and _members(base)


def test_a_build_that_fails_midway_leaves_membership_unchanged(
    crowd, django_capture_on_commit_callbacks, monkeypatch
):
    tag = factories.rule_tag("sh", {"attr": "city", "op": "=", "value": "Shanghai"})
    factories.version(tag, {"attr": "external_id", "op": "<", "value": "P0010"})
    _build(tag, 1, 100, django_capture_on_commit_callbacks)
    before = _members(tag)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_apply_entries", boom)  # exits are already deleted when this fails
    build = _build(tag, 2, 100, django_capture_on_commit_callbacks)
    assert (build.status, build.error) == ("failed", "disk full")
    assert _members(tag) == before
    assert not TagMembershipChange.objects.filter(build=build).exists()


def test_history_rows_record_entries_and_exits_with_the_version(crowd, django_capture_on_commit_callbacks):
    tag = factories.rule_tag("early", {"attr": "external_id", "op": "<", "value": "P0003"})
    factories.version(tag, {"attr": "external_id", "op": "between", "value": ["P0002", "P0004"]})
    _build(tag, 1, 100, django_capture_on_commit_callbacks)
    _build(tag, 2, 100, django_capture_on_commit_callbacks)
    rows = TagMembershipChange.objects.filter(tag=tag).order_by("version", "change", "customer__external_id")
    got = [(r.version, r.change, r.customer.external_id) for r in rows]
    assert got == [
        (1, "entered", "P0000"),
        (1, "entered", "P0001"),
        (1, "entered", "P0002"),
        (2, "entered", "P0003"),
        (2, "entered", "P0004"),
        (2, "exited", "P0000"),
        (2, "exited", "P0001"),
    ]


def test_membership_since_survives_rebuilds(crowd, django_capture_on_commit_callbacks):
    tag = factories.rule_tag("one", {"attr": "external_id", "op": "=", "value": "P0001"})
    _build(tag, 1, 100, django_capture_on_commit_callbacks)
    since = TagMembership.objects.get(tag=tag).since
    services.tags_rebuild_all(trigger="manual")
    assert TagMembership.objects.get(tag=tag).since == since


def test_audience_count_any_all_and_exclude(crowd):
    customers = list(Customer.objects.order_by("external_id")[:4])
    a = Tag.objects.create(slug="a", name="a")
    b = Tag.objects.create(slug="b", name="b")
    x = Tag.objects.create(slug="x", name="x")
    now = timezone.now()
    rows = [(a, customers[0]), (a, customers[1]), (b, customers[1]), (b, customers[2]), (x, customers[2])]
    TagMembership.objects.bulk_create([TagMembership(tag=t, customer=c, since=now) for t, c in rows])
    assert selectors.audience_count(include=["a", "b"]) == 3
    assert selectors.audience_count(include=["a", "b"], include_mode="all") == 1
    assert selectors.audience_count(include=["a", "b"], exclude=["x"]) == 2
    assert selectors.audience_count(include=[]) == 0


def test_scheduled_rebuilds_builds_hourly_tags(crowd):
    from crm_tags import tasks

    tag = factories.rule_tag("sh", {"attr": "city", "op": "=", "value": "Shanghai"})
    Tag.objects.filter(pk=tag.pk).update(current_version=tag.versions.get(), rollout_percent=100)
    tasks.scheduled_rebuilds()
    assert TagBuild.objects.get(tag=tag).trigger == "schedule"
    assert len(_members(tag)) == 400


def test_preview_statement_timeout_is_reported(crowd, settings, monkeypatch, agent):
    # given a preview limited to 1 ms and a statement that sleeps 200 ms per matched customer
    settings.CRM_PREVIEW_TIMEOUT_MS = 1
    tag = factories.rule_tag("slow")
    original = selectors.compile_rule

    def slow(*args, **kwargs):
        compiled = original(*args, **kwargs)
        compiled.sql += " AND pg_sleep(0.2) IS NOT NULL"
        return compiled

    monkeypatch.setattr(selectors, "compile_rule", slow)
    # when it runs, then it is stopped and reported as cancelled
    with pytest.raises(selectors.PreviewCancelled):
        selectors.tag_preview(
            tag=tag, definition={"attr": "city", "op": "=", "value": "Shanghai"}, user=agent
        )


def test_bulk_event_load_rebuilds_the_indexes(monkeypatch):
    # given a load big enough to take the bulk path (threshold lowered for the test)
    from crm_tags import importers

    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    services.customers_import(upload=io.StringIO(CUSTOMERS_CSV), by=None)
    csv = "customer_external_id,event_type,occurred_at,amount,channel\nA1,order,2026-03-01,10,web\nA2,order,2026-03-02,30,web\n"
    # when it is imported
    services.events_import(upload=io.StringIO(csv), by=None)
    # then the rows, the totals, both indexes and the foreign key are there
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'crm_tags_event' AND indexname LIKE 'crm_event_%%' ORDER BY 1"
        )
        assert [r[0] for r in cursor.fetchall()] == ["crm_event_cust_at", "crm_event_type_at_cover"]
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'crm_tags_event'::regclass AND contype = 'f'"
        )
        assert cursor.fetchone()[0] == 1
    assert Event.objects.count() == 2
    assert CustomerEventTotal.objects.get(customer__external_id="A2").amount_sum == Decimal("30")


def test_event_values_with_copy_special_characters_round_trip():
    services.customers_import(upload=io.StringIO(CUSTOMERS_CSV), by=None)
    csv = 'customer_external_id,event_type,occurred_at,amount,channel,note\nA1,order,2026-03-01,1,"we\\b\tx","say ""hi""\\n\nnext"\n'
    services.events_import(upload=io.StringIO(csv), by=None)
    event = Event.objects.get()
    assert event.channel == "we\\b\tx"
    assert event.properties == {"note": 'say "hi"\\n\nnext'}
