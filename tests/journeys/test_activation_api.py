"""The audience activation API: the Contract's shapes (checked against the OpenAPI schema), allow and deny
per endpoint, bad input named by field (nothing changed), a busy audience is 409, the sync log's query count."""

import pytest

from journeys.models import Destination, SyncRun
from tests.journeys import factories as f
from tests.journeys import receiver as rx
from tests.journeys.test_api import _assert_matches_schema

pytestmark = pytest.mark.django_db
DESTINATIONS = "/api/v1/destinations/"
SECRET = "sync-secret"


@pytest.fixture
def hook():
    receiver, url, server = rx.start(SECRET)
    yield receiver, url
    server.shutdown()
    server.server_close()


@pytest.fixture
def destination(agent, hook):
    return f.webhook(agent, hook[1], secret=SECRET, batch_size=10)


def test_create_a_file_destination_answers_its_id(api_for, agent, settings, tmp_path):
    settings.ACTIVATION_FILE_ROOT = str(tmp_path)
    body = {"name": "crm drop", "kind": "file", "folder": "crm/drop"}
    response = api_for(agent).post(DESTINATIONS, body, format="json")
    assert response.status_code == 201
    assert response.json() == {"id": Destination.objects.get(name="crm drop").pk}


@pytest.mark.parametrize("folder", ["../etc", "/etc/cron.d", "ok/../../x"])
def test_a_folder_out_of_the_root_is_400_naming_it(api_for, agent, folder):
    response = api_for(agent).post(
        DESTINATIONS, {"name": "x", "kind": "file", "folder": folder}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "folder" and folder in response.json()["detail"]
    assert not Destination.objects.exists()


def test_start_a_sync_answers_202_with_a_url_to_poll(
    api_for, agent, destination, hook, django_capture_on_commit_callbacks
):
    tag = f.manual_tag("vip")
    f.enter(tag, f.customers(3))
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(agent).post(
            f"{DESTINATIONS}{destination.pk}/syncs/", {"tag": "vip", "mode": "snapshot"}, format="json"
        )
    assert response.status_code == 202
    _assert_matches_schema(response.json(), "/api/v1/destinations/{id}/syncs/", "post", "202")
    run = SyncRun.objects.get()
    assert response.json()["id"] == run.pk
    polled = api_for(agent).get(response.json()["url"])
    assert polled.status_code == 200
    _assert_matches_schema(polled.json(), "/api/v1/destinations/{id}/syncs/{sync_id}/")
    assert polled.json()["status"] == "done" and polled.json()["sent"] == 3 and polled.json()["tag"] == "vip"


def test_the_log_lists_syncs_newest_first(api_for, agent, destination, django_capture_on_commit_callbacks):
    tag = f.manual_tag("vip")
    f.enter(tag, f.customers(1))
    for mode in ("delta", "snapshot"):
        with django_capture_on_commit_callbacks(execute=True):
            api_for(agent).post(
                f"{DESTINATIONS}{destination.pk}/syncs/", {"tag": "vip", "mode": mode}, format="json"
            )
    body = api_for(agent).get(f"{DESTINATIONS}{destination.pk}/syncs/").json()
    _assert_matches_schema(body, "/api/v1/destinations/{id}/syncs/")
    assert [r["mode"] for r in body["results"]] == ["snapshot", "delta"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"tag": "nope", "mode": "delta"}, "tag"),
        ({"mode": "delta"}, "tag"),
        ({"tag": "vip", "mode": "sometimes"}, "mode"),
        ({"tag": "vip", "mode": "delta", "purpose": "telepathy"}, "purpose"),
        ({"campaign": 999999, "mode": "delta"}, "campaign"),
    ],
)
def test_a_bad_sync_request_is_400_naming_the_field(api_for, agent, destination, body, field):
    f.manual_tag("vip")
    response = api_for(agent).post(f"{DESTINATIONS}{destination.pk}/syncs/", body, format="json")
    assert response.status_code == 400
    assert field in str(response.json())
    assert not SyncRun.objects.exists()


def test_a_destination_with_a_purpose_takes_no_other(api_for, agent, hook):
    destination = f.webhook(agent, hook[1], secret=SECRET, purpose="marketing_sms")
    f.manual_tag("vip")
    body = {"tag": "vip", "mode": "delta", "purpose": "marketing_email"}
    response = api_for(agent).post(f"{DESTINATIONS}{destination.pk}/syncs/", body, format="json")
    assert response.status_code == 400 and "marketing_sms" in str(response.json())


