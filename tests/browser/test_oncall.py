"""On call in Chromium (issue 21): an Alertmanager alert at 02:00 on a Saturday opens an incident that lands
on the agent on call, whose ticket page shows the 30-minute first-response clock.

The clock is injected as the SLA tests do it (`django.utils.timezone.now` patched; the live server runs in
this process), from the alert's arrival to the ticket page, so "now" is 02:00 on that Saturday."""

import datetime as dt
import zoneinfo
from unittest import mock

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login, in_english
from tests.tickets.test_alert_intake import _alert, _payload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
SATURDAY_2AM = dt.datetime(2026, 12, 5, 2, 0, tzinfo=SHANGHAI)
TOKEN = "browser-alert-token"


def test_a_saturday_night_alert_lands_on_the_agent_on_call(page, make_user, support_team, settings):
    from tickets import services
    from tickets.models import Ticket
    from tickets.oncall.services import rota_save

    settings.ALERT_INTAKE_TOKEN = TOKEN
    settings.ALERT_INTAKE_TEAM = support_team.name
    services.sla_defaults_ensure()
    day = in_english(make_user("dora", role="agent", team=support_team.name))
    night = in_english(make_user("nick", role="agent", team=support_team.name))
    night.display_name = "Nick Night"
    night.save(update_fields=["display_name"])
    manager = make_user("mona", role="manager", team=support_team.name)
    # Nick has the week from Monday 2026-11-30 10:00; Dora the week after
    rota_save(
        team=support_team,
        by=manager,
        members=[night, day],
        starts_on=dt.date(2026, 11, 30),
        handover_weekday=0,
        handover_time=dt.time(10),
    )
    browser_login(page, "nick", "pw-nick-123")

    with mock.patch("django.utils.timezone.now", return_value=SATURDAY_2AM.astimezone(dt.UTC)):
        # Alertmanager posts its v4 webhook with the bearer token
        response = page.request.post(
            "/api/v1/intake/alerts/",
            data=_payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status == 202, response.text()
        [opened] = response.json()["tickets"]
        assert opened["action"] == "opened"

        # the on-call agent opens the incident: it is theirs, with 30 minutes on the clock
        page.goto(f"/requests/{opened['key']}/")
        expect(page.locator("#ticket-assignee")).to_have_text("Nick Night")
        expect(page.locator("#ticket-sla")).to_contain_text("30 min left")
        expect(page.locator("#ticket-header")).to_contain_text("First response due 2026-12-05 02:30")

        # the team's on-call page says the same
        page.goto(f"/requests/oncall/teams/{support_team.pk}/")
        expect(page.locator("#oncall-now [data-user]")).to_have_text("Nick Night")
        expect(page.locator("#oncall-next [data-user]")).to_have_text(str(day))

    ticket = Ticket.objects.get(key=opened["key"])
    assert ticket.type == "incident" and ticket.assignee == night
    assert ticket.first_response_due == SATURDAY_2AM + dt.timedelta(minutes=30)
