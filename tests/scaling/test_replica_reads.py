"""Replica reads (config/db_router.py) against a real streaming standby (tests/scaling/conftest.py).

The proof that a read came from the standby: its replay is paused, a row is written on the primary, and
the read does not see it (and says how far behind it is); the primary's reads see it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from itertools import count

import pytest
from django.core.files.storage import default_storage
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.services import user_create
from analytics import services as analytics_services
from analytics.models import ReportJob
from config import db_router
from crm_tags import selectors as tag_selectors
from tests.crm_tags import factories as tag_factories
from tests.scaling.postgres_cluster import StreamingPair, wait_for
from tests.tickets.factories import make_ticket
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)

KPIS = "/dashboards/support/charts/kpis/?refresh=1"
BEHIND = re.compile(r"^as of \d\d:\d\d:\d\d, \d+ s behind$")
_names = count(1)


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def router_warnings() -> Iterator[list[str]]:
    """The router's warnings, kept by a handler on its own logger (a request may reconfigure the root
    logger's handlers, which caplog's are)."""
    handler = _Kept()
    logger = logging.getLogger("config.db_router")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _person(role: str) -> object:
    name = f"{role}{next(_names)}"
    return user_create(
        username=name,
        role=role,
        team_name="MarTech support" if role != "requester" else "E-commerce ops",
        password=f"pw-{name}-123",
        email=f"{name}@example.com",
        language="en",
    )


def _backlog(payload: dict) -> int:
    return next(tile["value"] for tile in payload["data"]["tiles"] if tile["key"] == "backlog")


def _one_ticket_replicated_then_paused(pair: StreamingPair) -> tuple[object, Client]:
    """Given one open ticket on both, replay paused, and a second ticket only on the primary."""
    requester = _person("requester")
    make_ticket(requester)
    wait_for(pair.caught_up, "the standby to replay the first ticket")
    pair.pause_replay()
    make_ticket(requester, title="Written after the pause")
    wait_for(pair.received_unreplayed, "the standby to receive the second ticket (not replay it)")
    client = Client()
    client.force_login(_person("manager"))
    return requester, client


def test_a_dashboard_reads_the_replica_and_shows_its_lag(replica_pair: StreamingPair):
    _, client = _one_ticket_replicated_then_paused(replica_pair)
    asked = timezone.now()

    payload = client.get(KPIS).json()

    assert Ticket.objects.count() == 2  # the primary has both
    assert _backlog(payload) == 1  # the chart read the standby, whose replay stopped before the second
    assert payload["data_source"] == "replica"
    assert payload["replica_lag_seconds"] > 0
    assert BEHIND.match(payload["data_note"]), payload["data_note"]
    # "as of" is the standby's replay time: older than the request by its lag
    as_of = parse_datetime(payload["as_of"])
    assert as_of <= asked - dt.timedelta(seconds=payload["replica_lag_seconds"]) + dt.timedelta(seconds=1)
    assert as_of < asked


def test_the_dashboard_api_says_where_its_figures_come_from(replica_pair: StreamingPair):
    _, client = _one_ticket_replicated_then_paused(replica_pair)

    answer = client.get("/api/v1/analytics/support/?refresh=1").json()

    assert answer["data_source"] == "replica"
    assert BEHIND.match(answer["data_note"])
    assert _backlog(answer["charts"]["kpis"]) == 1


def test_a_replica_too_far_behind_gives_way_to_the_primary_visibly_and_warns_once(
    replica_pair: StreamingPair, settings, router_warnings: list[str]
):
    settings.REPLICA_MAX_LAG_SECONDS = 0.3
    _, client = _one_ticket_replicated_then_paused(replica_pair)
    wait_for(lambda: replica_pair.replica_lag() > 0.5, "the standby to fall 0.5 s behind")

    first = client.get(KPIS).json()
    second = client.get(KPIS).json()

    assert _backlog(first) == 2 and _backlog(second) == 2  # the primary's figures
    assert first["data_source"] == "primary" and first["replica_lag_seconds"] is None
    assert first["data_note"] == "live data from the primary"
    warnings = [message for message in router_warnings if "fall back to the primary" in message]
    assert len(warnings) == 1
    assert "behind (limit 0.3 s)" in warnings[0]


def test_a_stopped_replica_gives_way_to_the_primary_without_an_error(
    replica_pair: StreamingPair, router_warnings: list[str]
):
    requester = _person("requester")
    make_ticket(requester)
    wait_for(replica_pair.caught_up, "the standby to replay the ticket")
    client = Client()
    client.force_login(_person("manager"))
    assert client.get(KPIS).json()["data_source"] == "replica"  # serving, before it stops
    replica_pair.pause_replay()
    make_ticket(requester)  # on the primary only

    replica_pair.standby.stop()
    response = client.get(KPIS)

    assert response.status_code == 200
    payload = response.json()
    assert payload["data_source"] == "primary"
    assert payload["data_note"] == "live data from the primary"
    assert _backlog(payload) == 2
    assert sum("replica unreachable" in message for message in router_warnings) == 1
    # and the next request reads the primary without trying the dead replica again (nor warning again)
    assert client.get(KPIS).json()["data_source"] == "primary"
    assert sum("replica unreachable" in message for message in router_warnings) == 1


def test_reads_inside_a_write_transaction_go_to_the_primary(replica_pair: StreamingPair):
    _one_ticket_replicated_then_paused(replica_pair)

    with db_router.replica_reads() as source:
        assert source.on_replica
        outside = Ticket.objects.count()
        with transaction.atomic():
            inside = Ticket.objects.count()
            assert db_router.read_alias() == "default"

    assert outside == 1  # the standby, replay paused
    assert inside == 2  # the primary: a write's transaction reads its own database


def test_the_tag_compiler_reads_the_primary_even_inside_a_replica_scope(replica_pair: StreamingPair):
    manager = _person("manager")
    tag_factories.customer(city="Hangzhou")
    tag = tag_factories.rule_tag("hangzhou-people", by=manager)
    wait_for(replica_pair.caught_up, "the standby to replay the first customer")
    replica_pair.pause_replay()
    tag_factories.customer(city="Hangzhou")
    wait_for(replica_pair.received_unreplayed, "the standby to receive the second customer")
    definition = {"attr": "city", "op": "=", "value": "Hangzhou"}

    with db_router.replica_reads() as source:
        assert source.on_replica
        preview = tag_selectors.tag_preview(tag=tag, definition=definition, user=manager)

    assert preview.matched == 2  # both customers: the compiler's statement ran on the primary


def test_a_report_job_reads_the_replica(replica_pair: StreamingPair):
    _one_ticket_replicated_then_paused(replica_pair)
    owner = _person("manager")
    key = analytics_services.report_dedupe_key(owner=owner, kind="tickets", params={}, file_format="csv")
    job = ReportJob.objects.create(owner=owner, kind="tickets", params={}, format="csv", dedupe_key=key)

    job = analytics_services.report_job_run(job_id=job.pk)

    assert job.status == ReportJob.Status.DONE, job.error
    assert job.rows == 1  # the standby's one ticket, not the primary's two
    with default_storage.open(job.file.name, "rb") as data:
        body = data.read().decode("utf-8-sig")
    assert "Written after the pause" not in body


def test_the_queue_export_streams_from_the_replica(replica_pair: StreamingPair):
    _one_ticket_replicated_then_paused(replica_pair)
    client = Client()
    client.force_login(_person("agent"))

    response = client.get("/requests/queue/export/")

    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert response.status_code == 200
    assert "Coupon page shows the wrong price" in body
    assert "Written after the pause" not in body
