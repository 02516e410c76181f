"""Audience activation end to end against a real receiver on loopback (tests/journeys/receiver.py) and a
real folder: delta vs snapshot, batches of N, the consent purpose filter, a failed sync retried without a
member lost or sent twice, CSV files written atomically inside the file root, schedules after a build."""

import csv
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from journeys.activation import schedules, services
from journeys.activation.sync import sync_execute
from journeys.models import SyncBaseline, SyncBatch, SyncRun
from tests.journeys import factories as f
from tests.journeys import receiver as rx

pytestmark = pytest.mark.django_db
SECRET = "sync-secret"


@pytest.fixture
def hook():
    servers = []

    def _start(**options):
        receiver, url, server = rx.start(SECRET, **options)
        servers.append(server)
        return receiver, url

    yield _start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def file_root(settings, tmp_path):
    settings.ACTIVATION_FILE_ROOT = str(tmp_path / "activation")
    return tmp_path / "activation"


def _sync(destination, by, tag, mode="delta", purpose="", capture=None) -> SyncRun:
    """Start a sync and run its task as the worker would once the request commits."""
    with capture(execute=True):
        run = services.sync_start(destination=destination, by=by, tag=tag.slug, mode=mode, purpose=purpose)
    return SyncRun.objects.get(pk=run.pk)


def _ids(items):
    return sorted(item["external_id"] for item in items)


def test_the_first_delta_sends_every_member_as_entered_then_only_changes(
    agent, hook, django_capture_on_commit_callbacks
):
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=100)
    tag = f.manual_tag("vip")
    a, b, c = f.customer(external_id="A"), f.customer(external_id="B"), f.customer(external_id="C")
    f.enter(tag, [a, b])

    first = _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)
    f.enter(tag, [c])
    f.leave(tag, [a])
    second = _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)

    [one, two] = [r.body for r in receiver.received]
    assert all(r.signature_ok and r.status == 200 for r in receiver.received)
    assert (_ids(one["entered"]), one["exited"]) == (["A", "B"], [])
    assert (_ids(two["entered"]), _ids(two["exited"])) == (["C"], ["A"])
    assert two["sync"] == second.pk and two["mode"] == "delta" and two["audience"] == {"tag": "vip"}
    assert (first.status, first.entered, first.sent) == ("done", 2, 2)
    assert (second.status, second.entered, second.exited, second.sent) == ("done", 1, 1, 2)


def test_a_snapshot_sends_every_member_each_time(agent, hook, django_capture_on_commit_callbacks):
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=100)
    tag = f.manual_tag()
    f.enter(tag, [f.customer(external_id="A"), f.customer(external_id="B")])

    _sync(destination, agent, tag, mode="snapshot", capture=django_capture_on_commit_callbacks)
    run = _sync(destination, agent, tag, mode="snapshot", capture=django_capture_on_commit_callbacks)

    bodies = [r.body for r in receiver.received]
    assert [_ids(b["members"]) for b in bodies] == [["A", "B"], ["A", "B"]]
    assert all("entered" not in b for b in bodies)
    assert (run.members, run.sent, run.batches) == (2, 2, 1)


def test_an_empty_delta_sends_nothing_and_an_empty_snapshot_says_so(
    agent, hook, django_capture_on_commit_callbacks
):
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=10)
    tag = f.manual_tag()

    delta = _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)
    snapshot = _sync(destination, agent, tag, mode="snapshot", capture=django_capture_on_commit_callbacks)

    assert (delta.status, delta.batches) == ("done", 0)
    assert [r.body["members"] for r in receiver.received] == [[]]
    assert snapshot.status == "done"


def test_members_go_in_batches_of_the_destinations_batch_size(
    agent, hook, django_capture_on_commit_callbacks
):
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=3)
    tag = f.manual_tag()
    f.enter(tag, f.customers(7))

    run = _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)

    bodies = [r.body for r in receiver.received]
    assert [len(b["entered"]) for b in bodies] == [3, 3, 1]
    assert [(b["batch"], b["batches"]) for b in bodies] == [(1, 3), (2, 3), (3, 3)]
    assert [r.idempotency_key for r in receiver.received] == [f"sync-{run.pk}-{n}" for n in (1, 2, 3)]
    assert len({i["external_id"] for b in bodies for i in b["entered"]}) == 7
    assert (run.batches, run.sent) == (3, 7)


