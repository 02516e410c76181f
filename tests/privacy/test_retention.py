"""Retention: per kind, what is older than its period goes (in batches) and what is younger stays; the
events' lifetime totals and ranks are exact afterwards (compared with a fresh aggregate); 0 keeps
forever."""

import datetime as dt
import os
import time
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from accounts.models import AuditEntry
from analytics.models import ReportJob
from campaigns.models import Conversion, Touchpoint
from crm_tags.models import CustomerEventTotal, Event
from privacy import retention
from privacy.models import PrivacyRequest, UnmaskedAccess
from privacy.tasks import apply_retention
from tests.campaigns.factories import campaign_make
from tests.crm_tags import factories
from tests.privacy import rights_factories as rf

pytestmark = pytest.mark.django_db

NOW = timezone.now()
OLD = NOW - dt.timedelta(days=400)
YOUNG = NOW - dt.timedelta(days=10)


@pytest.fixture
def keep_one_year(settings):
    """Every kind kept a year, in batches of 3 (so that several batches run)."""
    settings.RETENTION_DAYS = {k: 365 for k in retention.KINDS}
    settings.RETENTION_BATCH = 3
    return settings


def _only(settings, kind: str) -> None:
    settings.RETENTION_DAYS = {k: (365 if k == kind else 0) for k in retention.KINDS}


def _fresh_totals() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customer_id, event_type, count(*), count(amount), sum(amount), min(amount), max(amount), "
            "min(occurred_at), max(occurred_at) FROM crm_tags_event GROUP BY 1, 2 ORDER BY 1, 2"
        )
        return cursor.fetchall()