def test_a_second_sync_of_an_open_audience_is_409(api_for, agent, destination):
    f.manual_tag("vip")
    url = f"{DESTINATIONS}{destination.pk}/syncs/"
    assert (
        api_for(agent).post(url, {"tag": "vip", "mode": "delta"}, format="json").status_code == 202
    )  # queued
    assert api_for(agent).post(url, {"tag": "vip", "mode": "delta"}, format="json").status_code == 409
    assert SyncRun.objects.count() == 1


def test_retry_of_a_failed_sync_is_202_and_of_a_done_one_409(
    api_for, agent, destination, hook, django_capture_on_commit_callbacks
):
    receiver = hook[0]
    receiver.fail_first = 1
    f.enter(f.manual_tag("vip"), f.customers(1))
    with django_capture_on_commit_callbacks(execute=True):
        api_for(agent).post(f"{DESTINATIONS}{destination.pk}/syncs/", {"tag": "vip"}, format="json")
    run = SyncRun.objects.get()
    assert run.status == "failed"
    retry = f"{DESTINATIONS}{destination.pk}/syncs/{run.pk}/retry/"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(agent).post(retry)
    assert response.status_code == 202
    assert SyncRun.objects.get().status == "done"
    assert api_for(agent).post(retry).status_code == 409


@pytest.mark.parametrize(
    "method, suffix",
    [("get", "syncs/"), ("post", "syncs/"), ("get", "syncs/{sync}/"), ("post", "syncs/{sync}/retry/")],
)
def test_requesters_and_anonymous_are_refused_every_sync_endpoint(
    api_for, agent, marketer, destination, method, suffix
):
    run = SyncRun.objects.create(destination=destination, audience="tag:1:", audience_label="x", mode="delta")
    url = f"{DESTINATIONS}{destination.pk}/" + suffix.format(sync=run.pk)
    body = {"tag": "vip", "mode": "delta"} if method == "post" else None
    assert getattr(api_for(marketer), method)(url, body, format="json").status_code in (403, 404)
    assert getattr(api_for(None), method)(url, body, format="json").status_code in (401, 403)
    assert SyncRun.objects.count() == 1


def test_a_sync_of_another_destination_is_404(api_for, agent, destination, hook):
    other = f.webhook(agent, hook[1], secret=SECRET)
    run = SyncRun.objects.create(destination=other, audience="tag:1:", audience_label="x", mode="delta")
    assert api_for(agent).get(f"{DESTINATIONS}{destination.pk}/syncs/{run.pk}/").status_code == 404


def test_the_sync_log_takes_a_fixed_number_of_queries(
    api_for, agent, destination, django_assert_max_num_queries
):
    tags = [f.manual_tag() for _ in range(3)]
    for index in range(12):
        SyncRun.objects.create(
            destination=destination,
            tag=tags[index % 3],
            audience=f"tag:{tags[index % 3].pk}:",
            audience_label=tags[index % 3].slug,
            mode="delta",
            status="done",
        )
    client = api_for(agent)
    # (1) the user's role, (2) the destination, (3) the count, (4) the page with tags and destinations joined
    with django_assert_max_num_queries(6):
        response = client.get(f"{DESTINATIONS}{destination.pk}/syncs/")
    assert len(response.json()["results"]) == 12


def test_the_schema_documents_the_sync_endpoints():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/destinations/{id}/syncs/"])
    assert "post" in paths["/api/v1/destinations/{id}/syncs/{sync_id}/retry/"]
    create = paths["/api/v1/destinations/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][create["$ref"].rsplit("/", 1)[1]]
    assert {"folder", "batch_size", "purpose", "personal_fields"} <= set(component["properties"])


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/hook", "http://[::1]:8080/hook"]
)
def test_a_webhook_on_this_machine_or_a_private_network_is_400_naming_the_url(api_for, agent, settings, url):
    settings.OUTBOUND_ALLOWED_NETWORKS = ""  # the tests' loopback receivers are allowed elsewhere
    response = api_for(agent).post(DESTINATIONS, {"name": "x", "kind": "webhook", "url": url}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "url"
    assert "only to addresses on the internet" in response.json()["detail"]
    assert not Destination.objects.exists()
