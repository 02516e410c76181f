"""Erasing a person who sits in a failed audience sync's unsent batch: the batch loses the person's items (no
e-mail, phone or external id of theirs is left in any of the sync's rows), and the retry still delivers
everyone else, once."""

import pytest

from journeys.activation import services as activation
from journeys.models import SyncBatch, SyncRun
from tests.journeys import factories as f
from tests.journeys import receiver as rx
from tests.privacy import rights_factories as rf
from tests.privacy.conftest import PLANTED_EMAIL, PLANTED_PHONE

pytestmark = pytest.mark.django_db
SECRET = "erasure-sync-secret"
PURPOSE = "marketing_sms"


@pytest.fixture
def hook():
    receiver, url, server = rx.start(SECRET, always_fail=True)
    yield receiver, url
    server.shutdown()
    server.server_close()


def _sync_rows_text(run: SyncRun) -> str:
    """Everything the sync keeps, as one text: the run's columns and each batch's."""
    run = SyncRun.objects.get(pk=run.pk)
    batches = SyncBatch.objects.filter(run=run).values_list("body", "last_error", "idempotency_key")
    return " ".join([run.error, run.audience_label, *(" ".join(row) for row in batches)])


def test_an_erased_persons_values_leave_a_failed_syncs_unsent_batch_and_the_retry_sends_the_others(
    planted, manager, hook, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    server_receiver, url = hook
    # given a destination set up for e-mail and phone, and a delta sync of a tag whose receiver refused it
    destination = f.webhook(
        manager, url, secret=SECRET, batch_size=100, purpose=PURPOSE, personal_fields=["email", "phone"]
    )
    tag = f.manual_tag("sms-list")
    others = [
        f.customer(external_id="OTHER1", email="other1@example.com", phone="13800000001"),
        f.customer(external_id="OTHER2", email="other2@example.com", phone="13800000002"),
    ]
    f.grant([planted, *others], PURPOSE)
    f.enter(tag, [planted, *others])
    with capture(execute=True):
        run = activation.sync_start(
            destination=destination, by=manager, tag=tag.slug, mode="delta", purpose=PURPOSE
        )
    run = SyncRun.objects.get(pk=run.pk)
    assert run.status == "failed"
    kept = _sync_rows_text(run)
    assert PLANTED_EMAIL in kept and PLANTED_PHONE in kept and "PLANTED1" in kept  # planted for real

    # when the person is erased
    req = rf.erased(planted, manager, capture)
    assert req.status == "done", req.error

    # then none of their values is left in the failed sync's rows
    kept = _sync_rows_text(run)
    for value in (PLANTED_EMAIL, PLANTED_PHONE, "PLANTED1"):
        assert value.lower() not in kept.lower()
    [batch] = SyncBatch.objects.filter(run=run)
    assert (batch.status, batch.items) == ("pending", 2)

    # and the retry delivers the others, with their values, and never the person
    server_receiver.always_fail = False
    with capture(execute=True):
        activation.sync_retry(run=run, by=manager)
    run.refresh_from_db()
    assert (run.status, run.sent) == ("done", 2)
    delivered = [r.body for r in server_receiver.received if r.status == 200]
    assert len(delivered) == 1 and all(r.signature_ok for r in server_receiver.received)
    assert delivered[0]["entered"] == [
        {"external_id": "OTHER1", "email": "other1@example.com", "phone": "13800000001"},
        {"external_id": "OTHER2", "email": "other2@example.com", "phone": "13800000002"},
    ]
