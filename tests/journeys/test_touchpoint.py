"""The campaign touchpoint action: each enrolment adds one touchpoint to the journey's campaign (keyed by
the customer's external id), which attribution then credits."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from campaigns.attribution import attribute
from campaigns.models import Campaign, Conversion, Touchpoint
from journeys import engine, services
from journeys.models import StepRun
from tests.campaigns.factories import campaign_make
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db


def _journey_with_touchpoint(manager, campaign):
    tag = f.manual_tag()
    journey = f.journey(
        manager, tag=tag, campaign=campaign, steps=[{"action": "touchpoint", "channel": "sms"}]
    )
    return tag, journey


def test_each_enrolment_adds_one_touchpoint_that_attribution_credits(manager):
    # given a journey of a campaign whose step is an SMS touchpoint
    campaign = campaign_make(owner=manager)
    tag, journey = _journey_with_touchpoint(manager, campaign)
    people = f.customers(2)
    # when the customers enter and the step runs (twice over: the second run finds nothing due)
    f.enter(tag, people)
    f.admit()
    now = timezone.now()
    engine.run_due(now=now)
    engine.run_due(now=now + timedelta(minutes=1))
    # then the campaign has one SMS touchpoint per customer, by external id, at the step's time
    touches = Touchpoint.objects.filter(campaign=campaign).order_by("customer_external_id")
    assert [(t.customer_external_id, t.channel, t.occurred_at) for t in touches] == [
        (p.external_id, "sms", now) for p in sorted(people, key=lambda p: p.external_id)
    ]
    assert set(StepRun.objects.filter(journey=journey).values_list("outcome", flat=True)) == {"acted"}
    # and a later conversion of one of them is credited to the SMS channel
    Conversion.objects.create(
        campaign=campaign,
        customer_external_id=people[0].external_id,
        occurred_at=now + timedelta(days=1),
        revenue=Decimal("99.00"),
    )
    result = attribute(campaign=campaign, model="last_touch")
    assert result["channels"] == [{"channel": "sms", "conversions": 1.0, "revenue": 99.0}]


def test_a_batch_that_dies_before_commit_leaves_no_touchpoint_and_the_retry_adds_each_once(manager):
    campaign = campaign_make(owner=manager)
    tag, _journey = _journey_with_touchpoint(manager, campaign)
    f.enter(tag, f.customers(3))
    f.admit()
    with pytest.raises(RuntimeError), transaction.atomic():
        runner = engine.Runner(engine._claim(timezone.now(), 100), timezone.now())
        runner.run()
        runner.save()
        assert Touchpoint.objects.filter(campaign=campaign).count() == 3
        raise RuntimeError("the worker dies before commit")
    assert not Touchpoint.objects.filter(campaign=campaign).exists()
    engine.run_due()
    assert Touchpoint.objects.filter(campaign=campaign).count() == 3


def test_a_campaign_deleted_after_activation_fails_the_step(manager):
    campaign = campaign_make(owner=manager)
    tag, journey = _journey_with_touchpoint(manager, campaign)
    f.enter(tag, f.customers(1))
    f.admit()
    Campaign.objects.filter(pk=campaign.pk).delete()  # the journey's campaign becomes NULL
    engine.run_due()
    run = StepRun.objects.get(journey=journey)
    assert (run.outcome, run.detail) == ("failed", {"reason": "campaign_missing"})
    assert not Touchpoint.objects.exists()


def test_activation_refuses_a_touchpoint_once_the_campaign_is_gone(manager):
    campaign = campaign_make(owner=manager)
    tag = f.manual_tag()
    journey = f.journey(
        manager,
        tag=tag,
        campaign=campaign,
        steps=[{"action": "touchpoint", "channel": "sms"}],
        activate_as=False,
    )
    Campaign.objects.filter(pk=campaign.pk).delete()
    journey.refresh_from_db()
    with pytest.raises(services.DefinitionInvalid) as caught:
        services.journey_activate(journey=journey, by=manager)
    assert [e.path for e in caught.value.errors] == ["steps[0].action"]
