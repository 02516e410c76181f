"""config/db_router.py without a replica: everything stays on the primary, and says so."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone, translation

from config import db_router
from config.db_router import ReadSource, ReplicaRouter
from tickets.models import Ticket


def test_without_a_replica_a_scope_reads_the_primary_and_says_live():
    assert not db_router.replica_configured()
    with db_router.replica_reads() as source:
        assert not source.on_replica
        assert db_router.read_alias() == "default"
        assert ReplicaRouter().db_for_read(Ticket) is None
    with translation.override("en"):
        assert source.as_dict() == {
            "data_source": "primary",
            "replica_lag_seconds": None,
            "data_note": "live data from the primary",
        }


def test_a_replica_source_dates_its_data_back_by_its_lag():
    checked = timezone.now()
    source = ReadSource("replica", lag_seconds=4.4, checked_at=checked)
    assert source.as_of() == checked - dt.timedelta(seconds=4.4)
    with translation.override("en"), timezone.override(dt.UTC):
        expected = (checked - dt.timedelta(seconds=4.4)).strftime("%H:%M:%S")
        assert source.note() == f"as of {expected}, 4 s behind"


def test_writes_and_migrations_go_to_the_primary_only():
    router = ReplicaRouter()
    assert router.db_for_write(Ticket) == "default"
    assert router.allow_migrate("default", "tickets") is True
    assert router.allow_migrate("replica", "tickets") is False


def test_primary_reads_override_an_enclosing_scope():
    with db_router.replica_reads(), db_router.primary_reads():
        assert db_router.current_source() is db_router.PRIMARY
        assert db_router.read_alias() == "default"
