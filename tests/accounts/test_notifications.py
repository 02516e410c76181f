"""Notifications are stored as a kind with parameters and read in the reader's language (issue 18, item 11)."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import Notification
from accounts.notification_kinds import NotificationParamsInvalid, UnknownNotificationKind
from accounts.services import notify
from tests.conftest import in_english
from tests.tickets.factories import force_status, make_ticket
from tickets import services as ticket_services
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

PLANTED_EMAIL = "lin.planted@customer-mail.example"
PLANTED_PHONE = "13987654321"
API = "/api/v1/notifications/"


def page_of(client_for, user) -> str:
    return client_for(user).get(reverse("accounts:notifications")).content.decode()


def api_titles(api_for, user) -> list[str]:
    return [item["title"] for item in api_for(user).get(API).json()["results"]]


def mail_to(mailoutbox, user):
    return next(m for m in mailoutbox if user.email in m.to)


# --- each reader's language ---------------------------------------------------------------------------


def test_a_chinese_speaking_agents_reply_reads_in_english_for_an_english_requester(
    make_user, agent, client_for, api_for, mailoutbox, django_capture_on_commit_callbacks
):
    # given an English-speaking requester and an agent whose pages are in Chinese
    requester = in_english(make_user("ella", role="requester"))
    ticket = make_ticket(requester)
    # when the agent replies from a Chinese page
    with translation.override(agent.language), django_capture_on_commit_callbacks(execute=True):
        ticket_services.comment_add(ticket=ticket, by=agent, body="Fixed, please check.")
    # then the requester reads the notification in English on the page, in the API and in the e-mail
    title = f"New reply on {ticket.key}"
    page = page_of(client_for, requester)
    assert title in page and "有新回复" not in page
    assert api_titles(api_for, requester) == [title]
    assert mail_to(mailoutbox, requester).subject == f"[MarTech Hub] {title}"


def test_an_english_speaking_requesters_reply_reads_in_chinese_for_a_chinese_manager(
    requester, manager, client_for, api_for, mailoutbox, django_capture_on_commit_callbacks
):
    # given a requester who writes from English pages, and a manager (no assignee yet) who reads Chinese
    in_english(requester)
    ticket = make_ticket(requester)
    Notification.objects.all().delete()
    mailoutbox.clear()
    # when the requester replies
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        ticket_services.comment_add(ticket=ticket, by=requester, body="Any news?")
    # then the manager reads it in Chinese everywhere
    title = f"{ticket.key} 有新回复"
    page = page_of(client_for, manager)
    assert title in page and "New reply on" not in page
    assert api_titles(api_for, manager) == [title]
    assert mail_to(mailoutbox, manager).subject == f"[MarTech Hub] {title}"


def test_a_status_is_named_in_the_readers_language(
    make_user, agent, api_for, django_capture_on_commit_callbacks
):
    requester = in_english(make_user("ella", role="requester"))
    ticket = force_status(make_ticket(requester), Ticket.Status.IN_PROGRESS)
    with translation.override("zh-hans"), django_capture_on_commit_callbacks(execute=True):
        ticket_services.ticket_transition(
            ticket=ticket, to=Ticket.Status.WAITING_ON_REQUESTER, by=agent, note="Which coupon?"
        )
    with translation.override("en"):
        status = str(Ticket.Status.WAITING_ON_REQUESTER.label)
    item = api_for(requester).get(API).json()["results"][0]
    assert (item["kind"], item["verb"]) == ("ticket.status", "ticket.waiting_on_requester")
    assert (item["title"], item["body"]) == (f"{ticket.key} is now {status}", "Which coupon?")


def test_amounts_are_formatted_in_each_readers_locale_and_the_email_body_in_their_language(
    make_user, client_for, api_for, mailoutbox, django_capture_on_commit_callbacks
):
    # given one English and one Chinese reader, warned by an actor working in Chinese
    english = in_english(make_user("ella"))
    chinese = make_user("li")
    with translation.override("zh-hans"), django_capture_on_commit_callbacks(execute=True):
        notify(
            recipients=[english, chinese],
            kind="campaign.budget",
            params={"name": "Double 11", "pct": 80, "spend": Decimal("110000"), "budget": Decimal("137500")},
            url="/campaigns/1/",
        )
    # then each reads the amounts in their own locale, in the app and in the e-mail
    english_body = "Spend 110,000.00 of budget 137,500.00."
    assert api_for(english).get(API).json()["results"][0]["body"] == english_body
    assert english_body in page_of(client_for, english)
    english_mail = mail_to(mailoutbox, english)
    assert english_mail.subject == "[MarTech Hub] Double 11 has used 80% of its budget"
    assert english_mail.body.startswith(english_body)
    chinese_mail = mail_to(mailoutbox, chinese)
    assert chinese_mail.body.startswith("已花费 110000.00，预算 137500.00。")
    assert chinese_mail.subject == "[MarTech Hub] Double 11 已使用预算的 80%"


def test_rows_written_before_kinds_show_their_stored_text(make_user, client_for, api_for):
    reader = in_english(make_user("ella"))
    Notification.objects.create(
        recipient=reader, verb="ticket.created", title="Legacy title", body="Legacy body"
    )
    assert "Legacy title" in page_of(client_for, reader)
    item = api_for(reader).get(API).json()["results"][0]
    assert (item["title"], item["body"]) == ("Legacy title", "Legacy body")


# --- personal values ---------------------------------------------------------------------------------


def test_a_customers_email_and_phone_quoted_in_a_reply_never_reach_a_reader_without_view_pii(
    make_user, agent, client_for, api_for, mailoutbox, django_capture_on_commit_callbacks
):
    requester = in_english(make_user("ella", role="requester"))
    ticket = make_ticket(requester)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.comment_add(
            ticket=ticket, by=agent, body=f"The customer {PLANTED_EMAIL} ({PLANTED_PHONE}) got the coupon."
        )
    shown = [
        page_of(client_for, requester),
        api_for(requester).get(API).content.decode(),
        mail_to(mailoutbox, requester).body,
        *Notification.objects.values_list("title", "body").get(recipient=requester),
    ]
    for text in shown:
        assert PLANTED_EMAIL not in text and PLANTED_PHONE not in text
    assert "got the coupon" in shown[1]


def test_a_reader_with_view_pii_reads_the_text_as_written(
    requester, agent, manager, api_for, django_capture_on_commit_callbacks
):
    ticket = make_ticket(requester)
    Notification.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.comment_add(ticket=ticket, by=agent, body=f"Customer {PLANTED_EMAIL}", internal=True)
    assert api_for(manager).get(API).json()["results"][0]["body"] == f"Customer {PLANTED_EMAIL}"


# --- bad input, permissions, queries --------------------------------------------------------------------


def test_an_unknown_kind_is_refused_naming_it(make_user):
    with pytest.raises(UnknownNotificationKind, match="'ticket.nope'"):
        notify(recipients=[make_user("ella")], kind="ticket.nope")
    assert not Notification.objects.exists()


def test_a_missing_parameter_is_refused_naming_it(make_user):
    with pytest.raises(NotificationParamsInvalid, match="'key'"):
        notify(recipients=[make_user("ella")], kind="ticket.assigned", params={})


def test_a_person_reads_their_own_notifications_and_nobody_elses(make_user, client_for, api_for):
    owner, other = in_english(make_user("ella")), in_english(make_user("li"))
    notify(recipients=[owner], kind="ticket.assigned", params={"key": "MT-7319"}, email=False)
    assert "MT-7319 was assigned to you" in page_of(client_for, owner)
    assert api_titles(api_for, owner) == ["MT-7319 was assigned to you"]
    assert "MT-7319" not in page_of(client_for, other)
    assert api_titles(api_for, other) == []


def test_signed_out_visitors_get_no_notifications(client, api_for):
    response = client.get(reverse("accounts:notifications"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert api_for(None).get(API).status_code in (401, 403)


def _many_notifications(reader) -> None:
    for number in range(10):
        notify(
            recipients=[reader],
            kind="ticket.status",
            params={"key": f"MT-{number}", "status": "resolved", "text": "ok"},
        )
        notify(
            recipients=[reader],
            kind="campaign.budget",
            params={"name": "A", "pct": 80, "spend": 8, "budget": 10},
        )
        notify(
            recipients=[reader], kind="report.done", params={"kind": "customers", "rows": 1200, "error": ""}
        )


def test_the_notification_page_runs_a_fixed_number_of_queries(
    make_user, client_for, django_assert_max_num_queries
):
    reader = in_english(make_user("ella"))
    _many_notifications(reader)
    client = client_for(reader)
    client.get(reverse("accounts:notifications"))
    # session, user, the notifications, the reader's permissions (2: masking asks once), unread badge,
    # navigation (groups)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("accounts:notifications")).content.decode()
    assert page.count(" is now Resolved") == 10 and "1,200 rows" in page


def test_the_notification_api_runs_a_fixed_number_of_queries(
    make_user, api_for, django_assert_max_num_queries
):
    reader = in_english(make_user("ella"))
    _many_notifications(reader)
    # the notifications, the reader's permissions (2: masking asks once), the unread count
    with django_assert_max_num_queries(5):
        results = api_for(reader).get(API).json()["results"]
    assert len(results) == 30


def test_dates_are_shown_in_the_readers_format_and_time_zone(monkeypatch):
    from types import SimpleNamespace

    from accounts import notification_kinds

    monkeypatch.setitem(
        notification_kinds.KINDS, "test.due", notification_kinds.NotificationKind("%(due)s", dates=("due",))
    )
    params = {"due": "2026-12-06T17:30:00+00:00"}  # 01:30 the next day in Shanghai
    english = SimpleNamespace(language="en", timezone="Asia/Shanghai")
    chinese = SimpleNamespace(language="zh-hans", timezone="Asia/Shanghai")
    assert notification_kinds.render("test.due", params, reader=english).title == "12/07/2026 1:30 a.m."
    assert notification_kinds.render("test.due", params, reader=chinese).title == "2026年12月7日 01:30"
