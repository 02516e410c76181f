"""The purchase days' catch-up and an insert in flight (crm_tags.value.purchases): an order event whose id
was drawn before a later one committed must not fall under the watermark uncounted. The catch-up waits
for the writer (the events' SHARE lock), then counts it. Writers run on connections of their own."""

import datetime
import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from crm_tags.models import CustomerPurchaseDays, PurchaseDaysUpkeep
from crm_tags.value.purchases import purchase_days_catch_up
from tests.crm_tags import factories
from tests.crm_tags.test_value_purchases import _assert_same

pytestmark = pytest.mark.django_db(transaction=True)

BASE = datetime.datetime(2026, 5, 1, 4, 0, tzinfo=datetime.UTC)
DEADLINE_SECONDS = 30.0
INSERT = (
    "INSERT INTO crm_tags_event (customer_id, event_type, occurred_at, amount, channel, properties) "
    "VALUES (%s, 'order', %s, 5, 'web', '{}') RETURNING id"
)


def _connect(autocommit: bool) -> psycopg.Connection:
    params = {
        k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")
    }
    return psycopg.connect(**params, autocommit=autocommit)


def test_a_catch_up_waits_for_an_insert_in_flight_and_counts_it():
    # given two buyers whose orders are counted
    early, late = factories.customer(), factories.customer()
    factories.events([(early, "order", BASE, 10), (late, "order", BASE, 10)])
    purchase_days_catch_up(order_type="order", time_zone=settings.TIME_ZONE)
    errors: list[BaseException] = []
    catch_up_pid: list[int] = []
    with _connect(autocommit=False) as writer, _connect(autocommit=True) as other, _connect(True) as observer:
        # when one writer draws an order's id and has not committed, another commits a later id
        first_id = writer.execute(INSERT, [early.pk, BASE + datetime.timedelta(days=2)]).fetchone()[0]
        second_id = other.execute(INSERT, [late.pk, BASE + datetime.timedelta(days=3)]).fetchone()[0]
        assert first_id < second_id

        def catch_up() -> None:
            try:
                connection.ensure_connection()
                catch_up_pid.append(connection.connection.info.backend_pid)
                purchase_days_catch_up(order_type="order", time_zone=settings.TIME_ZONE)
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)
            finally:
                connection.close()

        # and the catch-up starts meanwhile
        thread = threading.Thread(target=catch_up, daemon=True)
        thread.start()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            state = (
                observer.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", catch_up_pid
                ).fetchone()
                if catch_up_pid
                else None
            )
            if state and state[0] == "Lock":
                break
            assert time.monotonic() < deadline, "the catch-up never waited for the writer"
            assert thread.is_alive() or not catch_up_pid, "the catch-up did not wait for the writer"
            time.sleep(0.01)
        writer.commit()
        thread.join(DEADLINE_SECONDS)
    # then the catch-up waited for the writer's commit and counted both orders
    assert not thread.is_alive() and errors == []
    assert PurchaseDaysUpkeep.objects.get(pk=1).watermark == second_id
    assert dict(CustomerPurchaseDays.objects.values_list("customer_id", "orders")) == {
        early.pk: 2,
        late.pk: 2,
    }
    _assert_same(datetime.date(2026, 6, 1))
