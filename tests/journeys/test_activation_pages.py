"""Audience activation pages: allow and deny per page and action, forms whose errors name the field (nothing
changed), the retry button, query counts of the lists, and personal values: planted e-mail and phone leave
only for a destination set up for them, and never appear on a page or in the log."""

import csv

import pytest

from journeys.activation import services
from journeys.models import ActivationSchedule, Destination, SyncRun
from tests.conftest import in_english
from tests.journeys import factories as f
from tests.journeys import receiver as rx

pytestmark = pytest.mark.django_db
SECRET = "sync-secret"
PLANTED_EMAIL = "wang.fang.planted@example.com"
PLANTED_PHONE = "13912345678"


@pytest.fixture
def hook():
    receiver, url, server = rx.start(SECRET)
    yield receiver, url
    server.shutdown()
    server.server_close()


@pytest.fixture
def destination(agent, hook):
    return f.webhook(agent, hook[1], secret=SECRET, batch_size=10, name="coupon-service")


def _pages(destination):
    return [
        "/journeys/destinations/",
        f"/journeys/destinations/{destination.pk}/",
        "/journeys/destinations/schedules/",
        "/journeys/destinations/syncs/",
    ]


def test_support_staff_see_every_page(client_for, agent, destination):
    client = client_for(agent)
    for url in _pages(destination):
        assert client.get(url).status_code == 200, url


def test_requesters_are_refused_every_page_and_action(client_for, marketer, destination):
    client = client_for(marketer)
    for url in _pages(destination):
        assert client.get(url).status_code == 403, url
    run = SyncRun.objects.create(
        destination=destination, audience="tag:1:", audience_label="x", mode="delta", status="failed"
    )
    schedule = ActivationSchedule.objects.create(
        destination=destination, tag=f.manual_tag("vip"), cadence="hourly"
    )
    posts = {
        "/journeys/destinations/new/": {
            "name": "x",
            "kind": "webhook",
            "url": "https://x.test/",
            "batch_size": 1,
        },
        f"/journeys/destinations/{destination.pk}/edit/": {
            "name": "renamed",
            "kind": "webhook",
            "batch_size": 1,
        },
        f"/journeys/destinations/{destination.pk}/sync/": {"tag": "vip", "mode": "delta"},
        f"/journeys/destinations/{destination.pk}/schedules/new/": {
            "tag": "vip",
            "mode": "delta",
            "cadence": "hourly",
        },
        f"/journeys/destinations/schedules/{schedule.pk}/delete/": {},
        f"/journeys/destinations/syncs/{run.pk}/retry/": {},
    }
    for url, body in posts.items():
        assert client.post(url, body).status_code == 403, url
    assert Destination.objects.get().name == "coupon-service"
    assert SyncRun.objects.get().status == "failed" and ActivationSchedule.objects.count() == 1


def test_anonymous_is_sent_to_log_in(client, destination):
    for url in _pages(destination):
        assert client.get(url).status_code == 302


def test_the_journeys_list_links_destinations_for_support_staff_only(client_for, agent, marketer):
    assert b"destinations-link" in client_for(agent).get("/journeys/").content
    assert b"destinations-link" not in client_for(marketer).get("/journeys/").content


def test_create_a_destination_from_the_page(client_for, agent):
    response = client_for(agent).post(
        "/journeys/destinations/new/",
        {
            "name": "crm",
            "kind": "webhook",
            "url": "https://crm.example.test/hook",
            "secret": "s",
            "batch_size": 50,
        },
    )
    destination = Destination.objects.get()
    assert response.status_code == 302 and response.url == f"/journeys/destinations/{destination.pk}/"
    assert (destination.batch_size, destination.secret) == (50, "s")


def test_a_folder_escaping_the_root_is_shown_under_the_field(client_for, agent):
    in_english(agent)
    response = client_for(agent).post(
        "/journeys/destinations/new/",
        {"name": "drop", "kind": "file", "folder": "../../etc", "batch_size": 1},
    )
    assert response.status_code == 422
    assert b'data-error-for="folder"' in response.content and b"leaves the file root" in response.content
    assert not Destination.objects.exists()


def test_edit_keeps_the_secret_when_left_blank(client_for, agent, destination):
    response = client_for(agent).post(
        f"/journeys/destinations/{destination.pk}/edit/",
        {"name": "coupons", "kind": "webhook", "url": destination.url, "secret": "", "batch_size": 25},
    )
    destination.refresh_from_db()
    assert response.status_code == 302
    assert (destination.name, destination.batch_size, destination.secret) == ("coupons", 25, SECRET)


