"""Report jobs and CSV exports against a real streaming standby (issue 22; tests/scaling/conftest.py).

As in test_replica_reads.py: the standby's replay is paused, rows are written on the primary, and what a
job or an export read from the standby does not have them. A report job records where it read and how
old its data is; exports stream their rows from the standby, while who may see what is read on the
primary.
"""

from __future__ import annotations

import io
from itertools import count

import pytest
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.services import user_create
from analytics import services as analytics_services
from analytics.models import ReportJob
from campaigns.models import Campaign
from config import db_router
from crm_tags import services as tag_services
from crm_tags.models import Customer, Tag, TagMembership
from crm_tags.tag_api import members_csv_response
from privacy import consent
from privacy.models import UnmaskedAccess
from tests.campaigns.factories import campaign_make
from tests.crm_tags import factories as tag_factories
from tests.scaling.postgres_cluster import StreamingPair, wait_for
from tests.scaling.test_replica_reads import BEHIND, _one_ticket_replicated_then_paused, _person
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)

_slugs = count(1)


def _tickets_job(owner: object) -> ReportJob:
    key = analytics_services.report_dedupe_key(owner=owner, kind="tickets", params={}, file_format="csv")
    return ReportJob.objects.create(owner=owner, kind="tickets", params={}, format="csv", dedupe_key=key)


def _manual_tag(*members: Customer) -> Tag:
    tag = tag_services.tag_create(
        slug=f"replica-list-{next(_slugs)}", name="Replica list", kind="manual", by=None
    )
    _upload(tag, *members)
    return tag


def _upload(tag: Tag, *members: Customer) -> None:
    """Replace the manual tag's members (the real upload service, all or nothing)."""
    lines = "external_id\n" + "".join(f"{member.external_id}\n" for member in members)
    tag_services.tag_members_upload(tag=tag, upload=io.StringIO(lines), by=None)


def _pause_then(pair: StreamingPair, write: object) -> None:
    """Given the standby caught up, its replay paused and `write()` done on the primary only."""
    wait_for(pair.caught_up, "the standby to replay what was written so far")
    pair.pause_replay()
    write()
    wait_for(pair.received_unreplayed, "the standby to receive the write (not replay it)")


def _body(response: object) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode("utf-8-sig")