def test_only_members_holding_the_consent_purpose_are_sent(agent, hook, django_capture_on_commit_callbacks):
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=100, purpose="marketing_sms")
    tag = f.manual_tag()
    granted = [f.customer(external_id="YES1"), f.customer(external_id="YES2")]
    withdrawn, unknown = f.customer(external_id="NO"), f.customer(external_id="UNKNOWN")
    f.grant(granted, "marketing_sms")
    f.withdraw([withdrawn], "marketing_sms")
    f.enter(tag, [*granted, withdrawn, unknown])

    run = _sync(destination, agent, tag, purpose="marketing_sms", capture=django_capture_on_commit_callbacks)

    [got] = receiver.received
    assert _ids(got.body["entered"]) == ["YES1", "YES2"]
    assert (run.members, run.sent, run.skipped) == (2, 2, 2)


def test_a_member_who_withdraws_consent_exits_at_the_next_delta(
    agent, hook, django_capture_on_commit_callbacks
):
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=100, purpose="marketing_sms")
    tag = f.manual_tag()
    people = [f.customer(external_id="P1"), f.customer(external_id="P2")]
    f.grant(people, "marketing_sms")
    f.enter(tag, people)
    _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)

    f.withdraw([people[0]], "marketing_sms")
    _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)

    assert (receiver.received[1].body["entered"], _ids(receiver.received[1].body["exited"])) == ([], ["P1"])


def test_a_failed_sync_is_logged_and_its_retry_neither_loses_nor_doubles_a_member(
    agent, hook, django_capture_on_commit_callbacks
):
    # given a receiver that answers 500 to the second request of the sync
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=2)
    tag = f.manual_tag()
    f.enter(tag, f.customers(5))
    receiver.fail_nth = 2

    # when the sync runs, fails, the tag changes, and the sync is retried
    failed = _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)
    assert failed.status == "failed" and failed.error.startswith("batch 2/3: HTTP 500")
    assert failed.sent == 2 and not SyncBaseline.objects.exists()  # the baseline did not move
    latecomer = f.customer(external_id="LATE")
    f.enter(tag, [latecomer])
    with django_capture_on_commit_callbacks(execute=True):
        services.sync_retry(run=failed, by=agent)
    retried = SyncRun.objects.get(pk=failed.pk)

    # then every original member arrived in exactly one 2xx request, with stable keys
    ok = [r for r in receiver.received if r.status == 200]
    delivered = [i["external_id"] for r in ok for i in r.body["entered"]]
    assert len(delivered) == 5 and len(set(delivered)) == 5
    keys = [r.idempotency_key for r in receiver.received]
    assert keys == [f"sync-{failed.pk}-{n}" for n in (1, 2, 2, 3)]
    assert (retried.status, retried.attempts, retried.sent, retried.error) == ("done", 2, 5, "")
    assert SyncBaseline.objects.count() == 5
    assert not SyncBatch.objects.exclude(body="").exists()  # delivered bodies are not kept
    # and the next delta brings exactly the latecomer
    _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)
    assert _ids(receiver.received[-1].body["entered"]) == ["LATE"]


def test_a_new_sync_waits_while_a_failed_one_awaits_its_retry(
    agent, hook, django_capture_on_commit_callbacks
):
    receiver, url = hook(always_fail=True)
    destination = f.webhook(agent, url, secret=SECRET)
    tag = f.manual_tag()
    f.enter(tag, f.customers(1))
    failed = _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)
    assert failed.status == "failed"
    with pytest.raises(services.SyncBusy):
        services.sync_start(destination=destination, by=agent, tag=tag.slug, mode="delta")


def test_a_run_is_executed_once(agent, hook, django_capture_on_commit_callbacks):
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET)
    tag = f.manual_tag()
    f.enter(tag, f.customers(1))
    run = _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)
    assert sync_execute(run_id=run.pk) is None  # done: a duplicate task does nothing
    assert len(receiver.received) == 1


