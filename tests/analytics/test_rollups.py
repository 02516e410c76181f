"""The rollups stay exact: after inserts, updates, deletes, imports and compaction they equal a full
recount (the backfill), and every chart answers the same from the rollups as from the raw rows."""

import dataclasses
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection

from analytics import customer_figures as cf
from analytics import marketing_figures as mf
from analytics import rollups
from analytics import support_figures as sf
from analytics.filters import DashboardFilters
from campaigns import figures as fig
from campaigns.models import DailyMetric
from campaigns.services import metrics_import
from crm_tags.models import TagMembershipChange
from tests.analytics.factories import (
    at,
    campaign_make,
    customer_make,
    history_make,
    metric_make,
    order_make,
    tag_make,
    ticket_make,
)
from tickets.models import Ticket

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)
S = Ticket.Status
D = dt.date


def _state() -> dict[str, set[tuple]]:
    """Every rollup folded per key (zero keys left out): what any reader of the rollups sees."""
    out = {}
    with connection.cursor() as cursor:
        for table, (key, counters) in rollups.DELTA_TABLES.items():
            sums = ", ".join(f"sum({c})" for c in counters)
            nonzero = " OR ".join(f"sum({c}) <> 0" for c in counters)
            cursor.execute(f"SELECT {key}, {sums} FROM {table} GROUP BY {key} HAVING {nonzero}")  # noqa: S608
            out[table] = set(cursor.fetchall())
    return out


def _assert_exact() -> dict[str, set[tuple]]:
    """The incrementally kept rollups equal a recount from scratch, and compaction changes no sum."""
    kept = _state()
    rollups.compact()
    assert _state() == kept
    rollups.rebuild()
    assert _state() == kept
    return kept


@pytest.fixture
def tickets(requester, other_requester, agent):
    t = [
        ticket_make(
            requester=requester,
            created_at=at(2, 2),
            urgency="urgent",
            first_response_at=at(2, 3),
            first_response_due=at(2, 2, 30),
            resolved_at=at(2, 5),
            resolution_due=at(2, 6),
            status=S.RESOLVED,
        ),
        ticket_make(requester=requester, created_at=at(2, 17), first_response_due=at(2, 21)),
        ticket_make(requester=other_requester, created_at=at(5, 4), type="data_support"),
    ]
    return t


def test_ticket_rollups_follow_inserts_updates_and_deletes(tickets, other_requester):
    first, second, third = tickets
    _assert_exact()
    # a service-style save, a bulk update, a move to another team, a delete
    second.first_response_at = at(2, 18)
    second.resolved_at = at(4, 1)
    second.resolution_due = at(3, 17)
    second.status = S.RESOLVED
    second.save()
    Ticket.objects.filter(pk=third.pk).update(urgency="urgent", created_at=at(6, 4))
    first.team = other_requester.team
    first.save()
    state = _assert_exact()
    Ticket.objects.filter(pk=first.pk).delete()
    _assert_exact()
    # 02:17 UTC on 2 Nov is 3 Nov in Shanghai: the second ticket's opened / resolved-late counts
    assert (D(2026, 11, 3), second.team_id, "routine", "incident", "web", None, 1, 1, 1, 0, 0, 1) in state[
        rollups.CREATED
    ]
    assert (D(2026, 11, 4), second.team_id, "routine", "incident", "web", None, 1, 0) in state[
        rollups.RESOLVED
    ]


def _raw(monkeypatch):
    monkeypatch.setattr(rollups, "usable", lambda tz: False)


@pytest.mark.parametrize(
    "change", [{}, {"urgency": "urgent"}, {"date_from": D(2026, 11, 3), "date_to": D(2026, 11, 4)}]
)
def test_support_charts_are_the_same_from_rollups_and_raw_rows(tickets, monkeypatch, november, change):
    filters = dataclasses.replace(november, **change)
    now = at(20)
    computed = {
        "kpis": sf.kpis(filters, staff=True),
        "inflow": sf.inflow_outflow(filters, staff=True),
        "sla": sf.sla_attainment(filters, staff=True, now=now),
    }
    _raw(monkeypatch)
    assert computed == {
        "kpis": sf.kpis(filters, staff=True),
        "inflow": sf.inflow_outflow(filters, staff=True),
        "sla": sf.sla_attainment(filters, staff=True, now=now),
    }
    assert computed["kpis"]["tiles"][0]["value"] == (3 if not change else 1)  # opened


def _metrics_csv(rows: list[tuple]) -> io.StringIO:
    lines = ["date,channel,spend,impressions,clicks,leads,conversions,revenue"]
    lines += [",".join(str(v) for v in row) for row in rows]
    return io.StringIO("\n".join(lines) + "\n")