def test_add_a_schedule_and_a_daily_one_needs_a_time(client_for, agent, destination):
    f.manual_tag("vip")
    client = client_for(agent)
    url = f"/journeys/destinations/{destination.pk}/schedules/new/"
    missing = client.post(url, {"tag": "vip", "mode": "delta", "cadence": "daily"})
    assert missing.status_code == 422 and b'data-error-for="at"' in missing.content
    assert (
        client.post(url, {"tag": "vip", "mode": "snapshot", "cadence": "daily", "at": "09:30"}).status_code
        == 302
    )
    schedule = ActivationSchedule.objects.get()
    assert (schedule.mode, schedule.cadence, schedule.at.strftime("%H:%M")) == ("snapshot", "daily", "09:30")
    assert b"09:30" in client.get("/journeys/destinations/schedules/").content


def test_start_a_sync_from_the_page_and_retry_it_when_it_failed(
    client_for, agent, destination, hook, django_capture_on_commit_callbacks
):
    receiver = hook[0]
    receiver.fail_first = 1
    f.enter(f.manual_tag("vip"), f.customers(2))
    client = client_for(in_english(agent))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/journeys/destinations/{destination.pk}/sync/", {"tag": "vip", "mode": "delta"})
    run = SyncRun.objects.get()
    log = client.get("/journeys/destinations/syncs/?status=failed").content.decode()
    assert run.status == "failed" and f'data-retry="{run.pk}"' in log and "HTTP 500" in log

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/journeys/destinations/syncs/{run.pk}/retry/", {"next": "/journeys/destinations/syncs/"}
        )

    assert response.status_code == 302 and response.url == "/journeys/destinations/syncs/"
    run.refresh_from_db()
    assert (run.status, run.sent) == ("done", 2)
    assert f'data-retry="{run.pk}"' not in client.get("/journeys/destinations/syncs/").content.decode()


def test_the_retry_ignores_an_outside_next(client_for, agent, destination):
    run = SyncRun.objects.create(
        destination=destination, audience="tag:1:", audience_label="x", mode="delta", status="failed"
    )
    response = client_for(agent).post(
        f"/journeys/destinations/syncs/{run.pk}/retry/", {"next": "https://evil.test/"}
    )
    assert response.url == "/journeys/destinations/syncs/"


def test_the_sync_log_and_destination_list_take_a_fixed_number_of_queries(
    client_for, agent, destination, hook, django_assert_max_num_queries
):
    tags = [f.manual_tag() for _ in range(3)]
    for index in range(15):
        SyncRun.objects.create(
            destination=destination if index % 2 else f.webhook(agent, hook[1]),
            tag=tags[index % 3],
            audience=f"tag:{tags[index % 3].pk}:",
            audience_label=tags[index % 3].slug,
            mode="delta",
            status="failed",
        )
    client = client_for(agent)
    client.get("/journeys/destinations/syncs/")  # warm the session and caches
    # session, user, navigation (unread count), the count, the page with destination and tag joined
    with django_assert_max_num_queries(9):
        log = client.get("/journeys/destinations/syncs/")
    assert log.content.count(b"data-retry=") == 15
    with django_assert_max_num_queries(9):
        listing = client.get("/journeys/destinations/")
    assert listing.content.count(b"data-destination=") == Destination.objects.count()


# --- personal values -----------------------------------------------------------------------------------


def _planted(tag_slug="vip"):
    person = f.customer(external_id="PLANTED", email=PLANTED_EMAIL, phone=PLANTED_PHONE, name="王芳")
    tag = f.manual_tag(tag_slug)
    f.grant([person], "marketing_sms")
    f.enter(tag, [person])
    return tag


def test_by_default_only_the_external_id_leaves(agent, destination, hook, django_capture_on_commit_callbacks):
    _planted()
    with django_capture_on_commit_callbacks(execute=True):
        services.sync_start(destination=destination, by=agent, tag="vip", mode="snapshot")
    raw = str(hook[0].received[0].body)
    assert "PLANTED" in raw and PLANTED_EMAIL not in raw and PLANTED_PHONE not in raw and "王芳" not in raw


