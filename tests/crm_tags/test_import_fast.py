"""The events import's fast path (Arrow parses and checks, COPY loads) gives exactly what the row-by-row
validator gives: the same rows and totals for good files, the same row/column errors for bad ones."""

import io

import pytest

from config.csv_import import ImportRejected
from crm_tags import importers, services
from crm_tags.models import CustomerEventTotal, Event

pytestmark = pytest.mark.django_db

HEAD = "customer_external_id,event_type,occurred_at,amount,channel"
CUSTOMERS = "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\nA1,Ann,,,,,,,\nA2,Bo,,,,,,,\n"

CASES = {
    "plain": (
        f"{HEAD},sku,note\n"
        "A1,order,2026-03-01T10:00:00+08:00,12.5,web,S1,\n"
        "A1,page_view,2026-03-01,,app,,x\n"
        "A2,order,2026-03-02 09:30,-3,web,,\n"
        "A2,order,2026-03-02T09:30:00Z,+4.25,,S2,y\n"
        "A2,visit,2026-03-02T09:30:00.5-05:30,0,web,,\n"
        "A1,visit,2026-03-02T09:30:00.123456+0100,7,web,,\n"
        " A1 , order ,  2026-03-03T01:02:03+08  , 10 , web ,,\n"
    ),
    "no trailing newline, CRLF": f"{HEAD}\r\nA1,order,2026-03-01,1,web\r\nA2,order,2026-03-02,2,web",
    "feb 30 passes the regex but not the cast": f"{HEAD}\nA1,order,2026-03-01,1,web\nA1,order,2026-02-30,1,web\n",
    "month 13": f"{HEAD}\nA1,order,2026-13-01T10:00,1,web\n",
    "hour 24": f"{HEAD}\nA1,order,2026-03-01T24:00:00,1,web\n",
    "unknown customer": f"{HEAD}\nA1,order,2026-03-01,1,web\nZZ,order,2026-03-01,1,web\n",
    "bad type and amount": f"{HEAD}\nA1,bad type!,2026-03-01,1,web\nA1,order,2026-03-01,ten,web\n",
    "amount rounding and exponent": f"{HEAD}\nA1,order,2026-03-01,1.005,web\nA1,order,2026-03-01,1e3,web\n",
    "other ISO forms": f"{HEAD}\nA1,order,20260301T1000,1,web\nA1,order,2026-03-01T10,1,web\n",
    "naive time in a DST year of the default zone": f"{HEAD}\nA1,order,1988-06-01T12:00,1,web\n",
    "blank line": f"{HEAD}\nA1,order,2026-03-01,1,web\n\nA2,order,2026-03-01,1,web\n",
    "end-of-data marker line": f"{HEAD}\nA1,order,2026-03-01,1,web\n\\.\nA2,order,2026-03-01,1,web\n",
    "quoted": f'{HEAD},note\nA1,order,2026-03-01,1,"we,b","say ""hi"""\n',
    "missing and extra cells": f"{HEAD}\nA1,order,2026-03-01,1\nA1,order,2026-03-01,1,web,x\n",
    "too long": f"{HEAD}\n{'A' * 65},order,2026-03-01,1,web\nA1,order,2026-03-01,1,{'w' * 65}\n",
    "header only": f"{HEAD}\n",
    "unicode, backslashes and inner spaces": (
        f"{HEAD},note,sku\n"
        "A1,order,2026-03-01T10:00:00+08:00,5.,微信,a\\b,\n"
        "A2,order,2026-03-01T10:00:00.5,.5,web,\u3000x y,S\n"
        "A2,page_view,2026-03-01 10:00:00.123456,,小程序 商城,,\n"
    ),
    "no extra columns: binary COPY rows": (
        f"{HEAD}\nA1,order,2026-03-01T10:00:00+08:00,-12.34,微信\nA2,page_view,2026-03-01,,\n"
        "A1,order,2026-03-01T10:00:00.123456Z,999999999999.99,a\\b\n"
        "A2,order,1999-12-31T23:59:59-05:30,0.05,web\nA1,x.y-z,2026-03-02 10:00,100,小程序 商城\n"
        "A2,order,2026-03-01T00:00:00Z,-0.5,web\n"
    ),
    "padded with a non-ASCII space": f"{HEAD}\n\u3000A1,order,2026-03-01,1,web\nA2,order,2026-03-01,1,web\u00a0\n",
    "control character in a property": f"{HEAD},note\nA1,order,2026-03-01,1,web,a\x01b\n",
    "offsets at the edges": (
        f"{HEAD}\nA1,order,2026-03-01T10:00+23:59,1,web\nA1,order,2026-03-01T10:00-0000,+7,web\n"
        "A1,order,2026-03-01T10:00+08:60,-0,web\n"
    ),
    "year 0": f"{HEAD}\nA1,order,0000-01-01T00:00:00Z,1,web\n",
    "header ended by a bare CR": f"{HEAD}\rA1,order,2026-03-01,1,web\nA2,order,2026-03-02,2,web\n",
    "a row ended by a bare CR": f"{HEAD}\nA1,order,2026-03-01,1,web\rA2,order,2026-03-02,2,web\n",
    "not utf-8": None,
}


