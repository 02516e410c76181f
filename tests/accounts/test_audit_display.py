"""The audit humaniser (issue 18, item 9): field and choice labels in the viewer's language, times in the
viewer's zone without microseconds, personal values masked for viewers without view_pii."""

import re

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from accounts.audit_display import change_rows
from crm_tags.models import Customer
from tests.conftest import in_english
from tests.tickets.factories import make_ticket
from tickets import services
from tickets.models import Ticket, TicketEvent

STAMP = "2026-12-06T21:28:42.581835+00:00"
EMAIL, PHONE = "zhang.wei@example.com", "13812345678"


def test_a_status_change_reads_with_labels_in_chinese():
    # given a recorded status change, read in Chinese
    with translation.override("zh-hans"):
        rows = change_rows(Ticket, {"status": ["new", "triaged"]}, viewer=None)
    # then the field and both values have their Chinese labels
    assert [(r.label, r.old, r.new) for r in rows] == [("状态", "新建", "已分诊")]


def test_a_choice_without_the_model_field_uses_the_extra_field_given():
    from tickets.history import EXTRA_FIELDS

    with translation.override("en"):
        rows = change_rows(Ticket, {"plan": ["submitted", "approved"]}, viewer=None, fields=EXTRA_FIELDS)
    assert [(r.label, r.old, r.new) for r in rows] == [
        ("Solution plan", "Submitted for approval", "Approved")
    ]


def test_a_utc_time_reads_in_the_viewers_zone_and_locale_without_microseconds():
    # given a first response recorded in UTC with microseconds
    changes = {"first_response_at": ["", STAMP]}
    # when a person in Shanghai reads it in Chinese
    with translation.override("zh-hans"), timezone.override("Asia/Shanghai"):
        [row] = change_rows(Ticket, changes, viewer=None)
    # then it is their local time, in the Chinese format, to the minute
    assert (row.label, row.old, row.new) == ("首次响应", "—", "2026年12月7日 05:28")


def test_the_same_time_reads_in_another_zone_and_language():
    with translation.override("en"), timezone.override("Europe/London"):
        [row] = change_rows(Ticket, {"first_response_at": STAMP}, viewer=None)
    assert row.new == "Dec. 6, 2026, 9:28 p.m."


def test_booleans_read_as_yes_or_no():
    with translation.override("en"):
        [row] = change_rows(Ticket, {"is_complex": ["False", "True"]}, viewer=None)
    assert (row.old, row.new) == ("No", "Yes")


def test_an_unknown_field_and_value_show_as_recorded():
    [row] = change_rows(Ticket, {"legacy_flag": ["a", "b"]}, viewer=None)
    assert (row.label, row.old, row.new) == ("legacy_flag", "a", "b")


@pytest.mark.django_db
def test_personal_values_are_masked_for_a_viewer_without_view_pii(make_user):
    # given a customer's e-mail change and a free-text value quoting a phone number
    agent = make_user("vera", role="agent", team="MarTech support")
    changes = {"email": ["", EMAIL], "city": ["", f"call {PHONE}"]}
    # when an agent without view_pii reads it
    rows = change_rows(Customer, changes, viewer=agent)
    # then neither value is shown as it is
    shown = " ".join(f"{r.old} {r.new}" for r in rows)
    assert EMAIL not in shown and PHONE not in shown
    assert "z***@example.com" in shown


@pytest.mark.django_db
def test_personal_values_are_shown_to_a_viewer_with_view_pii(make_user):
    analyst = make_user("dora", role="agent", team="MarTech support", pii=True)
    [row] = change_rows(Customer, {"email": ["", EMAIL]}, viewer=analyst)
    assert row.new == EMAIL


# --- the ticket's history tab ------------------------------------------------------------------------


def _history_html(ticket: Ticket, viewer) -> str:
    request = RequestFactory().get("/")
    request.user = viewer
    events = TicketEvent.objects.filter(ticket=ticket).select_related("actor").order_by("created_at", "id")
    return render_to_string("tickets/partials/history.html", {"events": events}, request=request)


@pytest.mark.django_db
def test_the_history_tab_shows_labels_and_local_times(make_user, agent, requester):
    # given a ticket triaged as needing external help, and a first response recorded by the system
    ticket = make_ticket(requester)
    services.ticket_transition(
        ticket=ticket, to=Ticket.Status.TRIAGED, by=agent, feasibility="needs_external", assignee=agent
    )
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEvent.Kind.SLA,
        field="first_response_at",
        new=STAMP,
        note="resolved without a reply",
    )
    # when the agent reads the history in English
    in_english(agent)
    with translation.override("en"), timezone.override("Asia/Shanghai"):
        html = _history_html(ticket, agent)
    # then no code, UTC offset or microsecond is left
    assert "Status</span>: New → Triaged" in html
    assert "Feasibility</span>: — → Needs external help" in html
    assert "First response</span>: — → Dec. 7, 2026, 5:28 a.m." in html
    assert "Resolved without a reply" in html
    text = re.sub(r"<([a-z]+)[^>]*>", r"<\1>", html)  # what a person reads, not the attributes
    for code in ("new →", "needs_external", "+00:00", ".581835", "first_response_at"):
        assert code not in text


@pytest.mark.django_db
def test_the_history_tab_never_shows_a_customer_contact_to_a_viewer_without_view_pii(make_user, requester):
    # given a ticket whose history quotes a customer's e-mail and phone in a change and a note
    agent = make_user("vera", role="agent", team="MarTech support")
    ticket = make_ticket(requester)
    TicketEvent.objects.create(
        ticket=ticket,
        actor=agent,
        kind=TicketEvent.Kind.FIELD,
        field="feasibility_note",
        old="",
        new=f"Customer {EMAIL} asked",
        note=f"Call back on {PHONE}",
    )
    # when an agent without view_pii reads the history
    html = _history_html(ticket, agent)
    # then neither value is anywhere in it
    assert EMAIL not in html and PHONE not in html
    assert "Feasibility note" in html or "可行性说明" in html


@pytest.mark.django_db
def test_the_history_tab_costs_no_query_per_entry(
    client_for, agent, requester, django_assert_max_num_queries
):
    # given a ticket with two history entries, and the queries its page takes
    ticket = make_ticket(requester)
    client = client_for(agent)
    url = reverse("tickets:detail", args=[ticket.key])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    # when forty more entries are recorded (status, field and time changes)
    for n in range(20):
        TicketEvent.objects.create(
            ticket=ticket, actor=agent, kind="status", field="status", old="new", new="triaged"
        )
        TicketEvent.objects.create(
            ticket=ticket, kind="sla", field="first_response_at", new=STAMP, note=str(n)
        )
    # then the page takes no more queries than before
    with django_assert_max_num_queries(len(few)):
        response = client.get(url)
    assert response.content.decode().count('data-field="first_response_at"') == 20
