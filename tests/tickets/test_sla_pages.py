"""SLA calendars through the services, pages, command and API (issue 17): make-up days, statutory
holidays, overlaps, per-urgency and per-type calendars, far targets, first response at resolution."""

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from accounts.models import AuditEntry
from tests.tickets.factories import force_status, make_ticket
from tickets import services, sla
from tickets.models import BusinessCalendar, Holiday, SlaPolicy, Ticket, WorkingDay

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
S = Ticket.Status


@pytest.fixture
def office(db) -> BusinessCalendar:
    services.sla_defaults_ensure()
    return BusinessCalendar.objects.get(name=services.OFFICE_CALENDAR)


def calendar_post(calendar: BusinessCalendar, **fields: str) -> dict:
    data = {
        "calendar": calendar.pk,
        "timezone": calendar.timezone,
        "holidays": "",
        "working_days": "",
        "version": calendar.lock_version,
        **{f"day_{d}": "09:00-18:00" for d in range(5)},
    }
    data.update(fields)
    return data


def load_url(calendar: BusinessCalendar) -> str:
    return reverse("tickets:sla_calendar_load", args=[calendar.pk])


# --- make-up working days, end to end ------------------------------------------------------------------


def test_make_up_day_entered_on_the_page_moves_a_routine_deadline(client_for, manager, requester, office):
    # given a manager enters the 2025 National Day holidays and the make-up Sunday on the calendar page
    holidays = "\n".join(f"2025-10-0{d} National Day" for d in range(1, 9))
    response = client_for(manager).post(
        reverse("tickets:sla"),
        calendar_post(office, holidays=holidays, working_days="2025-09-28 09:00-18:00 National Day make-up"),
    )
    assert response.status_code == 302
    assert list(WorkingDay.objects.filter(calendar=office).values_list("date", "periods")) == [
        (dt.date(2025, 9, 28), [["09:00", "18:00"]])
    ]
    # when a routine request (first response 4 working hours) is filed on Friday 26 September 17:00
    ticket = make_ticket(requester, now=dt.datetime(2025, 9, 26, 17, tzinfo=SH))
    # then its first response is due on the make-up Sunday at 12:00
    assert ticket.first_response_due == dt.datetime(2025, 9, 28, 12, tzinfo=SH)


def test_half_day_with_two_periods_is_shown_again_for_editing(client_for, manager, office):
    client_for(manager).post(
        reverse("tickets:sla"),
        calendar_post(office, working_days="2026-02-16 09:00-12:00 Spring Festival Eve"),
    )
    html = client_for(manager).get(reverse("tickets:sla") + f"?calendar={office.pk}").content.decode()
    assert "2026-02-16 09:00-12:00 Spring Festival Eve" in html


# --- overlaps and other bad input: a form error naming the field, nothing saved -------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"day_0": "09:00-12:00, 11:00-14:00"}, "day_0"),
        ({"working_days": "2025-09-28 09:00-12:00, 11:00-14:00"}, "working_days"),
        ({"holidays": "2025-09-28", "working_days": "2025-09-28 09:00-18:00"}, "working_days"),
        ({"working_days": "2025-09-31 09:00-18:00"}, "working_days"),
        ({"working_days": "2025-09-28 lunch"}, "working_days"),
        ({"holidays": "20250928"}, "holidays"),
        ({"day_1": "18:00-09:00"}, "day_1"),
        ({"day_2": "25:00-26:00"}, "day_2"),
    ],
)
def test_bad_calendar_input_is_a_form_error_naming_the_field(client_for, manager, office, fields, named):
    before = office.lock_version
    response = client_for(manager).post(reverse("tickets:sla"), calendar_post(office, **fields))
    assert response.status_code == 400
    assert named in response.context["calendar_form"].errors
    office.refresh_from_db()
    assert office.lock_version == before
    assert not WorkingDay.objects.filter(calendar=office).exists()


def test_the_service_refuses_overlapping_periods_too(manager, office):
    with pytest.raises(ValidationError) as refused:
        services.calendar_update(
            calendar=office,
            by=manager,
            timezone_name="Asia/Shanghai",
            hours=[(0, dt.time(9), dt.time(12)), (0, dt.time(11), dt.time(14))],
            holidays=[],
        )
    assert list(refused.value.message_dict) == ["day_0"]


