"""A worker that dies mid-build leaves its build "running" with nobody holding its advisory lock (its
transaction rolled back, so membership is untouched): the sweep marks it failed. A build whose lock
is held by a live process is left alone. (Report jobs: see tests/analytics for the stale-job sweep.)"""

import datetime as dt

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from crm_tags.models import Tag, TagBuild, TagVersion
from crm_tags.services import BUILD_LOCK_NAMESPACE, tag_builds_fail_orphaned


@pytest.fixture
def running_build(db) -> TagBuild:
    tag = Tag.objects.create(slug="orphan", name="Orphan", kind=Tag.Kind.RULE)
    version = TagVersion.objects.create(
        tag=tag, number=1, definition={"attr": "city", "op": "=", "value": "X"}
    )
    return TagBuild.objects.create(
        tag=tag,
        version=version,
        status=TagBuild.Status.RUNNING,
        started_at=timezone.now() - dt.timedelta(minutes=5),
    )


@pytest.mark.django_db
def test_running_build_without_a_live_worker_is_marked_failed(running_build):
    assert tag_builds_fail_orphaned() == 1
    running_build.refresh_from_db()
    assert running_build.status == TagBuild.Status.FAILED
    assert "worker stopped" in running_build.error


@pytest.mark.django_db(transaction=True)
def test_running_build_whose_worker_holds_the_lock_is_left_running(running_build):
    params = connection.get_connection_params()
    with psycopg.connect(
        host=params.get("host"), port=params.get("port"), user=params.get("user"), dbname=params["dbname"]
    ) as live_worker:
        live_worker.execute("SELECT pg_advisory_xact_lock(%s, %s)", [BUILD_LOCK_NAMESPACE, running_build.pk])
        assert tag_builds_fail_orphaned() == 0
        running_build.refresh_from_db()
        assert running_build.status == TagBuild.Status.RUNNING
        live_worker.rollback()
    assert tag_builds_fail_orphaned() == 1