# --- files ---------------------------------------------------------------------------------------------


def _file_destination(by, folder="crm/exports", **fields):
    from journeys import services as journey_services

    return journey_services.destination_create(
        by=by, name=f"file-{folder}", kind="file", folder=folder, **fields
    )


def test_a_file_sync_writes_a_csv_with_a_header_in_the_folder(
    agent, file_root, django_capture_on_commit_callbacks
):
    destination = _file_destination(agent)
    tag = f.manual_tag("vip")
    f.enter(tag, [f.customer(external_id="B"), f.customer(external_id="A")])

    run = _sync(destination, agent, tag, mode="snapshot", capture=django_capture_on_commit_callbacks)
    f.leave(tag, [f.customer(external_id="Z")])  # nobody: no change
    delta = _sync(destination, agent, tag, mode="delta", capture=django_capture_on_commit_callbacks)

    path = file_root / run.file_path
    assert run.status == "done" and path.parent == file_root / "crm" / "exports"
    assert list(csv.reader(path.open(encoding="utf-8"))) == [["external_id"], ["A"], ["B"]]
    assert list(csv.reader((file_root / delta.file_path).open(encoding="utf-8"))) == [
        ["external_id", "change"]
    ]
    assert not list((file_root / "crm" / "exports").glob(".sync-*"))  # no temporary file left


def test_a_delta_file_lists_entered_and_exited(agent, file_root, django_capture_on_commit_callbacks):
    destination = _file_destination(agent)
    tag = f.manual_tag()
    a, b = f.customer(external_id="A"), f.customer(external_id="B")
    f.enter(tag, [a])
    _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)
    f.enter(tag, [b])
    f.leave(tag, [a])

    run = _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)

    rows = list(csv.reader((file_root / run.file_path).open(encoding="utf-8")))
    assert rows == [["external_id", "change"], ["B", "entered"], ["A", "exited"]]


@pytest.mark.parametrize(
    "folder, words",
    [
        ("../outside", "leaves the file root"),
        ("/etc", "absolute path"),
        ("a/../../b", "leaves the file root"),
    ],
)
def test_a_folder_escaping_the_root_is_refused_naming_it(agent, file_root, folder, words):
    from journeys.definition import DefinitionInvalid
    from journeys.models import Destination

    with pytest.raises(DefinitionInvalid) as caught:
        _file_destination(agent, folder=folder)
    [error] = caught.value.errors
    assert error.path == "folder" and words in error.message and folder in error.message
    assert not Destination.objects.exists()


def test_a_symlink_out_of_the_root_fails_the_sync_and_writes_nothing(
    agent, file_root, tmp_path, django_capture_on_commit_callbacks
):
    outside = tmp_path / "outside"
    outside.mkdir()
    file_root.mkdir(parents=True)
    (file_root / "link").symlink_to(outside)
    destination = _file_destination(agent, folder="link")
    tag = f.manual_tag()
    f.enter(tag, f.customers(1))

    run = _sync(destination, agent, tag, capture=django_capture_on_commit_callbacks)

    assert run.status == "failed" and "leaves the file root" in run.error
    assert not list(outside.iterdir())


# --- schedules -----------------------------------------------------------------------------------------


def test_a_schedule_after_each_build_syncs_when_the_tag_build_commits(
    agent, hook, django_capture_on_commit_callbacks
):
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=50)
    tag = f.manual_tag("vip")
    services.schedule_create(destination=destination, by=agent, tag="vip", cadence="after_build")

    with django_capture_on_commit_callbacks(execute=True):
        f.enter(tag, [f.customer(external_id="NEW")])

    [run] = SyncRun.objects.all()
    assert (run.origin, run.status, run.entered) == ("build", "done", 1)
    assert _ids(receiver.received[0].body["entered"]) == ["NEW"]