def test_hours_that_leave_a_policy_without_a_deadline_are_refused(manager, office):
    # given the routine policy runs on the office calendar: hours on one dated day only would strand it
    with pytest.raises(ValidationError):
        services.calendar_update(
            calendar=office,
            by=manager,
            timezone_name="Asia/Shanghai",
            hours=[],
            holidays=[],
            working_days=[(dt.date(2027, 1, 4), "", [(dt.time(9), dt.time(10))])],
        )
    assert office.hours.count() == 5


def test_24_00_is_accepted_as_the_end_of_the_day(client_for, manager, office):
    response = client_for(manager).post(reverse("tickets:sla"), calendar_post(office, day_5="18:00-24:00"))
    assert response.status_code == 302
    assert office.hours.filter(weekday=5, start=dt.time(18), end=dt.time(0)).exists()


# --- statutory holidays: the page, the command ---------------------------------------------------------


def test_manager_loads_2025_statutory_days_and_the_reproduction_holds(client_for, manager, requester, office):
    # when a manager loads 2025 on the office calendar
    response = client_for(manager).post(load_url(office), {"year": "2025", "version": office.lock_version})
    # then the holidays and make-up days are there, audited, and the calendar has a new version
    assert response.status_code == 302
    assert Holiday.objects.filter(calendar=office, date=dt.date(2025, 10, 1)).exists()
    assert WorkingDay.objects.get(calendar=office, date=dt.date(2025, 9, 28)).periods == [["09:00", "18:00"]]
    assert WorkingDay.objects.filter(calendar=office, date__year=2025).count() == 5
    entry = AuditEntry.objects.get(action="sla.calendar_load_statutory")
    assert entry.changes["year"] == 2025 and entry.actor_id == manager.pk
    assert BusinessCalendar.objects.get(pk=office.pk).lock_version == office.lock_version + 1
    ticket = make_ticket(requester, now=dt.datetime(2025, 9, 26, 17, tzinfo=SH))
    assert ticket.first_response_due == dt.datetime(2025, 9, 28, 12, tzinfo=SH)


def test_loaded_days_stay_editable(client_for, manager, office):
    services.calendar_load_statutory(calendar=office, by=manager, year=2026)
    office.refresh_from_db()
    page = client_for(manager).get(reverse("tickets:sla") + f"?calendar={office.pk}")
    form = page.context["calendar_form"]
    # the manager drops one make-up day and saves the rest as shown
    lines = [line for line in form.initial["working_days"].splitlines() if not line.startswith("2026-01-04")]
    data = calendar_post(office, holidays=form.initial["holidays"], working_days="\n".join(lines))
    assert client_for(manager).post(reverse("tickets:sla"), data).status_code == 302
    assert not WorkingDay.objects.filter(calendar=office, date=dt.date(2026, 1, 4)).exists()
    assert WorkingDay.objects.filter(calendar=office, date__year=2026).count() == 5


@pytest.mark.parametrize("who", ["agent", "requester"])
def test_loading_holidays_is_denied_to_everyone_but_managers(client_for, request, office, who):
    user = request.getfixturevalue(who)
    response = client_for(user).post(load_url(office), {"year": "2025", "version": office.lock_version})
    assert response.status_code == 403
    assert not Holiday.objects.filter(calendar=office).exists()


@pytest.mark.parametrize("year", ["2031", "20x5", "1999", ""])
def test_a_year_without_a_schedule_or_not_a_year_is_a_form_error(client_for, manager, office, year):
    response = client_for(manager).post(load_url(office), {"year": year, "version": office.lock_version})
    assert response.status_code == 400
    assert list(response.context["load_form"].errors) == ["year"]
    assert not Holiday.objects.filter(calendar=office).exists()


def test_loading_from_a_stale_page_is_409(client_for, manager, office):
    stale = office.lock_version
    client_for(manager).post(reverse("tickets:sla"), calendar_post(office, day_0="08:00-17:00"))
    response = client_for(manager).post(load_url(office), {"year": "2025", "version": stale})
    assert response.status_code == 409
    assert not Holiday.objects.filter(calendar=office).exists()


def test_command_loads_a_year_into_office_calendars_only(office):
    out = io.StringIO()
    call_command("load_cn_holidays", "2026", stdout=out)
    assert "Shanghai office: 33 holidays, 6 make-up working days" in out.getvalue()
    always = BusinessCalendar.objects.get(name=services.ROUND_THE_CLOCK_CALENDAR)
    assert not always.holidays.exists()


