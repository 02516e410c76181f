"""The purchase days the value fit reads (crm_tags.value.purchases) give exactly the numbers of the pure
purchase_summary over the orders as they are, whatever wrote them: imports before and after a catch-up,
deletes, events moved between customers (as a merge or unmerge moves them), edited times and amounts, a
customer's deletion, TRUNCATE, and a change of the order event type."""

import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_tags.models import Customer, CustomerPurchaseDays, Event
from crm_tags.value import purchase_summary
from crm_tags.value.purchases import purchase_days_catch_up, purchase_summary_arrays
from crm_tags.value.store import as_of_moment
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db
SHANGHAI = timezone.get_default_timezone()
BASE = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
AMOUNTS = st.one_of(
    st.none(), st.sampled_from([Decimal("0"), Decimal("10.50"), Decimal("99.99"), Decimal("-3")])
)
# hours from BASE: several orders on one local day, orders either side of a local midnight (16:00 UTC)
HOURS = st.sampled_from([0, 1, 3, 3.5, 4, 24, 27, 28, 100, 240, 241, -30, -4])
AS_OF_DAYS = [
    datetime.date(2026, 4, 29),
    datetime.date(2026, 5, 1),
    datetime.date(2026, 5, 2),
    datetime.date(2026, 6, 1),
]

event_rows = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["order", "order", "page_view"]), HOURS, AMOUNTS), max_size=8
)
step = st.one_of(
    st.tuples(st.just("import"), event_rows),
    st.tuples(st.just("catch_up"), st.none()),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 50), max_size=3)),
    st.tuples(
        st.just("move"), st.tuples(st.lists(st.integers(0, 50), min_size=1, max_size=4), st.integers(0, 3))
    ),
    st.tuples(st.just("edit"), st.tuples(st.integers(0, 50), HOURS, AMOUNTS)),
    st.tuples(st.just("drop_customer"), st.integers(0, 3)),
)


def _expected(day: datetime.date) -> dict[str, np.ndarray]:
    """The pure summary of the orders up to the end of `day`, with the RFM inputs beside it."""
    moment = as_of_moment(day)
    rows = list(
        Event.objects.filter(event_type="order", occurred_at__lte=moment)
        .order_by("customer_id", "occurred_at")
        .values_list("customer_id", "occurred_at", "amount")
    )
    ids = [r[0] for r in rows]
    days = [timezone.localtime(r[1], SHANGHAI).date() for r in rows]
    amounts = [float(r[2]) if r[2] is not None else np.nan for r in rows]
    pure = purchase_summary(ids, days, amounts, as_of=day, time_unit="days")
    last = {}
    orders: dict[int, int] = {}
    spent: dict[int, float] = {}
    for customer_id, local_day, amount in zip(ids, days, amounts, strict=True):
        last[customer_id] = max(last.get(customer_id, local_day), local_day)
        orders[customer_id] = orders.get(customer_id, 0) + 1
        spent[customer_id] = spent.get(customer_id, 0.0) + (0.0 if np.isnan(amount) else amount)
    index = list(pure.index)
    return {
        "customer_id": np.array(index, dtype=np.int64),
        "frequency": pure["frequency"].to_numpy(),
        "recency_days": pure["recency"].to_numpy(),
        "age_days": pure["age"].to_numpy(),
        "monetary": pure["monetary"].to_numpy(),
        "days_since_last": np.array([(day - last[c]).days for c in index], dtype=float),
        "orders": np.array([orders[c] for c in index], dtype=float),
        "spent": np.array([spent[c] for c in index]),
    }


def _read(day: datetime.date, order_type: str = "order") -> dict[str, np.ndarray]:
    with connection.cursor() as cursor:
        return purchase_summary_arrays(
            cursor,
            as_of=day,
            moment=as_of_moment(day),
            order_type=order_type,
            time_zone=django_settings.TIME_ZONE,
        )