def test_a_build_of_another_tag_starts_nothing(agent, hook, django_capture_on_commit_callbacks):
    _receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET)
    f.manual_tag("vip")
    other = f.manual_tag("other")
    services.schedule_create(destination=destination, by=agent, tag="vip", cadence="after_build")
    with django_capture_on_commit_callbacks(execute=True):
        f.enter(other, f.customers(1))
    assert not SyncRun.objects.exists()


def test_hourly_and_daily_schedules_are_due_once_per_period(agent, hook):
    _receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET)
    f.manual_tag("vip")
    hourly = services.schedule_create(destination=destination, by=agent, tag="vip", cadence="hourly")
    daily = services.schedule_create(
        destination=destination, by=agent, tag="vip", cadence="daily", at=time(9, 0)
    )
    zone = timezone.get_default_timezone()
    now = datetime(2026, 12, 7, 9, 30, tzinfo=zone)

    assert schedules.is_due(hourly, now) and schedules.is_due(daily, now)
    hourly.last_run_at = daily.last_run_at = now
    assert not schedules.is_due(hourly, now + timedelta(minutes=59))
    assert schedules.is_due(hourly, now + timedelta(minutes=60))
    assert not schedules.is_due(daily, now + timedelta(hours=23))  # 08:30 the next day
    assert schedules.is_due(daily, now + timedelta(hours=23, minutes=31))  # 09:01 the next day


def test_the_beat_starts_a_due_schedule_and_retries_its_failed_sync(
    agent, hook, django_capture_on_commit_callbacks
):
    receiver, url = hook(fail_first=1)
    destination = f.webhook(agent, url, secret=SECRET, batch_size=10)
    tag = f.manual_tag("vip")
    f.enter(tag, f.customers(2))
    services.schedule_create(destination=destination, by=agent, tag="vip", cadence="hourly")
    now = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        assert schedules.schedules_run(now=now) == 1
    [run] = SyncRun.objects.all()
    assert (run.origin, run.status) == ("schedule", "failed")
    with django_capture_on_commit_callbacks(execute=True):
        assert schedules.schedules_run(now=now + timedelta(minutes=30)) == 0  # not due yet
        assert schedules.schedules_run(now=now + timedelta(hours=1)) == 1

    [run] = SyncRun.objects.all()  # the same sync, retried: no second delta over an unmoved baseline
    assert (run.status, run.attempts, run.sent) == ("done", 2, 2)
    assert [r.status for r in receiver.received] == [500, 200]
    assert receiver.received[0].idempotency_key == receiver.received[1].idempotency_key


def test_a_campaign_audience_syncs_its_include_minus_exclude_tags(
    agent, manager, hook, django_capture_on_commit_callbacks
):
    from tests.campaigns import factories as cf

    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=50)
    vip, churned = f.manual_tag("vip"), f.manual_tag("churned")
    a, b = f.customer(external_id="A"), f.customer(external_id="B")
    f.enter(vip, [a, b])
    f.enter(churned, [b])
    campaign = cf.campaign_make(owner=manager, audience_include=["vip"], audience_exclude=["churned"])

    with django_capture_on_commit_callbacks(execute=True):
        run = services.sync_start(destination=destination, by=agent, campaign=campaign.pk, mode="snapshot")

    assert _ids(receiver.received[0].body["members"]) == ["A"]
    assert receiver.received[0].body["audience"] == {"campaign": campaign.code}
    assert SyncRun.objects.get(pk=run.pk).status == "done"


def test_a_run_a_dead_worker_left_running_becomes_failed_and_retryable(
    agent, hook, django_capture_on_commit_callbacks
):
    receiver, url = hook()
    destination = f.webhook(agent, url, secret=SECRET, batch_size=10)
    tag = f.manual_tag("vip")
    f.enter(tag, f.customers(2))
    run = services.sync_start(destination=destination, by=agent, tag="vip")  # queued, its task not run
    SyncRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now() - timedelta(hours=1))

    schedules.schedules_run()

    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", "worker_lost")
    with django_capture_on_commit_callbacks(execute=True):
        services.sync_retry(run=run, by=agent)
    run.refresh_from_db()
    assert (run.status, run.sent) == ("done", 2) and len(receiver.received) == 1