# --- calendars: create, read, per-urgency and per-type ---------------------------------------------------


def test_manager_adds_a_calendar_and_others_may_not(client_for, manager, agent, office):
    url = reverse("tickets:sla_calendar_create")
    data = {"name": "Berlin office", "timezone": "Europe/Berlin"}
    assert client_for(agent).post(url, data).status_code == 403
    assert client_for(manager).post(url, data).status_code == 302
    berlin = BusinessCalendar.objects.get(name="Berlin office")
    assert berlin.hours.count() == 5
    assert AuditEntry.objects.filter(action="sla.calendar_create").exists()
    assert client_for(manager).post(url, data).status_code == 400  # the name is taken


def test_sla_page_lets_agents_read_the_calendars(client_for, agent, office):
    services.calendar_load_statutory(calendar=office, by=None, year=2025)
    html = client_for(agent).get(reverse("tickets:sla") + f"?calendar={office.pk}").content.decode()
    assert "2025-09-28" in html and "09:00-18:00" in html
    assert 'id="statutory-form"' not in html and 'id="calendar-form"' not in html


@pytest.mark.parametrize("chosen", ["²", "-1", "9" * 30, "abc", "999999"])
def test_a_bad_calendar_choice_shows_the_first_calendar(client_for, agent, office, chosen):
    response = client_for(agent).get(reverse("tickets:sla"), {"calendar": chosen})
    assert response.status_code == 200
    assert response.context["calendar"] == office


def test_sla_page_query_count(client_for, manager, office, django_assert_max_num_queries):
    services.calendar_load_statutory(calendar=office, by=None, year=2026)
    client = client_for(manager)
    # session, user, groups and permissions (2), policies, their per-type calendars, the chosen calendar,
    # its hours, holidays and dated hours, calendar options once per policy form (3), the calendar tabs,
    # and the base layout's own (unread count, team, ...)
    with django_assert_max_num_queries(24):
        response = client.get(reverse("tickets:sla"))
    assert response.status_code == 200
    assert response.content.decode().count("data-calendar=") == 2


def test_urgent_work_runs_round_the_clock_by_default(requester, office):
    # given a 618 outage filed on a Saturday night
    saturday = dt.datetime(2026, 6, 20, 23, 10, tzinfo=SH)
    ticket = make_ticket(requester, urgency=Ticket.Urgency.URGENT, now=saturday)
    # then its clock runs at once: first response 30 minutes later, resolution 2 hours later
    assert ticket.first_response_due == saturday + dt.timedelta(minutes=30)
    assert ticket.resolution_due == saturday + dt.timedelta(hours=2)
    assert SlaPolicy.objects.get(urgency="urgent").calendar.name == services.ROUND_THE_CLOCK_CALENDAR


def test_per_type_calendar_on_a_policy(client_for, manager, requester, office):
    # given the routine policy runs incidents round the clock (and other types on office hours)
    policy = SlaPolicy.objects.get(urgency="routine")
    always = BusinessCalendar.objects.get(name=services.ROUND_THE_CLOCK_CALENDAR)
    prefix = f"p{policy.pk}"
    response = client_for(manager).post(
        reverse("tickets:sla"),
        {
            "policy": policy.pk,
            f"{prefix}-first_response_minutes": 240,
            f"{prefix}-resolution_minutes": policy.resolution_minutes,
            f"{prefix}-calendar": office.pk,
            f"{prefix}-type_incident": always.pk,
            f"{prefix}-version": policy.lock_version,
        },
    )
    assert response.status_code == 302
    saturday = dt.datetime(2026, 6, 20, 10, tzinfo=SH)
    incident = make_ticket(requester, type=Ticket.Type.INCIDENT, now=saturday)
    report = make_ticket(requester, type=Ticket.Type.DATA_SUPPORT, now=saturday)
    # then the incident's first response is due 4 hours later, the report's on Monday 13:00
    assert incident.first_response_due == saturday + dt.timedelta(hours=4)
    assert report.first_response_due == dt.datetime(2026, 6, 22, 13, tzinfo=SH)
    entry = AuditEntry.objects.filter(action="sla.policy_update").latest("pk")
    assert entry.changes["new"]["type_calendars"] == {"incident": always.pk}


