"""Journey pages: the list (counts, empty state, query count), the builder (save through the same
validation, errors by path), activation above the gray share, pause, the enrolment inspector; allow and
deny per page; personal values never shown to a viewer without view_pii."""

import html
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from journeys import engine
from journeys.models import Journey
from tests.conftest import in_english
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db
PLANTED_EMAIL = "li.na.planted@example.com"
PLANTED_PHONE = "13987654321"


@pytest.fixture
def vip():
    return f.manual_tag("vip")


def _draft(by, tag, steps=None):
    return f.journey(by, tag=tag, steps=steps or [{"wait": {"days": 1}}], activate_as=False)


def _definition(tag, steps):
    return json.dumps({"trigger": {"kind": "tag_entered", "tag": tag.slug}, "entry": {}, "steps": steps})


# --- list ----------------------------------------------------------------------------------------------


def test_the_list_shows_the_teams_journeys_with_counts(client_for, marketer, manager, vip):
    journey = f.journey(marketer, tag=vip, steps=[{"wait": {"days": 1}}], activate_as=manager)
    f.enter(vip, f.customers(3))
    f.admit()
    body = client_for(in_english(marketer)).get(reverse("journeys:list")).content.decode()
    assert journey.name in body
    assert '<td class="text-end" data-count="entered">3</td>' in body
    assert "Enters the tag Vip" in body


def test_the_list_hides_other_teams_journeys(client_for, marketer, other_requester, vip):
    journey = _draft(marketer, vip)
    body = client_for(other_requester).get(reverse("journeys:list")).content.decode()
    assert journey.name not in body


def test_an_empty_list_says_what_to_do_next(client_for, marketer):
    body = client_for(in_english(marketer)).get(reverse("journeys:list")).content.decode()
    assert "No journeys yet" in body and "New journey" in body


