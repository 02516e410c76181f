"""SLA calendars in Chromium: a manager loads a year of China's statutory holidays and make-up days on the
calendar page, edits one, and the deadline of the next request follows."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login, in_english

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_loads_statutory_holidays_and_edits_them(page, make_user, support_team):
    from tickets import services
    from tickets.models import BusinessCalendar, Holiday, WorkingDay

    services.sla_defaults_ensure()
    office = BusinessCalendar.objects.get(name=services.OFFICE_CALENDAR)
    in_english(make_user("mona", role="manager", team=support_team.name))
    browser_login(page, "mona", "pw-mona-123")

    # the manager opens the office calendar and loads 2025
    page.goto("/requests/sla/")
    page.click(f"#calendar-tabs a[data-calendar='{office.pk}']")
    expect(page.locator("#calendar-name")).to_have_text(services.OFFICE_CALENDAR)
    page.fill("#statutory-form input[name=year]", "2025")
    page.click("#statutory-load")
    expect(page.locator(".alert-success")).to_contain_text("make-up working days of 2025")

    # the loaded days are in the calendar's form, ready to edit
    working = page.locator("#calendar-form textarea[name=working_days]")
    expect(working).to_contain_text("2025-09-28 09:00-18:00")
    expect(page.locator("#calendar-form textarea[name=holidays]")).to_contain_text("2025-10-01")
    assert WorkingDay.objects.filter(calendar=office, date__year=2025).count() == 5

    # an overlapping period is refused with a message under the field, and nothing is saved
    page.fill("#calendar-form input[name=day_0]", "09:00-12:00, 11:00-14:00")
    page.click("#calendar-form button[type=submit]")
    expect(page.locator("#calendar-form")).to_contain_text("overlap")
    assert office.hours.filter(weekday=0).count() == 1

    # the manager turns the make-up Sunday into a half day and saves
    page.fill("#calendar-form input[name=day_0]", "09:00-18:00")
    text = working.input_value().replace("2025-09-28 09:00-18:00", "2025-09-28 09:00-12:00")
    working.fill(text)
    page.click("#calendar-form button[type=submit]")
    expect(page.locator(".alert-success")).to_be_visible()
    assert WorkingDay.objects.get(calendar=office, date=dt.date(2025, 9, 28)).periods == [["09:00", "12:00"]]
    assert Holiday.objects.filter(calendar=office, date=dt.date(2025, 10, 1)).exists()