def _snapshot() -> tuple[list, list]:
    events = sorted(
        (
            e.customer.external_id,
            e.event_type,
            e.occurred_at,
            e.amount,
            e.channel,
            sorted(e.properties.items()),
        )
        for e in Event.objects.select_related("customer")
    )
    totals = sorted(
        CustomerEventTotal.objects.values_list(
            "customer__external_id",
            "event_type",
            "events",
            "amount_count",
            "amount_sum",
            "amount_min",
            "amount_max",
            "first_at",
            "last_at",
        )
    )
    return events, totals


def _run(content: str | bytes, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple:
    monkeypatch.setattr(importers, "FAST_EVENTS", fast)
    upload = io.BytesIO(content) if isinstance(content, bytes) else io.StringIO(content)
    try:
        result = services.events_import(upload=upload, by=None)
    except ImportRejected as exc:
        outcome: tuple = ("rejected", [(e.row, e.column, e.message) for e in exc.errors])
    else:
        outcome = ("imported", result.rows, result.customers)
    snapshot = _snapshot()
    CustomerEventTotal.objects.all().delete()
    Event.objects.all().delete()
    return outcome, snapshot


@pytest.fixture
def taken(monkeypatch) -> list[int]:
    """The row counts of the imports that took the fast path to the end."""
    calls: list[int] = []
    original = importers._fast_import_events

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(result.rows)
        return result

    monkeypatch.setattr(importers, "_fast_import_events", spy)
    return calls


# The good files the fast path must carry to the end itself (the others may go to the validator): the
# comparison then covers its own conversions (escaping, properties, zones, line ends).
TAKES_THE_FAST_PATH = {
    "no trailing newline, CRLF",
    "unicode, backslashes and inner spaces",
    "no extra columns: binary COPY rows",
}


@pytest.mark.parametrize("bulk", [False, True], ids=["streamed", "bulk"])
@pytest.mark.parametrize("name", list(CASES))
def test_fast_path_equals_the_validating_path(name, bulk, taken, monkeypatch):
    # bulk: the indexes are rebuilt, the blocks typed two at a time and the rows copied in index order
    if bulk:
        monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
        monkeypatch.setattr(importers, "MONTH_MIN_ROWS", 1)  # every month loaded detached
    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    content = CASES[name]
    if content is None:
        content = (HEAD + "\nA1,order,2026-03-01,1,w\xe9b\n").encode("latin-1")
    fast = _run(content, fast=True, monkeypatch=monkeypatch)
    assert bool(taken) is (name in TAKES_THE_FAST_PATH)
    slow = _run(content, fast=False, monkeypatch=monkeypatch)
    assert fast == slow
    if name == "plain":
        assert fast[0] == ("imported", 7, 2)
    if name == "unicode, backslashes and inner spaces":
        assert fast[0] == ("imported", 3, 2)


def test_plain_file_takes_the_fast_path_and_bytes_with_a_bom_work(taken):
    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    content = (
        "\ufeff"
        + HEAD
        + ",sku\nA1,order,2026-03-01,12.5,web,S1\nA2,page_view,2026-03-01T10:00:00+08:00,,web,\n"
    )
    services.events_import(upload=io.BytesIO(content.encode()), by=None)
    assert taken == [2]
    assert sorted(Event.objects.values_list("customer__external_id", "properties")) == [
        ("A1", {"sku": "S1"}),
        ("A2", {}),
    ]
    assert CustomerEventTotal.objects.get(customer__external_id="A1").amount_sum == 12.5


def test_feb_30_gives_a_row_error_and_imports_nothing():
    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    csv = f"{HEAD}\nA1,order,2026-03-01,1,web\nA2,order,2026-02-30T10:00:00+08:00,1,web\n"
    with pytest.raises(ImportRejected) as caught:
        services.events_import(upload=io.StringIO(csv), by=None)
    assert [(e.row, e.column) for e in caught.value.errors] == [(3, "occurred_at")]
    assert (Event.objects.count(), CustomerEventTotal.objects.count()) == (0, 0)


def test_fast_path_with_the_bulk_index_rebuild(monkeypatch):
    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    services.events_import(
        upload=io.StringIO(f"{HEAD}\nA1,order,2026-03-01,1,web\nA1,order,2026-03-02,2,web\n"), by=None
    )
    total = CustomerEventTotal.objects.get()
    assert (total.events, total.amount_sum) == (2, 3)
    # a second big load adds to the totals (hash-joined merge) and creates the missing ones
    services.events_import(
        upload=io.StringIO(f"{HEAD}\nA1,order,2026-03-03,4,web\nA2,order,2026-03-04,5,web\n"), by=None
    )
    totals = dict(CustomerEventTotal.objects.values_list("customer__external_id", "amount_sum"))
    assert totals == {"A1": 7, "A2": 5}
    assert CustomerEventTotal.objects.get(customer__external_id="A1").events == 3
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'crm_tags_event' AND indexname LIKE 'crm_event_%%'"
        )
        assert cursor.fetchone()[0] == 2