def _assert_same(day: datetime.date) -> None:
    got, want = _read(day), _expected(day)
    assert list(got["customer_id"]) == list(want["customer_id"]), day
    for name in ("frequency", "recency_days", "age_days", "days_since_last", "orders"):
        assert np.array_equal(got[name], want[name]), (day, name, got[name], want[name])
    for name in ("monetary", "spent"):
        assert np.allclose(got[name], want[name], rtol=1e-12, atol=1e-9), (day, name, got[name], want[name])


def _events(customers: list[Customer], rows: list[tuple[int, str, float, Any]]) -> None:
    alive = set(Customer.objects.values_list("pk", flat=True))
    factories.events(
        (customers[i], kind, BASE + datetime.timedelta(hours=hours), amount)
        for i, kind, hours, amount in rows
        if customers[i].pk in alive
    )


def _run(customers: list[Customer], action: str, arg: Any) -> None:
    ids = list(Event.objects.order_by("id").values_list("id", flat=True))
    if action == "import":
        _events(customers, arg)
    elif action == "catch_up":
        purchase_days_catch_up(order_type="order", time_zone=django_settings.TIME_ZONE)
    elif action == "delete" and ids:
        Event.objects.filter(pk__in=[ids[i % len(ids)] for i in arg]).delete()
    elif action == "move" and ids:
        picked, to = arg
        target = customers[to]
        if Customer.objects.filter(pk=target.pk).exists():
            Event.objects.filter(pk__in=[ids[i % len(ids)] for i in picked]).update(customer=target)
    elif action == "edit" and ids:
        index, hours, amount = arg
        Event.objects.filter(pk=ids[index % len(ids)]).update(
            occurred_at=BASE + datetime.timedelta(hours=hours), amount=amount
        )
    elif action == "drop_customer":
        Customer.objects.filter(pk=customers[arg].pk).delete()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=event_rows, steps=st.lists(step, max_size=6))
def test_the_summary_read_through_purchase_days_is_the_pure_summary_after_any_writes(first, steps):
    # given four customers and orders imported, then counted into the purchase days
    with transaction.atomic():
        customers = [factories.customer() for _ in range(4)]
        _events(customers, first)
        purchase_days_catch_up(order_type="order", time_zone=django_settings.TIME_ZONE)
        for action, arg in steps:
            # when events are written any way, caught up or not
            _run(customers, action, arg)
            # then the summary as of any day is the pure one over the orders as they are now
            for day in AS_OF_DAYS:
                _assert_same(day)
        transaction.set_rollback(True)


def test_a_caught_up_customer_is_read_from_the_purchase_days_not_from_the_orders():
    # given a customer whose orders were caught up
    customer = factories.customer()
    factories.events([(customer, "order", BASE, Decimal("10")), (customer, "order", BASE, Decimal("5"))])
    assert purchase_days_catch_up(order_type="order", time_zone=django_settings.TIME_ZONE) == "rebuilt"
    row = CustomerPurchaseDays.objects.get(customer=customer)
    assert (row.days, row.orders, row.spent, row.first_day_spent) == (1, 2, Decimal("15"), Decimal("15"))
    # when the row is changed behind the triggers' back (only to show where the numbers come from)
    CustomerPurchaseDays.objects.filter(customer=customer).update(orders=7)
    # then the summary reads it, and a later order of that customer is read from the orders again
    assert list(_read(datetime.date(2026, 6, 1))["orders"]) == [7]
    factories.events([(customer, "order", BASE + datetime.timedelta(days=3), Decimal("1"))])
    assert list(_read(datetime.date(2026, 6, 1))["orders"]) == [3]
    assert purchase_days_catch_up(order_type="order", time_zone=django_settings.TIME_ZONE) == "caught up"
    assert CustomerPurchaseDays.objects.get(customer=customer).orders == 3


def test_truncating_the_events_empties_the_purchase_days_and_later_orders_are_counted():
    # given counted orders
    customer = factories.customer()
    factories.events([(customer, "order", BASE, Decimal("10"))])
    purchase_days_catch_up(order_type="order", time_zone=django_settings.TIME_ZONE)
    # when the events are truncated and new ones imported
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses with deferred checks pending
        cursor.execute("TRUNCATE crm_tags_event")
    assert not CustomerPurchaseDays.objects.exists()
    factories.events([(customer, "order", BASE + datetime.timedelta(days=1), Decimal("4"))])
    # then the summary is the new orders' alone, before and after a catch-up
    _assert_same(datetime.date(2026, 6, 1))
    assert purchase_days_catch_up(order_type="order", time_zone=django_settings.TIME_ZONE) == "rebuilt"
    _assert_same(datetime.date(2026, 6, 1))