def test_a_destination_set_up_for_personal_fields_gets_them_for_consenting_members(
    manager, hook, django_capture_on_commit_callbacks
):
    _planted()
    destination = f.webhook(
        manager, hook[1], secret=SECRET, purpose="marketing_sms", personal_fields=["email", "phone"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.sync_start(destination=destination, by=manager, tag="vip", mode="snapshot")
    [member] = hook[0].received[0].body["members"]
    assert member == {"external_id": "PLANTED", "email": PLANTED_EMAIL, "phone": PLANTED_PHONE}


def test_personal_fields_need_a_purpose_and_view_pii(agent, manager, hook):
    from journeys import services as journey_services
    from journeys.definition import DefinitionInvalid

    with pytest.raises(DefinitionInvalid) as no_purpose:
        journey_services.destination_create(
            by=manager, name="a", kind="webhook", url=hook[1], personal_fields=["email"]
        )
    with pytest.raises(DefinitionInvalid) as no_pii:
        journey_services.destination_create(
            by=agent,
            name="b",
            kind="webhook",
            url=hook[1],
            purpose="marketing_sms",
            personal_fields=["email"],
        )
    assert no_purpose.value.errors[0].path == no_pii.value.errors[0].path == "personal_fields"
    assert not Destination.objects.exists()


def test_a_file_with_personal_fields_holds_them_and_pages_never_show_them(
    client_for, agent, manager, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.ACTIVATION_FILE_ROOT = str(tmp_path)
    _planted()
    from journeys import services as journey_services

    destination = journey_services.destination_create(
        by=manager,
        name="sms-file",
        kind="file",
        folder="sms",
        purpose="marketing_sms",
        personal_fields=["phone"],
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = services.sync_start(destination=destination, by=manager, tag="vip", mode="snapshot")
    run.refresh_from_db()
    rows = list(csv.reader((tmp_path / run.file_path).open(encoding="utf-8")))
    assert rows == [["external_id", "phone"], ["PLANTED", PLANTED_PHONE]]

    client = client_for(agent)  # support staff without view_pii
    for url in [
        *_pages(destination),
        f"/api/v1/destinations/{destination.pk}/syncs/",
        "/api/v1/destinations/",
    ]:
        body = client.get(url).content.decode()
        assert PLANTED_EMAIL not in body and PLANTED_PHONE not in body and "王芳" not in body, url


def test_an_agent_without_view_pii_may_not_edit_a_destination_that_sends_personal_values(
    client_for, agent, manager, hook
):
    from journeys import services as journey_services

    destination = journey_services.destination_create(
        by=manager,
        name="sms",
        kind="webhook",
        url=hook[1],
        purpose="marketing_sms",
        personal_fields=["phone"],
    )
    response = client_for(agent).post(
        f"/journeys/destinations/{destination.pk}/edit/",
        {
            "name": "sms",
            "kind": "webhook",
            "url": "https://elsewhere.test/",
            "batch_size": 1,
            "purpose": "marketing_sms",
            "personal_fields": ["phone"],
        },
    )
    assert response.status_code == 422 and b'data-error-for="personal_fields"' in response.content
    destination.refresh_from_db()
    assert destination.url == hook[1]


def test_a_campaign_audience_is_synced_from_the_page_and_every_write_is_audited(
    client_for, agent, manager, destination, hook, django_capture_on_commit_callbacks
):
    from accounts.models import AuditEntry
    from tests.campaigns.factories import campaign_make

    f.enter(f.manual_tag("vip"), [f.customer(external_id="A")])
    campaign = campaign_make(owner=manager, audience_include=["vip"])
    client = client_for(agent)
    assert (
        f'value="{campaign.pk}"'.encode() in client.get(f"/journeys/destinations/{destination.pk}/").content
    )

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/journeys/destinations/{destination.pk}/sync/", {"campaign": campaign.pk, "mode": "snapshot"}
        )
    client.post(
        f"/journeys/destinations/{destination.pk}/schedules/new/",
        {"campaign": campaign.pk, "mode": "delta", "cadence": "hourly"},
    )
    client.post(
        f"/journeys/destinations/{destination.pk}/edit/",
        {"name": "renamed", "kind": "webhook", "url": destination.url, "batch_size": 5},
    )

    run = SyncRun.objects.get()
    assert (run.status, run.origin, run.campaign_id) == ("done", "page", campaign.pk)
    assert hook[0].received[0].body["members"] == [{"external_id": "A"}]
    actions = set(AuditEntry.objects.filter(actor=agent).values_list("action", flat=True))
    assert {
        "journey.audience_sync",
        "journey.activation_schedule_create",
        "journey.destination_update",
    } <= actions


def test_after_each_build_is_refused_for_a_campaign_naming_the_field(client_for, agent, manager, destination):
    from tests.campaigns.factories import campaign_make

    f.manual_tag("vip")
    campaign = campaign_make(owner=manager, audience_include=["vip"])
    response = client_for(agent).post(
        f"/journeys/destinations/{destination.pk}/schedules/new/",
        {"campaign": campaign.pk, "mode": "delta", "cadence": "after_build"},
    )
    assert response.status_code == 422 and b'data-error-for="cadence"' in response.content
    assert not ActivationSchedule.objects.exists()