@pytest.mark.parametrize("bulk", [False, True], ids=["streamed", "bulk"])
@pytest.mark.parametrize("every_customer", [True, False], ids=["customer map", "customer lookup"])
def test_a_file_read_in_many_blocks_adds_its_totals_up_across_blocks(
    every_customer, bulk, taken, monkeypatch
):
    """Blocks of a few lines: every block is typed (two at a time on a bulk load) and copied, and the
    totals of a customer whose events fall in several blocks are added up once; the customer ids
    come from a map of every customer or (a big table) from a lookup of the ones the file names."""
    if bulk:
        monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
        monkeypatch.setattr(importers, "MONTH_MIN_ROWS", 1)
    monkeypatch.setattr(importers, "FAST_BLOCK", 64)
    monkeypatch.setattr(importers, "FILE_BYTES_PER_CUSTOMER", 1 if every_customer else 10**9)
    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    scans = []
    scan = importers._scan_file
    monkeypatch.setattr(importers, "_scan_file", lambda *a: scans.append(1) or scan(*a))
    lines = [
        f"A{1 + i % 2},{'order' if i % 3 else 'page_view'},2026-03-{1 + i % 28:02d}T10:00:00Z,{i}.5,web"
        for i in range(40)
    ]
    content = HEAD + ",note\n" + "".join(f"{line},n{i % 4 or ''}\n" for i, line in enumerate(lines))
    fast = _run(content, fast=True, monkeypatch=monkeypatch)
    assert taken == [40]
    assert len(scans) == (0 if every_customer else 1)
    slow = _run(content, fast=False, monkeypatch=monkeypatch)
    assert fast == slow
    assert fast[0] == ("imported", 40, 2)


def _keys(table: str = "crm_tags_event") -> list[tuple[str, bool]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid), convalidated FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        return [(definition.split(" REFERENCES ")[0], valid) for definition, valid in cursor.fetchall()]


@pytest.mark.parametrize("months", [False, True], ids=["through the parent", "month by month"])
def test_bulk_load_into_the_partitioned_events_checks_the_customer_key_in_the_load(
    months, monkeypatch, django_capture_on_commit_callbacks
):
    # Postgres takes no NOT VALID foreign key on a partitioned table: the events' key is checked in the
    # load itself (a detached month's when it is attached again, other rows row by row). That proves
    # the totals' customers, which are the events' own: the totals' key comes back NOT VALID and is
    # checked after commit.
    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    if months:
        monkeypatch.setattr(importers, "MONTH_MIN_ROWS", 1)
    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    with django_capture_on_commit_callbacks() as callbacks:
        services.events_import(upload=io.StringIO(f"{HEAD}\nA1,order,2026-03-01,1,web\n"), by=None)
    assert _keys() == [("FOREIGN KEY (customer_id)", True)]
    assert _keys("crm_tags_customereventtotal") == [("FOREIGN KEY (customer_id)", False)]
    for callback in callbacks:
        callback()
    assert _keys("crm_tags_customereventtotal") == [("FOREIGN KEY (customer_id)", True)]
    assert Event.objects.count() == 1