def test_changing_the_type_moves_the_deadline_to_the_types_calendar(requester, agent, manager, office):
    policy = SlaPolicy.objects.get(urgency="routine")
    always = BusinessCalendar.objects.get(name=services.ROUND_THE_CLOCK_CALENDAR)
    services.sla_policy_update(
        policy=policy,
        by=manager,
        first_response_minutes=240,
        resolution_minutes=policy.resolution_minutes,
        calendar=office,
        type_calendars={"incident": always},
    )
    saturday = dt.datetime(2026, 6, 20, 10, tzinfo=SH)
    ticket = make_ticket(requester, type=Ticket.Type.FEATURE, now=saturday)
    services.ticket_update_triage(ticket=ticket, by=agent, type=Ticket.Type.INCIDENT)
    ticket.refresh_from_db()
    assert ticket.first_response_due == saturday + dt.timedelta(hours=4)


def test_per_type_calendar_is_denied_to_agents(client_for, agent, office):
    policy = SlaPolicy.objects.get(urgency="routine")
    response = client_for(agent).post(reverse("tickets:sla"), {"policy": policy.pk})
    assert response.status_code == 403


# --- far targets --------------------------------------------------------------------------------------


def test_a_target_four_years_ahead_is_accepted_and_filed(manager, requester, office):
    # given a planned resolution target of 4 years of office days (4 * 52 weeks * 45 h)
    policy = SlaPolicy.objects.get(urgency="planned")
    services.sla_policy_update(
        policy=policy,
        by=manager,
        first_response_minutes=policy.first_response_minutes,
        resolution_minutes=4 * 52 * 45 * 60,
        calendar=office,
    )
    # when a planned request is filed, then its resolution is due about four years on (not a 500)
    ticket = make_ticket(
        requester, urgency=Ticket.Urgency.PLANNED, now=dt.datetime(2026, 11, 16, 9, tzinfo=SH)
    )
    assert ticket.resolution_due.astimezone(SH).year == 2030
    plain = sla.calendar_from_model(office)
    assert sla.business_time_between(plain, ticket.created_at, ticket.resolution_due) == dt.timedelta(
        minutes=4 * 52 * 45 * 60
    )


def test_a_target_above_the_limit_is_a_form_error_naming_it(office):
    from tickets.forms import SlaPolicyForm

    policy = SlaPolicy.objects.get(urgency="planned")
    form = SlaPolicyForm(
        {
            "first_response_minutes": 60,
            "resolution_minutes": sla.MAX_TARGET_MINUTES + 1,
            "calendar": office.pk,
        },
        instance=policy,
    )
    assert not form.is_valid()
    assert list(form.errors) == ["resolution_minutes"]


# --- first response at resolution: the chip, the dashboard and the API agree -----------------------------


def _resolved_without_reply(requester, agent, *, created: dt.datetime, resolved: dt.datetime) -> Ticket:
    ticket = make_ticket(requester, urgency=Ticket.Urgency.URGENT, now=created)
    force_status(ticket, S.AWAITING_ACCEPTANCE)
    from unittest import mock

    with mock.patch("django.utils.timezone.now", return_value=resolved):
        services.ticket_accept(ticket=ticket, by=requester)
    ticket.refresh_from_db()
    return ticket


def test_resolution_without_reply_counts_as_the_first_response(api_for, requester, agent, office):
    created = dt.datetime(2026, 11, 16, 10, tzinfo=SH)  # urgent: first response due 10:30, resolution 12:00
    on_time = _resolved_without_reply(
        requester, agent, created=created, resolved=created + dt.timedelta(minutes=20)
    )
    late = _resolved_without_reply(
        requester, agent, created=created, resolved=created + dt.timedelta(minutes=50)
    )
    # the first response is the resolution, in the stored row and so in the API
    assert on_time.first_response_at == on_time.resolved_at
    body = api_for(agent).get(f"/api/v1/tickets/{late.key}/").json()
    assert body["first_response_at"] is not None and body["sla"]["state"] == "breached"
    # the chip: met when resolved before the first-response due, breached after it
    assert (on_time.sla_state, late.sla_state) == ("met", "breached")
    # the dashboard: one first response met, one missed (never neither)
    from analytics import support_figures
    from analytics.filters import DashboardFilters

    filters = DashboardFilters(date_from=dt.date(2026, 11, 16), date_to=dt.date(2026, 11, 16))
    counts = support_figures.sla_attainment(filters, staff=True, now=created + dt.timedelta(days=7))["counts"]
    assert (counts["urgent"]["fr_met"], counts["urgent"]["fr_missed"]) == (1, 1)
