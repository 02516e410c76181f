"""Actions (e-mail, notify, ticket, tag add/remove) and the guards in front of customer-facing ones:
consent, the frequency cap across journeys, quiet hours."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Notification
from crm_tags.models import TagMembership
from journeys import delivery, engine, services
from journeys.models import Delivery, StepRun
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def thanks(db):
    return services.email_template_create(
        by=None,
        name="thanks",
        texts={
            "en": {
                "subject": "Thank you, {{ customer.name }}",
                "body": "Dear {{ customer.name }} in {{ customer.city }}",
            },
            "zh-hans": {"subject": "谢谢 {{ customer.name }}", "body": "亲爱的 {{ customer.name }}"},
        },
    )


def _journey_for(manager, steps, people, **kwargs):
    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag, steps=steps, **kwargs)
    f.enter(tag, people)
    f.admit()
    return journey


def _outcomes(journey, step="0"):
    return {
        r.enrolment.customer_id: (r.outcome, r.detail)
        for r in StepRun.objects.filter(journey=journey, step=step)
    }


def test_email_goes_to_who_consented_in_their_language(manager, thanks):
    # given two customers who consented to marketing e-mail (one reads Chinese) and one who did not
    en = f.customer(name="Ann", city="Hangzhou", attributes={"language": "en"})
    zh = f.customer(name="王芳", attributes={"language": "zh-hans"})
    silent = f.customer()
    f.grant([en, zh], "marketing_email")
    journey = _journey_for(manager, [{"action": "email", "template": thanks.pk}], [en, zh, silent])
    # when the step runs and the deliveries are sent
    engine.run_due()
    delivery.send_due()
    # then the consenting two got one e-mail each, in their language; the third was skipped, logged
    by_to = {m.to[0]: m for m in mail.outbox}
    assert set(by_to) == {en.email, zh.email}
    assert by_to[en.email].subject == "Thank you, Ann" and "Hangzhou" in by_to[en.email].body
    assert by_to[zh.email].subject == "谢谢 王芳"
    outcomes = _outcomes(journey)
    assert outcomes[silent.pk] == ("skipped", {"reason": "no_consent", "purpose": "marketing_email"})
    assert outcomes[en.pk][0] == "acted"
    # sending again sends nothing more
    delivery.send_due()
    assert len(mail.outbox) == 2


def test_consent_withdrawn_mid_journey_stops_contact(manager, thanks):
    person = f.customer()
    f.grant([person], "marketing_email")
    steps = [
        {"action": "email", "template": thanks.pk},
        {"wait": {"days": 1}},
        {"action": "email", "template": thanks.pk},
    ]
    journey = _journey_for(manager, steps, [person], entry={"reentry": "never"})
    now = timezone.now()
    engine.run_due(now=now)
    delivery.send_due(now=now)
    assert len(mail.outbox) == 1
    # when the customer withdraws while waiting
    f.withdraw([person], "marketing_email")
    engine.run_due(now=now + timedelta(days=1))
    delivery.send_due(now=now + timedelta(days=1))
    # then the second e-mail is skipped
    assert len(mail.outbox) == 1
    assert _outcomes(journey, "2")[person.pk] == (
        "skipped",
        {"reason": "no_consent", "purpose": "marketing_email"},
    )


def test_the_frequency_cap_holds_across_two_journeys(manager, thanks, settings):
    # given a cap of one e-mail a day and two journeys e-mailing the same customers
    settings.JOURNEYS_FREQUENCY_CAP = {"email": 1}
    people = f.customers(3)
    f.grant(people, "marketing_email")
    first = _journey_for(manager, [{"action": "email", "template": thanks.pk}], people)
    second = _journey_for(manager, [{"action": "email", "template": thanks.pk}], people)
    # when both run on the same day
    engine.run_due()
    delivery.send_due()
    # then each customer got one e-mail; the other journey's step was skipped for the cap
    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.email for p in people)
    outcomes = list(_outcomes(first).values()) + list(_outcomes(second).values())
    assert sorted(o for o, _d in outcomes) == ["acted"] * 3 + ["skipped"] * 3
    assert {d["reason"] for o, d in outcomes if o == "skipped"} == {"frequency_cap"}


def test_the_cap_resets_the_next_day(manager, thanks, settings):
    settings.JOURNEYS_FREQUENCY_CAP = {"email": 1}
    person = f.customer()
    f.grant([person], "marketing_email")
    steps = [
        {"action": "email", "template": thanks.pk},
        {"wait": {"days": 1}},
        {"action": "email", "template": thanks.pk},
    ]
    journey = _journey_for(manager, steps, [person])
    now = timezone.now()
    engine.run_due(now=now)
    engine.run_due(now=now + timedelta(days=1))
    assert [o for o, _d in (_outcomes(journey, "0") | {}).values()] == ["acted"]
    assert _outcomes(journey, "2")[person.pk][0] == "acted"


def test_quiet_hours_defer_customer_facing_actions_to_the_morning(manager, thanks, settings):
    # given quiet hours 22:00-08:00 and a customer who consented
    settings.JOURNEYS_QUIET_HOURS = (22, 8)
    person = f.customer()
    f.grant([person], "marketing_email")
    journey = _journey_for(manager, [{"action": "email", "template": thanks.pk}], [person])
    tomorrow = (timezone.now().astimezone(SHANGHAI) + timedelta(days=1)).date()
    late = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 23, 30, tzinfo=SHANGHAI)
    morning = datetime.combine(tomorrow + timedelta(days=1), datetime.min.time(), SHANGHAI).replace(hour=8)
    # when the step comes due at 23:30
    engine.run_due(now=late)
    # then it waits (no run, no e-mail) until 08:00 and runs then
    enrolment = f.enrolments(journey)[0]
    assert enrolment.state == "active" and enrolment.next_at == morning
    assert not StepRun.objects.filter(journey=journey).exists() and not Delivery.objects.exists()
    engine.run_due(now=morning)
    assert _outcomes(journey)[person.pk][0] == "acted"


def test_quiet_hours_do_not_hold_internal_actions(manager, support_team, settings):
    settings.JOURNEYS_QUIET_HOURS = (22, 8)
    person = f.customer()
    journey = _journey_for(manager, [{"action": "notify", "team": support_team.name}], [person])
    late = datetime.combine(
        timezone.now().astimezone(SHANGHAI).date() + timedelta(days=1), datetime.min.time(), SHANGHAI
    ).replace(hour=23)
    engine.run_due(now=late)
    assert _outcomes(journey)[person.pk][0] == "acted"


def test_notify_tells_the_team_by_external_id_only(manager, agent, support_team):
    person = f.customer(external_id="VIP-7", email="vip7@example.com", phone="13900000007")
    journey = _journey_for(
        manager, [{"action": "notify", "team": support_team.name, "message": "Call this VIP"}], [person]
    )
    engine.run_due()
    notes = Notification.objects.filter(kind="journey.notify")
    assert {n.recipient_id for n in notes} == {manager.pk, agent.pk}
    note = notes.first()
    assert note.params["customer"] == "VIP-7" and "vip7@example.com" not in str(note.params)
    assert note.url.endswith(f"/api/v1/journeys/{journey.pk}/enrolments/?customer=VIP-7")


def test_ticket_action_files_a_request(manager, marketer):
    from tickets.models import Ticket

    person = f.customer(external_id="VIP-9")
    tag = f.manual_tag()
    journey = f.journey(
        marketer,
        tag=tag,
        steps=[
            {
                "action": "ticket",
                "title": "Call {{customer.external_id}}",
                "type": "data_support",
                "urgency": "urgent",
            }
        ],
        activate_as=manager,
    )
    f.enter(tag, [person])
    f.admit()
    engine.run_due()
    ticket = Ticket.objects.get()
    assert ticket.title == "Call VIP-9" and ticket.urgency == "urgent" and ticket.requester == marketer
    assert _outcomes(journey)[person.pk] == ("acted", {"ticket": ticket.key})


def test_tag_add_and_remove_change_a_manual_tag(manager):
    winback = f.manual_tag("winback")
    people = f.customers(2)
    f.enter(winback, people[1:])
    journey = _journey_for(
        manager, [{"action": "tag_add", "tag": "winback"}, {"action": "tag_remove", "tag": "winback"}], people
    )
    engine.run_due()
    assert not TagMembership.objects.filter(tag=winback).exists()
    assert _outcomes(journey, "0")[people[0].pk][0] == "acted"
    assert _outcomes(journey, "1")[people[1].pk][0] == "acted"


def test_tag_add_triggers_a_journey_on_that_tag(manager):
    """Journeys chain: a step adding to a manual tag is a build whose entered set another journey reads."""
    vip = f.manual_tag("vip-list")
    second = f.journey(manager, tag=vip)
    person = f.customer()
    _journey_for(manager, [{"action": "tag_add", "tag": "vip-list"}], [person])
    engine.run_due()
    f.admit()
    assert [e.customer_id for e in f.enrolments(second)] == [person.pk]


def test_notify_one_staff_member_by_username(manager, agent):
    person = f.customer()
    journey = _journey_for(manager, [{"action": "notify", "user": agent.username}], [person])
    engine.run_due()
    assert [n.recipient_id for n in Notification.objects.filter(kind="journey.notify")] == [agent.pk]
    assert _outcomes(journey)[person.pk] == ("acted", {"recipients": 1})


def test_an_email_to_a_customer_without_an_address_is_skipped(manager, thanks):
    person = f.customer(email=None)
    f.grant([person], "marketing_email")
    journey = _journey_for(manager, [{"action": "email", "template": thanks.pk}], [person])
    engine.run_due()
    assert _outcomes(journey)[person.pk] == ("skipped", {"reason": "no_address"})