@pytest.mark.parametrize("months", [False, True], ids=["through the parent", "month by month"])
def test_a_deleted_customer_cannot_leave_events_behind_the_unchecked_key(months, monkeypatch):
    # the events' key refuses a customer that is gone: row by row through the parent, or when its month
    # is attached again
    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    if months:
        monkeypatch.setattr(importers, "MONTH_MIN_ROWS", 1)
    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    known = importers._customer_map

    def map_then_delete(cursor, ids):
        found = known(cursor, ids)
        cursor.execute("DELETE FROM crm_tags_customer WHERE external_id = 'A2'")
        return found

    monkeypatch.setattr(importers, "_customer_map", map_then_delete)
    from django.db import IntegrityError
    from psycopg.errors import ForeignKeyViolation

    with pytest.raises((IntegrityError, ForeignKeyViolation)):
        services.events_import(upload=io.StringIO(f"{HEAD}\nA2,order,2026-03-01,1,web\n"), by=None)


def _physical_and_key_order(table: str, columns: str) -> tuple[list, list]:
    """The rows as stored (ctid order) and as the database sorts them by `columns`, partition by partition
    (the events' months: each is stored in its own key order)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} ORDER BY tableoid, ctid")  # noqa: S608
        stored = cursor.fetchall()
        cursor.execute(f"SELECT {columns} FROM {table} ORDER BY tableoid, {columns}")  # noqa: S608
        return stored, cursor.fetchall()


@pytest.mark.parametrize("long_span", [False, True], ids=["one sort key", "two sort keys"])
@pytest.mark.parametrize("extras", [False, True], ids=["binary", "text"])
def test_a_bulk_load_stores_events_and_totals_in_the_order_of_their_keys(
    extras, long_span, taken, monkeypatch
):
    """The covering index's order (event type as the database sorts it, then time) for the events, the
    key's (customer, event type) for a first load's totals: their indexes are built over rows
    already in order. Rows of one type with other shapes (no amount, longer channels) stay in time
    order, and a type first seen in a later block still sorts by its name. Copied 2 rows at a time;
    times more than 142 years apart (2^52 µs) do not fit one int64 key with the type and sort by both."""
    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    monkeypatch.setattr(importers, "FAST_BLOCK", 128)
    monkeypatch.setattr(importers, "INDEX_ORDER_CHUNK", 2)
    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    rows = [
        ("A2", "visit", "2026-03-05T10:00:00Z", "", "web"),
        ("A1", "visit", "2026-03-01T10:00:00Z", "1", "a-longer-channel"),
        ("A2", "order", "2026-03-04T10:00:00Z", "", ""),
        ("A1", "order", "2026-03-02T10:00:00Z", "2.5", "web"),
        ("A1", "visit", "2026-03-03T10:00:00Z", "", "app"),
        ("A2", "order", "2026-03-01T10:00:00Z", "7", "wechat"),
        ("A1", "Zed", "2026-03-09T10:00:00Z", "", "web"),
        ("A2", "apply", "2026-03-08T10:00:00Z", "3", "web"),
        ("A1", "order", "2026-03-03T10:00:00Z", "", "a-longer-channel"),
    ]
    if long_span:
        rows.append(("A2", "visit", "1850-01-01T10:00:00Z", "4", "web"))
    content = HEAD + (",note\n" if extras else "\n")
    content += "".join(",".join(row) + (",x\n" if extras else "\n") for row in rows)
    services.events_import(upload=io.StringIO(content), by=None)
    assert taken == [len(rows)]
    stored, in_key_order = _physical_and_key_order("crm_tags_event", "event_type, occurred_at")
    assert stored == in_key_order
    assert len(stored) == len(rows)
    stored, in_key_order = _physical_and_key_order("crm_tags_customereventtotal", "customer_id, event_type")
    assert stored == in_key_order
    assert len(stored) == 6


def test_padded_customer_ids_in_the_table_go_to_the_validator(taken):
    # the fast path only looks up unpadded ids, so it needs no check of the file's ids of its own
    from crm_tags.models import Customer

    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    Customer.objects.create(external_id=" A3", name="padded")
    with pytest.raises(ImportRejected) as caught:
        services.events_import(upload=io.StringIO(f"{HEAD}\n A3,order,2026-03-01,1,web\n"), by=None)
    assert taken == []
    assert [(e.row, e.column) for e in caught.value.errors] == [(2, "customer_external_id")]


def test_the_bulk_load_works_in_debug_mode(monkeypatch, settings):
    # DEBUG=true wraps cursors in Django's debug wrapper, whose copy() takes no writer (seed_demo failed)
    settings.DEBUG = True
    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    services.customers_import(upload=io.StringIO(CUSTOMERS), by=None)
    services.events_import(
        upload=io.StringIO(f"{HEAD}\nA1,order,2026-03-01,1,web\nA2,order,2026-03-02,2,web\n"), by=None
    )
    assert Event.objects.count() == 2
