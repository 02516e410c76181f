"""The export job: one JSON file, under an unguessable name, holding everything we hold about the person
(every event, consent and its history, tags and their history, campaign journeys); failures end the
request as failed with a scrubbed reason."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage

from crm_tags import portability
from crm_tags.models import Event, TagMembership, TagMembershipChange
from privacy import rights
from privacy.models import ConsentChange
from tests.privacy import rights_factories as rf
from tests.privacy.conftest import PLANTED_EMAIL, PLANTED_NAME, PLANTED_PHONE

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(planted, manager, django_capture_on_commit_callbacks):
    planted.attributes = {"wechat_openid": "oPLANTED-openid", "vip_level": 3}
    planted.save(update_fields=["attributes"])
    made = rf.world(planted, manager, django_capture_on_commit_callbacks)
    return planted, made


def _bundle(req) -> dict:
    with default_storage.open(req.file, "rb") as handle:
        return json.load(handle)


def test_the_bundle_holds_every_event_of_the_person(person, manager, django_capture_on_commit_callbacks):
    # given a person with events (and a bystander with as many)
    planted, _made = person
    # when an export is filed (it runs at once)
    req = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    # then the file holds exactly the person's events
    assert req.status == "done"
    bundle = _bundle(req)
    expected = list(
        Event.objects.filter(customer=planted).order_by("occurred_at", "id").values_list("id", flat=True)
    )
    assert [e["id"] for e in bundle["events"]] == expected
    assert req.report["events"] == len(expected) == 9
    assert {e["event_type"] for e in bundle["events"]} == {"page_view", "order"}


def test_the_bundle_holds_profile_identifiers_consent_tags_and_journeys(
    person, manager, django_capture_on_commit_callbacks
):
    planted, made = person
    req = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    bundle = _bundle(req)
    assert bundle["profile"]["name"] == PLANTED_NAME
    assert bundle["profile"]["attributes"] == {"wechat_openid": "oPLANTED-openid", "vip_level": 3}
    assert bundle["identifiers"] == {
        "external_id": "PLANTED1",
        "email": PLANTED_EMAIL,
        "phone": PLANTED_PHONE,
        "attributes": {"wechat_openid": "oPLANTED-openid"},
    }
    assert bundle["consent"]["current"][0]["purpose"] == "marketing_email"
    assert [(c["old_state"], c["new_state"]) for c in bundle["consent"]["history"]] == [
        ("unknown", "granted"),
        ("granted", "withdrawn"),
    ]
    assert ConsentChange.objects.filter(customer=planted).count() == len(bundle["consent"]["history"])
    memberships = TagMembership.objects.filter(customer=planted)
    assert (
        {m["tag"] for m in bundle["tags"]["memberships"]}
        == {"active-viewers", "in-city"}
        == {m.tag.slug for m in memberships}
    )
    assert all(m["since"] for m in bundle["tags"]["memberships"])
    assert len(bundle["tags"]["history"]) == TagMembershipChange.objects.filter(customer=planted).count() == 2
    assert [(t["campaign"], t["channel"]) for t in bundle["campaigns"]["touchpoints"]] == [
        ("double-11", "wechat"),
        ("double-11", "douyin"),
    ]
    assert bundle["campaigns"]["conversions"][0]["revenue"] == "88.00"
    assert made["bystander"].external_id not in json.dumps(bundle)
    assert req.report == {
        "consents": 1,
        "consent_changes": 2,
        "events": 9,
        "tag_memberships": 2,
        "tag_history": 2,
        "touchpoints": 2,
        "conversions": 1,
        "profile": 1,
        "identifiers": 4,
        "bytes": Path(default_storage.path(req.file)).stat().st_size,
    }


def test_the_file_lies_under_privacy_with_an_unguessable_name(
    planted, manager, django_capture_on_commit_callbacks
):
    first = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    second = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    for req in (first, second):
        path = Path(default_storage.path(req.file))
        assert path.parent == Path(settings.MEDIA_ROOT) / "privacy"
        assert len(path.stem) >= 40 and "PLANTED" not in path.name and str(req.pk) not in path.stem[:3]
    assert first.file != second.file


def test_a_failing_export_ends_failed_with_a_scrubbed_reason(
    planted, manager, monkeypatch, django_capture_on_commit_callbacks
):
    # given the events cannot be read, with an error quoting the person's e-mail
    def broken(**kwargs):
        raise RuntimeError(f"cannot read events of {PLANTED_EMAIL}")

    monkeypatch.setattr(portability, "customer_events_stream", broken)
    # when the export runs
    req = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    # then it failed, said why, and the reason holds no e-mail address
    assert req.status == "failed" and req.finished_at
    assert "cannot read events" in req.error and PLANTED_EMAIL not in req.error
    assert not req.file


def test_an_export_whose_customer_is_gone_fails(planted, manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        req = rights.request_file(kind="export", customer_external_id="PLANTED1", by=manager)
    planted.delete()
    rights.request_export_run(request_id=req.pk)
    req.refresh_from_db()
    assert req.status == "failed"
    assert req.error == "The customer no longer exists."


def test_a_request_not_running_is_left_alone(planted, manager, django_capture_on_commit_callbacks):
    req = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    finished = req.finished_at
    assert rights.request_export_run(request_id=req.pk) is None
    req.refresh_from_db()
    assert (req.status, req.finished_at) == ("done", finished)


def test_the_filer_is_notified_when_it_is_done(planted, manager, django_capture_on_commit_callbacks):
    from accounts.models import Notification

    req = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    note = Notification.objects.get(recipient=manager, verb="privacy.request_done")
    assert str(req.pk) in note.title and "PLANTED" not in note.title