@pytest.fixture
def imported(requester, other_requester):
    spring = campaign_make(owner=requester, code="spring")
    autumn = campaign_make(owner=other_requester, code="autumn")
    metrics_import(
        campaign=spring,
        upload=_metrics_csv(
            [
                ("2026-10-30", "wechat", "10.50", 100, 10, 2, 1, "30"),
                ("2026-11-02", "wechat", "20", 200, 20, 4, 2, "10"),
                ("2026-11-02", "douyin", "5", 50, 5, 1, 0, "0"),
                ("2026-12-01", "douyin", "7", 70, 7, 1, 1, "9"),
            ]
        ),
        by=requester,
    )
    metric_make(
        campaign=autumn, date=D(2026, 11, 20), spend=Decimal("40"), impressions=10, revenue=Decimal("80")
    )
    metric_make(campaign=autumn, date=D(2026, 10, 31), channel="douyin", spend=Decimal("1"))
    return spring, autumn


def test_metric_rollups_follow_imports_that_replace_days(imported, requester):
    spring, autumn = imported
    _assert_exact()
    # re-importing 2 Nov replaces both of its rows with one
    metrics_import(
        campaign=spring, upload=_metrics_csv([("2026-11-02", "tmall", "3", 30, 3, 1, 1, "6")]), by=requester
    )
    DailyMetric.objects.filter(campaign=autumn, date=D(2026, 11, 20)).update(spend=Decimal("45"))
    state = _assert_exact()
    assert (D(2026, 11, 2), "tmall", Decimal("3.00"), Decimal("6.00"), 30, 3, 1, 1, 1) in state[
        rollups.CHANNEL_DAY
    ]
    assert not any(row[0] == D(2026, 11, 2) and row[1] == "wechat" for row in state[rollups.CHANNEL_DAY])
    autumn.delete()  # its metric rows go with it (cascade)
    _assert_exact()


def _orm_ranking(filters: DashboardFilters) -> list[tuple]:
    rows = (
        mf._metrics(filters)
        .values("campaign__code")
        .annotate(**fig.totals_annotations())
        .order_by("-spend", "campaign__code")
    )
    return [(r["campaign__code"], r["spend"], r["revenue"], r["impressions"], r["conversions"]) for r in rows]


@pytest.mark.parametrize(
    "days",
    [
        (D(2026, 10, 15), D(2026, 12, 10)),  # partial October, all November, partial December
        (D(2026, 11, 1), D(2026, 11, 30)),  # one whole month
        (D(2026, 11, 2), D(2026, 11, 20)),  # inside one month
        (D(2026, 10, 31), D(2026, 11, 1)),
    ],
)
@pytest.mark.parametrize("change", [{}, {"channel": "douyin"}, {"campaign": "autumn"}])
def test_marketing_charts_are_the_same_from_rollups_and_raw_rows(imported, monkeypatch, days, change):
    filters = DashboardFilters(date_from=days[0], date_to=days[1], tz="Asia/Shanghai", **change)
    ranking = [
        (r["code"], r["spend"], r["revenue"], r["impressions"], r["conversions"])
        for r in sorted(mf._campaign_ranking(filters), key=lambda r: r["by_code"])
    ]
    assert ranking == _orm_ranking(filters)
    computed = [
        mf.kpis(filters, staff=True),
        mf.by_channel(filters, staff=True),
        mf.by_channel_over_time(filters, staff=True),
        mf.by_campaign(filters, staff=True),
        mf.budget_burn(filters, staff=True, today=D(2026, 11, 15)),
    ]
    monkeypatch.setattr(mf, "_use_channel_days", lambda filters: False)
    assert computed[:3] == [
        mf.kpis(filters, staff=True),
        mf.by_channel(filters, staff=True),
        mf.by_channel_over_time(filters, staff=True),
    ]
    # all-time spend of each running campaign (from the monthly rollup)
    assert sorted(computed[4]["spend"]) == ([41.0] if change.get("campaign") else [41.0, 42.5])