def _logged_in(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _view_pii() -> Permission:
    return Permission.objects.get(content_type__app_label="accounts", codename="view_pii")


def _replica_serves() -> bool:
    with db_router.replica_reads() as source:
        return source.on_replica


# Report jobs ----------------------------------------------------------------------------------------


def test_a_report_job_on_a_paused_replica_records_its_lag_and_how_old_its_data_is(
    replica_pair: StreamingPair,
):
    # given a ticket replicated, replay paused, and a second ticket on the primary only
    _one_ticket_replicated_then_paused(replica_pair)
    owner = _person("manager")
    job = _tickets_job(owner)

    # when the report job runs
    job = analytics_services.report_job_run(job_id=job.pk)

    # then it read the standby, and says so with its lag and a replay point older than its start
    assert job.status == ReportJob.Status.DONE, job.error
    assert job.rows == 1
    assert job.data_source == "replica"
    assert job.replica_lag_seconds > 0
    assert job.data_as_of < job.started_at
    assert job.data_as_of < Ticket.objects.get(title="Written after the pause").created_at
    answer = _logged_in(owner).get(f"/api/v1/reports/{job.pk}/").json()
    assert answer["data_source"] == "replica"
    assert answer["replica_lag_seconds"] == pytest.approx(job.replica_lag_seconds)
    assert BEHIND.match(answer["data_note"]), answer["data_note"]


def test_a_report_job_on_the_replica_reads_its_owners_view_pii_on_the_primary(replica_pair: StreamingPair):
    # given an owner with view_pii and a customer, replicated; then view_pii revoked on the primary only
    owner = _person("manager")
    owner.user_permissions.add(_view_pii())
    tag_factories.customer(email="planted.report@example.com")
    _pause_then(replica_pair, lambda: owner.user_permissions.remove(_view_pii()))
    key = analytics_services.report_dedupe_key(owner=owner, kind="customers", params={}, file_format="csv")
    job = ReportJob.objects.create(owner=owner, kind="customers", params={}, format="csv", dedupe_key=key)

    job = analytics_services.report_job_run(job_id=job.pk)

    # then the rows came from the standby, masked as the owner's current permissions say
    assert job.status == ReportJob.Status.DONE, job.error
    assert job.data_source == "replica"
    with default_storage.open(job.file.name, "rb") as data:
        body = data.read().decode("utf-8-sig")
    assert "planted.report" not in body
    assert job.rows == 1


def test_a_report_job_on_a_replica_too_far_behind_reads_the_primary_and_says_so(
    replica_pair: StreamingPair, settings
):
    settings.REPLICA_MAX_LAG_SECONDS = 0.3
    _one_ticket_replicated_then_paused(replica_pair)
    wait_for(lambda: replica_pair.replica_lag() > 0.5, "the standby to fall 0.5 s behind")
    owner = _person("manager")

    job = analytics_services.report_job_run(job_id=_tickets_job(owner).pk)

    assert job.status == ReportJob.Status.DONE, job.error
    assert job.rows == 2  # the primary's two tickets
    assert job.data_source == "primary"
    assert job.replica_lag_seconds is None
    assert job.started_at <= job.data_as_of <= job.finished_at
    answer = _logged_in(owner).get(f"/api/v1/reports/{job.pk}/").json()
    assert answer["data_note"] == "live data from the primary"


def test_a_report_job_with_the_replica_stopped_reads_the_primary_and_says_so(replica_pair: StreamingPair):
    _one_ticket_replicated_then_paused(replica_pair)
    owner = _person("manager")
    replica_pair.standby.stop()

    job = analytics_services.report_job_run(job_id=_tickets_job(owner).pk)

    assert job.status == ReportJob.Status.DONE, job.error
    assert job.rows == 2
    assert job.data_source == "primary"
    assert job.replica_lag_seconds is None


# Exports --------------------------------------------------------------------------------------------


def test_the_campaign_export_streams_from_the_replica(replica_pair: StreamingPair):
    # given a campaign replicated, and one written on the primary after the pause
    manager = _person("manager")
    campaign_make(owner=manager, name="Planned before the pause")
    _pause_then(replica_pair, lambda: campaign_make(owner=manager, name="Written after the pause"))

    body = _body(_logged_in(manager).get("/campaigns/?export=csv"))

    assert Campaign.objects.count() == 2  # the primary has both
    assert "Planned before the pause" in body
    assert "Written after the pause" not in body


def test_the_campaign_export_on_the_replica_keeps_a_requesters_scope(replica_pair: StreamingPair):
    # given a requester's team campaign and another team's, replicated; then one more of the requester's team
    requester, manager = _person("requester"), _person("manager")
    campaign_make(owner=requester, name="Our campaign")
    campaign_make(owner=manager, name="Another team's campaign")
    _pause_then(replica_pair, lambda: campaign_make(owner=requester, name="Ours, written after the pause"))

    body = _body(_logged_in(requester).get("/campaigns/?export=csv"))

    assert "Our campaign" in body
    assert "Another team's campaign" not in body
    assert "Ours, written after the pause" not in body


@pytest.mark.parametrize("api", [False, True], ids=["page", "api"])
def test_the_tag_members_export_streams_from_the_replica(replica_pair: StreamingPair, api: bool):
    # given a manual tag with one member replicated, and a second member added on the primary after the pause
    first, second = tag_factories.customer(), tag_factories.customer()
    tag = _manual_tag(first)
    _pause_then(replica_pair, lambda: _upload(tag, first, second))
    url = (
        f"/api/v1/tags/{tag.slug}/members/?format=csv"
        if api
        else reverse("crm_tags:tag_members_csv", args=[tag.slug])
    )

    body = _body(_logged_in(_person("agent")).get(url))

    assert TagMembership.objects.filter(tag=tag).count() == 2  # on the primary
    assert first.external_id in body
    assert second.external_id not in body


@pytest.mark.parametrize("through", ["page", "function"])
def test_a_view_pii_revoked_after_the_pause_masks_the_members_export(
    replica_pair: StreamingPair, through: str
):
    # given a manager with view_pii and a member, both replicated; then view_pii revoked on the primary only
    # (as the admin does: the person's permissions changed, which invalidates the cached answers)
    name = f"pii{next(_slugs)}"
    viewer = user_create(
        username=name,
        role="manager",
        team_name="MarTech support",
        password=f"pw-{name}-123",
        email=f"{name}@example.com",
        pii=True,
        language="en",
    )
    member = tag_factories.customer(email="planted.replica@example.com")
    tag = _manual_tag(member)
    _pause_then(replica_pair, lambda: viewer.user_permissions.remove(_view_pii()))
    assert _replica_serves()  # the standby (which still grants view_pii) serves the rows' scope

    if through == "page":
        response = _logged_in(viewer).get(reverse("crm_tags:tag_members_csv", args=[tag.slug]))
    else:  # a fresh user object, none of its permissions read yet (a request's middleware may read them)
        response = members_csv_response(tag, User.objects.get(pk=viewer.pk))
    body = _body(response)

    # then the permission was read on the primary: masked, and no unmasked read logged
    assert member.external_id in body
    assert "planted.replica@example.com" not in body
    assert not UnmaskedAccess.objects.filter(user=viewer).exists()


def test_a_members_export_for_a_channel_reads_consent_on_the_primary(replica_pair: StreamingPair):
    # given two members who granted marketing e-mail, replicated; then one withdraws on the primary only
    withdrawing, staying = tag_factories.customer(), tag_factories.customer()
    for customer in (withdrawing, staying):
        consent.consent_set(customer=customer, states={"marketing_email": "granted"}, source="api", by=None)
    tag = _manual_tag(withdrawing, staying)
    _pause_then(
        replica_pair,
        lambda: consent.consent_set(
            customer=withdrawing, states={"marketing_email": "withdrawn"}, source="api", by=None
        ),
    )
    assert _replica_serves()

    url = reverse("crm_tags:tag_members_csv", args=[tag.slug]) + "?purpose=marketing_email"
    body = _body(_logged_in(_person("manager")).get(url))

    # then the withdrawal counts at once
    assert staying.external_id in body
    assert withdrawing.external_id not in body