def test_the_list_needs_a_login(client):
    response = client.get(reverse("journeys:list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_list_runs_the_same_queries_for_one_journey_or_many(client_for, marketer, manager, vip):
    client = client_for(marketer)
    f.journey(marketer, tag=vip, activate_as=manager)
    client.get(reverse("journeys:list"))  # warm: the session and cached settings are read once
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("journeys:list"))
    for _ in range(4):
        f.journey(marketer, tag=vip, activate_as=manager)
    f.enter(vip, f.customers(2))
    f.admit()
    with CaptureQueriesContext(connection) as five:
        response = client.get(reverse("journeys:list"))
    assert response.content.decode().count("data-journey=") == 5
    # (1) session (2) user (3) the journeys with versions, owner, team, campaign and counts, one statement
    # (4) tag names for the triggers (5) tags and (6) campaigns for the "New journey" form
    # (7) unread notifications (8) the user's team
    assert len(five) == len(one) == 8


# --- create --------------------------------------------------------------------------------------------


def test_a_marketer_creates_a_draft(client_for, marketer, vip):
    response = client_for(marketer).post(
        reverse("journeys:create"), {"name": "VIP thanks", "trigger_kind": "tag_entered", "tag": "vip"}
    )
    journey = Journey.objects.get(name="VIP thanks")
    assert response.status_code == 302 and response["Location"] == reverse(
        "journeys:detail", args=[journey.pk]
    )
    assert journey.status == "draft" and journey.versions.get().trigger == {
        "kind": "tag_entered",
        "tag": "vip",
    }


def test_a_draft_without_its_tag_is_refused_and_nothing_is_saved(client_for, marketer, vip):
    response = client_for(in_english(marketer)).post(
        reverse("journeys:create"), {"name": "No tag", "trigger_kind": "tag_entered", "tag": ""}
    )
    assert response.status_code == 422
    assert "Pick the tag the customer enters or leaves." in response.content.decode()
    assert not Journey.objects.exists()


def _create(client, **fields):
    return client.post(reverse("journeys:create"), {"name": "Timed", **fields})


def _field_errors(response, field: str) -> list[str]:
    """The errors the page shows under one field of the new-journey form."""
    page = response.content.decode()
    return [html.unescape(e) for e in re.findall(rf'data-error-for="{field}">([^<]*)<', page)]


@pytest.mark.parametrize(
    ("fields", "trigger"),
    [
        (
            {"date_attribute": "birth_date", "date_offset": "before", "offset_days": "3", "at": "09:30"},
            {"kind": "date", "attribute": "birth_date", "days_before": 3, "at": "09:30"},
        ),
        (
            {"date_attribute": "attributes.", "attribute_key": "signup_day", "date_offset": "after"}
            | {"offset_days": "7", "at": "18:00"},
            {"kind": "date", "attribute": "attributes.signup_day", "days_after": 7, "at": "18:00"},
        ),
        (
            {"date_attribute": "birth_date", "date_offset": "on", "offset_days": "9", "at": "08:00"},
            {"kind": "date", "attribute": "birth_date", "at": "08:00"},
        ),
    ],
)
def test_a_draft_starts_on_a_yearly_date(client_for, marketer, vip, fields, trigger):
    response = _create(client_for(marketer), trigger_kind="date", **fields)
    journey = Journey.objects.get(name="Timed")
    assert response.status_code == 302 and journey.versions.get().trigger == trigger


@pytest.mark.parametrize(
    ("trigger_kind", "fields", "field", "message"),
    [
        (
            "date",
            {"date_attribute": "birth_date", "date_offset": "on", "at": "25:00"},
            "at",
            "At (company time zone): must be a time of day HH:MM (company time zone)",
        ),
        (
            "date",
            {
                "date_attribute": "attributes.",
                "attribute_key": "sign up!",
                "date_offset": "on",
                "at": "09:00",
            },
            "attribute_key",
            "Detail key: must be birth_date or attributes.<key> (a date, YYYY-MM-DD)",
        ),
        (
            "date",
            {"date_attribute": "birth_date", "date_offset": "before", "offset_days": "400", "at": "09:00"},
            "offset_days",
            "Days: must be a whole number from 0 to 365",
        ),
        (
            "date",
            {"date_attribute": "birth_date", "date_offset": "after", "offset_days": "", "at": "09:00"},
            "offset_days",
            "Days: must be a whole number from 0 to 365",
        ),
        (
            "schedule",
            {"tag": "vip", "repeat": "once", "once_at": "2020-01-01T10:00"},
            "once_at",
            "On (company time zone): must be in the future",
        ),
        (
            "schedule",
            {"tag": "vip", "repeat": "once", "once_at": "next tuesday"},
            "once_at",
            "On (company time zone): must be an ISO 8601 date-time (once), or give every with HH:MM",
        ),
        (
            "schedule",
            {"tag": "", "repeat": "day", "at": "06:00"},
            "tag",
            "Tag: must be the slug of an existing tag",
        ),
        (
            "schedule",
            {"tag": "vip", "repeat": "week", "at": "7 am"},
            "at",
            "At (company time zone): must be a time of day HH:MM (company time zone)",
        ),
    ],
)
def test_a_bad_date_or_schedule_trigger_is_refused_naming_the_field(
    client_for, marketer, vip, trigger_kind, fields, field, message
):
    response = _create(client_for(in_english(marketer)), trigger_kind=trigger_kind, **fields)
    assert response.status_code == 422
    assert _field_errors(response, field) == [message]
    assert not Journey.objects.exists()


def test_a_draft_starts_on_a_schedule_once_or_every_week(client_for, marketer, vip):
    client = client_for(marketer)
    _create(client, trigger_kind="schedule", tag="vip", repeat="once", once_at="2099-05-01T10:00")
    _create(client, trigger_kind="schedule", tag="vip", repeat="week", weekday="5", at="07:15")
    _create(client, trigger_kind="schedule", tag="vip", repeat="day", weekday="", at="06:00")
    triggers = [j.versions.get().trigger for j in Journey.objects.order_by("pk")]
    assert triggers == [
        {"kind": "schedule", "tag": "vip", "at": "2099-05-01T10:00"},
        {"kind": "schedule", "tag": "vip", "every": "week", "at": "07:15", "weekday": 5},
        {"kind": "schedule", "tag": "vip", "every": "day", "at": "06:00"},
    ]


def test_the_new_journey_form_offers_date_and_schedule_triggers(client_for, marketer, vip):
    html = client_for(in_english(marketer)).get(reverse("journeys:list")).content.decode()
    assert '<option value="date">has a yearly date, such as a birthday</option>' in html
    assert '<option value="schedule">is in a tag at a scheduled time</option>' in html
    assert 'name="once_at"' in html and 'name="weekday"' in html and 'name="date_attribute"' in html


def test_someone_without_a_team_may_not_create(client_for, make_user, vip):
    loner = make_user("loner", team="")
    loner.team = None
    loner.save(update_fields=["team"])
    response = client_for(loner).post(
        reverse("journeys:create"), {"name": "X", "trigger_kind": "tag_entered", "tag": "vip"}
    )
    assert response.status_code == 403 and not Journey.objects.exists()


# --- the builder ---------------------------------------------------------------------------------------


def test_the_builder_page_shows_step_counts_and_the_definition(client_for, marketer, manager, vip):
    journey = f.journey(marketer, tag=vip, steps=[{"exit": True}], activate_as=manager)
    f.enter(vip, f.customers(2))
    f.admit()
    engine.run_due()
    response = client_for(marketer).get(reverse("journeys:detail", args=[journey.pk]))
    assert response.status_code == 200
    assert response.context["step_stats"]["0"]["passed"] == 2
    assert '<dd class="fs-5 mb-0" id="stat-entered">2</dd>' in response.content.decode()


def test_another_team_gets_a_404(client_for, marketer, other_requester, vip):
    journey = _draft(marketer, vip)
    for name in ("detail", "stats", "enrolments"):
        assert (
            client_for(other_requester).get(reverse(f"journeys:{name}", args=[journey.pk])).status_code == 404
        )
    response = client_for(other_requester).post(
        reverse("journeys:save", args=[journey.pk]), {"definition": _definition(vip, [])}
    )
    assert response.status_code == 404 and journey.versions.count() == 1


def test_saving_writes_a_new_version(client_for, marketer, vip):
    journey = _draft(marketer, vip)
    steps = [{"wait": {"days": 2}}, {"action": "tag_add", "tag": "vip"}]
    response = client_for(marketer).post(
        reverse("journeys:save", args=[journey.pk]), {"definition": _definition(vip, steps)}
    )
    assert response.status_code == 302
    assert journey.versions.order_by("-number").first().steps == steps


def test_a_bad_step_comes_back_with_its_path_and_nothing_is_saved(client_for, marketer, vip):
    journey = _draft(marketer, vip)
    steps = [
        {"wait": {"days": 1}},
        {"branch": {"if": {"all": []}, "then": [{"action": "email"}], "else": []}},
    ]
    response = client_for(marketer).post(
        reverse("journeys:save", args=[journey.pk]), {"definition": _definition(vip, steps)}
    )
    assert response.status_code == 422
    paths = [e["path"] for e in response.context["errors"]]
    assert "steps[1].branch.then[0].template" in paths
    assert journey.versions.count() == 1


def test_an_unreadable_definition_is_a_422(client_for, marketer, vip):
    journey = _draft(marketer, vip)
    response = client_for(marketer).post(reverse("journeys:save", args=[journey.pk]), {"definition": "{oops"})
    assert response.status_code == 422 and journey.versions.count() == 1


# --- activate and pause --------------------------------------------------------------------------------


def test_the_team_activates_up_to_10_percent(client_for, marketer, vip):
    journey = _draft(marketer, vip)
    response = client_for(marketer).post(reverse("journeys:activate", args=[journey.pk]), {"percent": 10})
    journey.refresh_from_db()
    assert response.status_code == 302 and (journey.status, journey.percent) == ("active", 10)


def test_above_10_percent_a_non_manager_is_refused_with_the_message(client_for, marketer, vip):
    journey = _draft(marketer, vip)
    response = client_for(in_english(marketer)).post(
        reverse("journeys:activate", args=[journey.pk]), {"percent": 50}
    )
    journey.refresh_from_db()
    assert response.status_code == 403
    assert (
        "Only a manager may activate a journey for more than 10 % of its customers."
        in response.content.decode()
    )
    assert journey.status == "draft"


def test_a_manager_raises_the_share_to_100(client_for, marketer, manager, vip):
    journey = f.journey(marketer, tag=vip, activate_as=marketer, percent=10)
    response = client_for(manager).post(reverse("journeys:activate", args=[journey.pk]), {"percent": 100})
    journey.refresh_from_db()
    assert response.status_code == 302 and journey.percent == 100 and journey.approved_by == manager


def test_pause_stops_an_active_journey_and_refuses_a_draft(client_for, marketer, vip):
    journey = f.journey(marketer, tag=vip, percent=10)
    assert client_for(marketer).post(reverse("journeys:pause", args=[journey.pk])).status_code == 302
    journey.refresh_from_db()
    assert journey.status == "paused"
    assert client_for(marketer).post(reverse("journeys:pause", args=[journey.pk])).status_code == 409


def test_another_team_may_not_activate_or_pause(client_for, marketer, other_requester, vip):
    journey = _draft(marketer, vip)
    client = client_for(other_requester)
    assert client.post(reverse("journeys:activate", args=[journey.pk]), {"percent": 5}).status_code == 404
    assert client.post(reverse("journeys:pause", args=[journey.pk])).status_code == 404
    journey.refresh_from_db()
    assert journey.status == "draft"


# --- the enrolment inspector and personal data ---------------------------------------------------------


def test_the_inspector_shows_one_customers_steps(client_for, marketer, manager, vip):
    journey = f.journey(
        marketer, tag=vip, steps=[{"action": "tag_add", "tag": "vip"}, {"exit": True}], activate_as=manager
    )
    person = f.customer(external_id="VIP-7")
    f.enter(vip, [person, f.customer()])
    f.admit()
    engine.run_due()
    response = client_for(in_english(marketer)).get(
        reverse("journeys:enrolments", args=[journey.pk]), {"customer": "VIP-7"}
    )
    assert response.status_code == 200
    assert [e.customer.external_id for e in response.context["enrolments"]] == ["VIP-7"]
    body = response.content.decode()
    assert 'data-step="0"' in body and 'data-step="1"' in body
    assert "Add to a tag" in body and "Left because: an exit step" in body


def test_no_page_shows_a_planted_email_or_phone_to_a_viewer_without_view_pii(
    client_for, make_user, marketer, manager, vip
):
    writer = make_user("piiwriter", team="E-commerce ops", pii=True)
    rule = {
        "any": [
            {"attr": "email", "op": "=", "value": PLANTED_EMAIL},
            {"attr": "phone", "op": "=", "value": PLANTED_PHONE},
        ]
    }
    journey = f.journey(
        writer, tag=vip, steps=[{"branch": {"if": rule, "then": [], "else": []}}], activate_as=manager
    )
    person = f.customer(external_id="P-1", email=PLANTED_EMAIL, phone=PLANTED_PHONE)
    f.enter(vip, [person])
    f.admit()
    engine.run_due()
    client = client_for(marketer)
    pages = [
        client.get(reverse("journeys:list")),
        client.get(reverse("journeys:detail", args=[journey.pk])),
        client.get(reverse("journeys:stats", args=[journey.pk])),
        client.get(reverse("journeys:enrolments", args=[journey.pk]), {"customer": "P-1"}),
        client.post(
            reverse("journeys:save", args=[journey.pk]),
            {
                "definition": json.dumps(
                    {
                        "trigger": {"kind": "tag_entered", "tag": "vip"},
                        "steps": [{"branch": {"if": rule, "then": [], "else": []}}],
                    }
                )
            },
        ),
    ]
    assert [p.status_code for p in pages] == [200, 200, 200, 200, 403]
    for page in pages:
        body = page.content.decode()
        assert PLANTED_EMAIL not in body and PLANTED_PHONE not in body
    # the writer, who may see personal data, sees the literal in the builder
    shown = client_for(writer).get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    assert PLANTED_EMAIL in shown
