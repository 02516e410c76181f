"""Dry run (back-test): it equals what the live engine does over the same replayed period, it writes and
sends nothing, bad periods are named, and whoever sees the journey may run it (others get a 404)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm_tags.manual_members import tag_members_change
from journeys import admission, dryrun, engine, selectors, services
from journeys.models import ContactCount, Delivery, DryRun, Enrolment, StepRun
from privacy.models import ConsentChange
from tests.crm_tags import factories as crm
from tests.journeys import factories as f
from tests.journeys.test_api import _assert_matches_schema

pytestmark = pytest.mark.django_db
PLANTED_EMAIL = "li.na.planted@example.com"
PLANTED_PHONE = "13987654321"


def _hour(dt):
    return dt.replace(minute=0, second=0, microsecond=0)


def _steps(sms, plain, template):
    return [
        {"wait": {"days": 1}},
        {
            "branch": {
                "if": {"event": "order", "agg": "count", "window_days": 30, "op": ">=", "value": 1},
                "then": [
                    {"id": "coupon", "action": "webhook", "destination": sms.pk, "template": {"c": "X"}}
                ],
                "else": [
                    {
                        "id": "visit",
                        "wait": {"until_event": "visit", "timeout_days": 3},
                        "then": [{"id": "mail", "action": "email", "template": template.pk}],
                        "timeout": [
                            {"id": "ping", "action": "webhook", "destination": plain.pk, "template": {}}
                        ],
                    }
                ],
            }
        },
        {"wait": {"days": 2}},
    ]


@pytest.fixture
def history(manager):
    """A journey on entering "vip", and 30 days ago a history: two builds, orders (before, for the branch,
    and after, as the goal), visits (waking the event wait), consent granted then withdrawn by one."""
    t0 = _hour(timezone.now() - timedelta(days=30))
    tag = f.manual_tag("vip")
    sms = f.webhook(manager, "http://127.0.0.1:9/sms", purpose="marketing_sms")
    plain = f.webhook(manager, "http://127.0.0.1:9/plain")
    template = services.email_template_create(
        by=manager, name="thanks", texts={"en": {"subject": "Thanks", "body": "Hi"}}
    )
    journey = f.journey(
        manager,
        tag=tag,
        steps=_steps(sms, plain, template),
        entry={"reentry": "never", "holdout_percent": 20},
        goal={"event": "order", "within_days": 5},
    )
    people = f.customers(23) + [f.customer(email=PLANTED_EMAIL, phone=PLANTED_PHONE)]
    people[3].email = ""
    people[3].save(update_fields=["email"])
    f.grant(people[:16], "marketing_sms", "marketing_email")
    f.withdraw(people[:2], "marketing_sms")
    # the consent history as it happened: granted before the period, two withdrew on its first evening
    ConsentChange.objects.filter(new_state="granted").update(at=t0 - timedelta(days=1))
    ConsentChange.objects.filter(new_state="withdrawn").update(at=t0 + timedelta(hours=12))
    builds = {t0: people[:14], t0 + timedelta(days=2): people[14:]}
    events = [(p, "order", t0 - timedelta(days=5), Decimal("50")) for p in people[::3]]
    events += [(p, "visit", t0 + timedelta(days=2, hours=5), None) for p in people[1::4]]
    events += [(p, "visit", t0 + timedelta(days=4, hours=3), None) for p in people[14::3]]
    events += [(p, "order", t0 + timedelta(days=3), Decimal("20")) for p in people[::5]]
    return {"journey": journey, "tag": tag, "people": people, "t0": t0, "builds": builds, "events": events}


def _live(history, end):
    """The live engine through the period, an hourly tick at each simulated moment, each build and event
    committed when its moment comes."""
    admission.process_new_events(now=history["t0"])  # the event cursor starts before the period
    builds = dict(history["builds"])
    events = sorted(history["events"], key=lambda e: e[2])
    # the orders before the period were there already
    crm.events([e for e in events if e[2] < history["t0"]])
    events = [e for e in events if e[2] >= history["t0"]]
    admission.process_new_events(now=history["t0"])
    now = history["t0"]
    while now <= end:
        for at in [at for at in builds if at <= now]:
            tag_members_change(tag=history["tag"], add=[p.pk for p in builds.pop(at)], now=at)
        arriving = [e for e in events if e[2] <= now]
        events = events[len(arriving) :]
        crm.events(arriving)
        admission.admit_tag_triggers(now=now)
        admission.process_new_events(now=now)
        engine.run_due(now=now)
        now += timedelta(hours=1)


def _counts(stats):
    steps = {s["id"]: (s["kind"], s["passed"], s["acted"], s["skipped"], s["failed"]) for s in stats["steps"]}
    return stats["entered"], stats["active"], stats["converted"], stats["holdout"], steps


def test_a_dry_run_equals_the_live_run_over_the_same_period(history):
    end = history["t0"] + timedelta(days=8)
    _live(history, end)
    live = selectors.journey_stats(journey=history["journey"])
    assert live["entered"] > 0 and live["holdout"]["entered"] > 0  # the scenario exercises both groups
    enrolments, runs = Enrolment.objects.count(), StepRun.objects.count()

    dry = dryrun.dry_run_compute(journey=history["journey"], low=history["t0"] - timedelta(hours=1), high=end)

    assert _counts(dry) == _counts(live)
    assert (dry["lift"], dry["lift_ci"]) == (live["lift"], live["lift_ci"])
    # every path was taken at least once, so the comparison compares something
    steps = {s["id"]: s for s in dry["steps"]}
    assert steps["coupon"]["acted"] and steps["coupon"]["skipped"]  # consent withdrawn mid-period
    assert steps["mail"]["acted"] + steps["mail"]["skipped"] and steps["ping"]["acted"]
    assert dry["converted"] + dry["holdout"]["converted"] > 0
    # and it wrote nothing
    assert (Enrolment.objects.count(), StepRun.objects.count()) == (enrolments, runs)


def test_a_dry_run_writes_and_sends_nothing(history):
    end = history["t0"] + timedelta(days=8)
    for at, people in history["builds"].items():
        tag_members_change(tag=history["tag"], add=[p.pk for p in people], now=at)
    crm.events(history["events"])
    dry = dryrun.dry_run_compute(journey=history["journey"], low=history["t0"] - timedelta(hours=1), high=end)
    assert dry["entered"] + dry["holdout"]["entered"] == 24
    assert not Enrolment.objects.exists() and not StepRun.objects.exists() and not Delivery.objects.exists()
    assert not ContactCount.objects.exists()  # the frequency cap was counted in memory


# --- the API ---------------------------------------------------------------------------------------------


def _url(journey):
    return f"/api/v1/journeys/{journey.pk}/dry-run/"


def _period(days_ago_from=10, days_ago_to=1):
    now = timezone.now()
    return {
        "from": (now - timedelta(days=days_ago_from)).isoformat(),
        "to": (now - timedelta(days=days_ago_to)).isoformat(),
    }


def test_the_api_starts_a_job_and_its_url_gives_the_result(api_for, marketer, history):
    for at, people in history["builds"].items():
        tag_members_change(tag=history["tag"], add=[p.pk for p in people], now=at)
    history["journey"].team = marketer.team
    history["journey"].save(update_fields=["team"])
    client = api_for(marketer)
    response = client.post(_url(history["journey"]), _period(31, 1), format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    _assert_matches_schema(body, "/api/v1/journeys/{id}/dry-run/", "post", "202")
    # the task runs after the request's transaction commits; in the test it runs here
    dryrun.dry_run_execute(dry_run_id=body["job_id"])
    polled = client.get(body["url"])
    assert polled.status_code == 200
    assert polled.json()["status"] == "done"
    result = polled.json()["result"]
    assert result["entered"] + result["holdout"]["entered"] == 24
    _assert_matches_schema(polled.json(), "/api/v1/journeys/{id}/dry-run/{job_id}/")
    # customers are counted, never shown: the planted personal values appear nowhere
    assert PLANTED_EMAIL not in polled.content.decode() and PLANTED_PHONE not in polled.content.decode()


def _fields(response):
    return {error["field"] for error in response.json()["errors"]}


@pytest.mark.parametrize(
    ("period", "field"),
    [
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"}, "to"),
        ({"from": "yesterday", "to": "2026-03-01T00:00:00Z"}, "from"),
        ({"to": "2026-03-01T00:00:00Z"}, "from"),
    ],
)
def test_a_bad_period_is_a_400_naming_the_field(api_for, manager, period, field):
    journey = f.journey(manager, tag=f.manual_tag())
    response = api_for(manager).post(_url(journey), period, format="json")
    assert response.status_code == 400
    assert field in _fields(response)
    assert not DryRun.objects.exists()


def test_a_future_end_is_refused(api_for, manager):
    journey = f.journey(manager, tag=f.manual_tag())
    now = timezone.now()
    period = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
    response = api_for(manager).post(_url(journey), period, format="json")
    assert response.status_code == 400 and _fields(response) == {"to"}


def test_who_cannot_see_the_journey_cannot_dry_run_it_or_read_its_result(api_for, manager, make_user):
    journey = f.journey(manager, tag=f.manual_tag())
    job = DryRun.objects.create(
        journey=journey,
        requested_by=manager,
        period_from=timezone.now() - timedelta(days=2),
        period_to=timezone.now() - timedelta(days=1),
    )
    outsider = make_user("outsider", role="requester", team="Somebody else")
    client = api_for(outsider)
    assert client.post(_url(journey), _period(), format="json").status_code == 404
    assert client.get(f"{_url(journey)}{job.pk}/").status_code == 404
    assert DryRun.objects.count() == 1
    assert api_for(None).post(_url(journey), _period(), format="json").status_code in (401, 403)


def test_the_journeys_team_may_dry_run_it(api_for, marketer, manager):
    journey = f.journey(manager, tag=f.manual_tag())
    journey.team = marketer.team
    journey.save(update_fields=["team"])
    response = api_for(marketer).post(_url(journey), _period(), format="json")
    assert response.status_code == 202
    job = DryRun.objects.get()
    assert (job.journey_id, job.requested_by_id, job.status) == (journey.pk, marketer.pk, "running")
    assert api_for(marketer).get(response.json()["url"]).json() == {
        "status": "running",
        "result": None,
    }


def test_a_failing_dry_run_reports_failed(manager, monkeypatch):
    journey = f.journey(manager, tag=f.manual_tag())
    job = DryRun.objects.create(
        journey=journey,
        requested_by=manager,
        period_from=timezone.now() - timedelta(days=2),
        period_to=timezone.now() - timedelta(days=1),
    )

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(dryrun, "dry_run_compute", broken)
    dryrun.dry_run_execute(dry_run_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and job.result is None


def test_polling_a_dry_run_costs_a_fixed_number_of_queries(api_for, manager, django_assert_max_num_queries):
    journey = f.journey(manager, tag=f.manual_tag())
    job = DryRun.objects.create(
        journey=journey,
        requested_by=manager,
        period_from=timezone.now() - timedelta(days=2),
        period_to=timezone.now() - timedelta(days=1),
    )
    client = api_for(manager)
    client.get(f"{_url(journey)}{job.pk}/")  # warm the session and the user
    # (1) the journey in the viewer's reach (2) the dry run of that journey
    with django_assert_max_num_queries(2):
        assert client.get(f"{_url(journey)}{job.pk}/").status_code == 200


def test_consent_is_taken_as_of_the_moment_from_its_history():
    then = timezone.now() - timedelta(days=10)
    later_withdrew, granted_after, never_said = f.customers(3)
    f.grant([later_withdrew], "marketing_sms")
    f.withdraw([later_withdrew], "marketing_sms")
    f.grant([granted_after], "marketing_sms")
    ConsentChange.objects.filter(customer=later_withdrew, new_state="granted").update(
        at=then - timedelta(days=1)
    )
    ConsentChange.objects.filter(customer=later_withdrew, new_state="withdrawn").update(
        at=then + timedelta(days=1)
    )
    ConsentChange.objects.filter(customer=granted_after).update(at=then + timedelta(days=1))
    ids = [later_withdrew.pk, granted_after.pk, never_said.pk]
    # then: the one who withdrew later still consented; the one who granted later had not yet
    assert dryrun.consented_as_of(ids, "marketing_sms", then) == {later_withdrew.pk}
    assert dryrun.consented_as_of(ids, "marketing_sms", then + timedelta(days=2)) == {granted_after.pk}