def test_tag_rollup_follows_history_inserts_and_deletes(monkeypatch, november):
    vip, churn = tag_make("vip", members_count=2), tag_make("churn", members_count=1)
    a, b = customer_make("a"), customer_make("b")
    history_make(vip, a, "entered", at(20, 4, month=10))
    history_make(vip, b, "entered", at(2, 17))  # 3 Nov in Shanghai
    history_make(churn, a, "entered", at(5, 4))
    history_make(churn, b, "entered", at(6, 4))
    history_make(churn, b, "exited", at(9, 4))
    TagMembershipChange.objects.bulk_create(
        [TagMembershipChange(tag=vip, customer=b, change="exited", created_at=at(12, 4))]
    )
    _assert_exact()
    TagMembershipChange.objects.filter(tag=churn, change="exited").delete()
    _assert_exact()
    computed = [cf.tag_sizes(november, staff=True), cf.entered_exited(november, staff=True)]
    _raw(monkeypatch)
    assert computed == [cf.tag_sizes(november, staff=True), cf.entered_exited(november, staff=True)]
    vip_sizes = next(s["values"] for s in computed[0]["series"] if s["key"] == "vip")
    assert vip_sizes[0] == 1 and vip_sizes[2] == 2 and vip_sizes[11] == 1


def test_cohorts_pick_up_orders_imported_after_the_last_refresh(monkeypatch):
    filters = DashboardFilters(date_from=D(2026, 9, 1), date_to=D(2026, 11, 30), tz="Asia/Shanghai")
    a = customer_make("a", signup_at=at(10, 4, month=9))
    customer_make("b", signup_at=at(12, 4, month=9))
    order_make(a, at(20, 4, month=9))
    first = cf.cohorts(filters, staff=True)
    assert first["z"] == [[0.5]]
    assert first["orders_as_of"] is not None
    order_make(a, at(3, 4, month=11))  # arrives after the watermark: refreshed at the next request
    second = cf.cohorts(filters, staff=True)
    assert second["z"] == [[0.5, 0.0, 0.5]]
    _raw(monkeypatch)
    raw = cf.cohorts(filters, staff=True)
    assert {k: v for k, v in raw.items() if k != "orders_as_of"} == {
        k: v for k, v in second.items() if k != "orders_as_of"
    }
    # a full refresh (hourly beat) gives the same table
    rollups.refresh_cohorts(full=True)
    monkeypatch.undo()
    assert cf.cohorts(filters, staff=True)["z"] == second["z"]


def test_one_dashboard_request_runs_a_shared_aggregate_once(
    imported, manager, client, django_assert_max_num_queries
):
    """Key figures and funnel share their totals; both campaign charts share one ranking."""
    from django.test.utils import CaptureQueriesContext

    client.force_login(manager)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/analytics/marketing/", {"from": "2026-10-01", "to": "2026-12-31"})
    assert response.status_code == 200
    ranking = [q for q in queries.captured_queries if "by_code" in q["sql"]]
    totals = [
        q for q in queries.captured_queries if rollups.CHANNEL_DAY in q["sql"] and "GROUP BY" not in q["sql"]
    ]
    assert len(ranking) == 1 and len(totals) == 1


def test_percentiles_of_long_ranges_are_postgres_percentile_cont(requester, other_requester, monkeypatch):
    """Ordered scans + interpolation give what percentile_cont gives (ties, 1, 4, 5 and 11 values)."""
    hours = {
        "incident": [1, 2, 2, 3, 5, 8, 8, 8, 13, 21, 34],  # p90 position 9: an exact row, read downwards
        "feature": [4, 1.5, 2.25, 7],
        "consultation": [10],
        "data_support": [1, 2, 3, 4, 10],
    }
    for kind, values in hours.items():
        for i, h in enumerate(values):
            created = at(1 + i, 3, month=10)
            ticket_make(
                requester=requester if i % 2 else other_requester,
                created_at=created,
                type=kind,
                urgency="urgent" if i % 3 == 0 else "routine",
                first_response_at=created + dt.timedelta(hours=h / 2),
                resolved_at=created + dt.timedelta(hours=h) if i != 2 else None,
                status=S.RESOLVED if i != 2 else S.IN_PROGRESS,
            )
    long = DashboardFilters(date_from=D(2026, 9, 1), date_to=D(2026, 12, 31), tz="Asia/Shanghai")
    assert long.grain != "day"
    cases = [
        long,
        dataclasses.replace(long, urgency="urgent"),
        dataclasses.replace(long, team=requester.team_id),
    ]
    ordered = [sf.response_times(f, staff=True) for f in cases]
    _raw(monkeypatch)
    assert ordered == [sf.response_times(f, staff=True) for f in cases]
    values = {
        s["key"]: dict(zip(ordered[0]["x_keys"], s["values"], strict=True)) for s in ordered[0]["series"]
    }
    assert values["first_response_p90"]["incident"] == 10.5  # 21 h / 2
    assert values["first_response_median"]["feature"] == 1.56  # (1.5 + 2.25... ) interpolated, halved