def test_another_order_event_type_is_read_from_its_events_until_rebuilt():
    # given purchase days counting "order"
    customer = factories.customer()
    factories.events([(customer, "order", BASE, Decimal("10")), (customer, "purchase", BASE, Decimal("3"))])
    purchase_days_catch_up(order_type="order", time_zone=django_settings.TIME_ZONE)
    # when the value fit counts "purchase" instead
    day = datetime.date(2026, 6, 1)
    # then it reads the purchases from the events, and after a rebuild from the purchase days
    assert list(_read(day, "purchase")["spent"]) == [3.0]
    assert purchase_days_catch_up(order_type="purchase", time_zone=django_settings.TIME_ZONE) == "rebuilt"
    assert list(_read(day, "purchase")["spent"]) == [3.0]
    assert CustomerPurchaseDays.objects.get(customer=customer).spent == Decimal("3")


def _two_buyers() -> tuple[Customer, Customer]:
    older, newer = factories.customer(external_id="OLDER"), factories.customer(external_id="NEWER")
    factories.events(
        [
            (older, "order", BASE, Decimal("10")),
            (older, "order", BASE + datetime.timedelta(days=3), Decimal("4")),
            (newer, "order", BASE + datetime.timedelta(hours=2), Decimal("7")),
            (newer, "order", BASE + datetime.timedelta(days=9), Decimal("5")),
        ]
    )
    purchase_days_catch_up(order_type="order", time_zone=django_settings.TIME_ZONE)
    return older, newer


def test_a_merge_and_its_unmerge_keep_the_purchase_days_exact():
    from crm_tags.identity.merge import customers_merge, customers_unmerge

    # given two caught-up buyers
    older, newer = _two_buyers()
    # when one is merged into the other, then the survivor's purchase days count both people's orders
    # (three days: both bought on the local day of BASE, which is one purchase of one person now)
    merge = customers_merge(survivor=older, loser=newer, by=None, rebuild=False)
    assert set(CustomerPurchaseDays.objects.values_list("customer_id", "days")) == {(older.pk, 3)}
    for day in AS_OF_DAYS:
        _assert_same(day)
    # and when the merge is undone, each has their own again
    customers_unmerge(survivor=older, merge_id=merge.pk, by=None, rebuild=False)
    assert set(CustomerPurchaseDays.objects.values_list("customer_id", "days")) == {
        (older.pk, 2),
        (newer.pk, 2),
    }
    for day in AS_OF_DAYS:
        _assert_same(day)


def test_an_erasure_moves_the_purchase_days_to_the_surrogate_and_nothing_points_at_the_person():
    from crm_tags.erasure import customer_delete, customer_records_move, surrogate_create

    # given two caught-up buyers
    person, other = _two_buyers()
    # when the person is erased (events moved to an anonymous surrogate, the row deleted)
    surrogate = surrogate_create(customer=person)
    customer_records_move(customer=person, surrogate=surrogate, at=timezone.now())
    customer_delete(customer=person)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign keys checked now
    # then the surrogate's purchase days are the person's, and the summary is still exact
    assert set(CustomerPurchaseDays.objects.values_list("customer_id", "days")) == {
        (surrogate.pk, 2),
        (other.pk, 2),
    }
    for day in AS_OF_DAYS:
        _assert_same(day)


def test_retention_keeps_the_purchase_days_exact():
    from crm_tags.retention import events_delete_before

    # given two caught-up buyers
    _two_buyers()
    # when the orders before the third day are deleted by retention
    events_delete_before(before=BASE + datetime.timedelta(days=2), batch=1)
    # then the purchase days count the orders left
    assert sorted(CustomerPurchaseDays.objects.values_list("days", flat=True)) == [1, 1]
    for day in AS_OF_DAYS:
        _assert_same(day)