def _totals() -> list[tuple]:
    return list(
        CustomerEventTotal.objects.order_by("customer_id", "event_type").values_list(
            "customer_id",
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


# --- events ------------------------------------------------------------------------------------------


@pytest.fixture
def event_history(django_capture_on_commit_callbacks):
    """Three customers with old and young events of two types (one has only old orders), ranks kept."""
    rf.rule_tag_built("viewers", rf.RANKED_RULE, django_capture_on_commit_callbacks)
    people = [factories.customer() for _ in range(3)]
    rows = []
    for n, person in enumerate(people):
        rows += [(person, "page_view", OLD - dt.timedelta(days=d), None) for d in range(4)]
        rows += [(person, "page_view", YOUNG - dt.timedelta(days=d), None) for d in range(n + 1)]
        rows += [
            (person, "order", OLD - dt.timedelta(days=d), Decimal(f"{10 * (d + 1)}.00")) for d in range(2)
        ]
        if n:
            rows.append((person, "order", YOUNG, Decimal("5.00")))
    factories.events(rows)
    return people


def test_old_events_go_young_stay_and_totals_and_ranks_stay_exact(settings, keep_one_year, event_history):
    # given old and young events with their totals and ranks
    _only(settings, "events")
    young = set(
        Event.objects.filter(occurred_at__gte=NOW - dt.timedelta(days=365)).values_list("id", flat=True)
    )
    # when retention runs
    result = retention.retention_apply(now=NOW)
    # then only the young events are left ...
    assert set(Event.objects.values_list("id", flat=True)) == young
    assert result["events"] == {"deleted": 18, "batches": 6, "partitions_dropped": 0}
    # ... and the totals equal a fresh aggregate of them (the all-old pair has no totals row any more)
    assert _totals() == _fresh_totals()
    assert not CustomerEventTotal.objects.filter(customer=event_history[0], event_type="order").exists()
    # ... and so do the ranks
    from tests.crm_tags.ranks_reference import recounted_ranks, stored_ranks

    assert stored_ranks() == recounted_ranks() and stored_ranks()


def test_zero_days_keeps_events_forever(settings, event_history):
    settings.RETENTION_DAYS = {k: 0 for k in retention.KINDS}
    before = Event.objects.count()
    assert retention.retention_apply(now=NOW) == {}
    assert Event.objects.count() == before


# --- touchpoints and conversions -----------------------------------------------------------------------


def test_old_touchpoints_and_conversions_go(settings, keep_one_year, manager):
    _only(settings, "touchpoints")
    campaign = campaign_make(owner=manager, code="old-one", start_date=dt.date(2025, 1, 1))
    for at in (OLD, OLD, OLD, OLD, YOUNG):
        Touchpoint.objects.create(
            campaign=campaign, customer_external_id="X", occurred_at=at, channel="wechat"
        )
        Conversion.objects.create(campaign=campaign, customer_external_id="X", occurred_at=at)
    result = retention.retention_apply(now=NOW)
    assert result["touchpoints"] == {"touchpoints": 4, "conversions": 4}
    assert list(Touchpoint.objects.values_list("occurred_at", flat=True)) == [YOUNG]
    assert list(Conversion.objects.values_list("occurred_at", flat=True)) == [YOUNG]


# --- report files ------------------------------------------------------------------------------------


def _report(owner, created_at, status="done", name=""):
    job = ReportJob.objects.create(
        owner=owner, kind="customers", format="csv", status=status, dedupe_key=f"k{time.monotonic_ns()}"
    )
    if name:
        job.file = default_storage.save(f"reports/{name}", ContentFile(b"external_id,email\n"))
    ReportJob.objects.filter(pk=job.pk).update(created_at=created_at, file=job.file)
    return job


def test_old_report_files_and_jobs_go_young_and_active_ones_stay(settings, keep_one_year, manager):
    _only(settings, "report_files")
    old = _report(manager, OLD, name="old.csv")
    young = _report(manager, YOUNG, name="young.csv")
    running = _report(manager, OLD, status="running")
    old_path = old.file.name
    orphan = default_storage.save("reports/orphan.csv", ContentFile(b"x"))
    os.utime(default_storage.path(orphan), (OLD.timestamp(), OLD.timestamp()))
    result = retention.retention_apply(now=NOW)
    assert result["report_files"] == {"jobs": 1, "files": 2}
    assert set(ReportJob.objects.values_list("pk", flat=True)) == {young.pk, running.pk}
    assert not default_storage.exists(old_path) and not default_storage.exists(orphan)
    assert default_storage.exists(young.file.name)


# --- the access log ---------------------------------------------------------------------------------------


def test_old_access_log_rows_go(settings, keep_one_year, manager):
    _only(settings, "access_log")
    for at in (OLD, OLD, OLD, OLD, YOUNG):
        row = UnmaskedAccess.objects.create(user=manager, kind="customer", rows=1)
        UnmaskedAccess.objects.filter(pk=row.pk).update(at=at)
    result = retention.retention_apply(now=NOW)
    assert result["access_log"] == {"deleted": 4}
    assert list(UnmaskedAccess.objects.values_list("at", flat=True)) == [YOUNG]


# --- privacy export files -------------------------------------------------------------------------


def test_old_export_files_go_and_their_requests_keep_the_report(
    settings, keep_one_year, planted, manager, django_capture_on_commit_callbacks
):
    _only(settings, "privacy_files")
    old = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    young = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    PrivacyRequest.objects.filter(pk=old.pk).update(finished_at=OLD)
    old_name = old.file
    result = retention.retention_apply(now=NOW)
    assert result["privacy_files"] == {"files": 1}
    old.refresh_from_db()
    young.refresh_from_db()
    assert (old.status, old.file, old.report["profile"]) == ("done", "", 1)
    assert young.file and default_storage.exists(young.file)
    assert not default_storage.exists(old_name)


# --- the task -------------------------------------------------------------------------------------------


def test_the_daily_task_runs_every_kind_and_audits_the_counts(keep_one_year, event_history):
    result = apply_retention.delay().get()
    assert set(result) == set(retention.KINDS)
    assert result["events"]["deleted"] == 18
    entry = AuditEntry.objects.get(action="privacy.retention")
    assert entry.changes["events"]["deleted"] == 18


def test_a_failing_kind_does_not_stop_the_others(keep_one_year, manager, monkeypatch):
    row = UnmaskedAccess.objects.create(user=manager, kind="customer", rows=1)
    UnmaskedAccess.objects.filter(pk=row.pk).update(at=OLD)

    def broken(**kwargs):
        raise RuntimeError("disk gone")

    monkeypatch.setitem(retention.KINDS, "events", broken)
    result = retention.retention_apply(now=NOW)
    assert result["events"] == {"error": "RuntimeError"}
    assert result["access_log"] == {"deleted": 1}
