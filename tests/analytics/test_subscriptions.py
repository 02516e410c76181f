"""Weekly e-mail reports: due logic, delivery, and a failed delivery recorded and shown, never silent."""

import datetime as dt
import smtplib

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.urls import reverse

from accounts.models import Notification
from analytics import services
from analytics.models import ReportDelivery, ReportSubscription

pytestmark = pytest.mark.django_db
# Monday 23 November 2026, 09:00 in Shanghai
MONDAY_9 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)


class RefusingBackend(BaseEmailBackend):
    """An SMTP server that refuses every message."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPRecipientsRefused({"boss@example.com": (550, b"mailbox unavailable")})


@pytest.fixture
def subscription(manager):
    return services.subscription_save(
        owner=manager, kind=ReportSubscription.Kind.SUPPORT_WEEKLY, weekday=0, hour=8
    )


def test_beat_schedule_has_the_weekly_reports():
    entry = settings.CELERY_BEAT_SCHEDULE["analytics-send-scheduled-reports"]
    assert entry["task"] == "analytics.tasks.send_scheduled_reports"


def test_due_on_its_weekday_after_its_hour_once_a_week(subscription):
    assert services.subscription_is_due(subscription, MONDAY_9)
    assert not services.subscription_is_due(subscription, MONDAY_9 - dt.timedelta(hours=2))  # 07:00
    assert not services.subscription_is_due(subscription, MONDAY_9 + dt.timedelta(days=1))
    subscription.last_sent_at = MONDAY_9
    assert not services.subscription_is_due(subscription, MONDAY_9 + dt.timedelta(hours=3))


def test_a_due_report_is_e_mailed_and_logged(subscription):
    counts = services.scheduled_reports_send(now=MONDAY_9)
    assert counts == {"sent": 1, "failed": 0}
    assert len(mail.outbox) == 1
    assert "每周支持报告" in mail.outbox[0].subject  # in the subscriber's language (zh-hans)
    assert "/dashboards/support/?from=2026-11-16&to=2026-11-22" in mail.outbox[0].body
    delivery = ReportDelivery.objects.get()
    assert (delivery.status, delivery.period_start) == ("sent", dt.date(2026, 11, 16))
    subscription.refresh_from_db()
    assert subscription.last_sent_at == MONDAY_9


def test_a_failed_delivery_is_recorded_and_the_subscriber_told(subscription, settings, manager):
    settings.EMAIL_BACKEND = "tests.analytics.test_subscriptions.RefusingBackend"
    counts = services.scheduled_reports_send(now=MONDAY_9)
    delivery = ReportDelivery.objects.get()
    assert counts == {"sent": 0, "failed": 1}
    assert delivery.status == "failed" and "SMTPRecipientsRefused" in delivery.error
    assert Notification.objects.filter(recipient=manager, verb="report.delivery_failed").exists()
    subscription.refresh_from_db()
    assert subscription.last_sent_at is None  # tried again next hour


def test_the_failure_is_shown_on_the_subscriptions_page(subscription, settings, client_for, manager):
    settings.EMAIL_BACKEND = "tests.analytics.test_subscriptions.RefusingBackend"
    services.scheduled_reports_send(now=MONDAY_9)
    html = client_for(manager).get(reverse("analytics:subscriptions")).content.decode()
    assert 'data-delivery-status="failed"' in html
    assert "mailbox unavailable" in html


def test_campaign_report(manager):
    subscription = services.subscription_save(owner=manager, kind="campaign_weekly", weekday=0, hour=8)
    delivery = services.subscription_deliver(subscription=subscription, now=MONDAY_9)
    assert delivery.status == "sent"
    assert "每周活动报告" in mail.outbox[0].subject
    assert "ROI" in mail.outbox[0].body


def test_demo_seed_is_idempotent(make_user, support_team):
    import io

    from analytics import demo

    make_user("manager", role="manager", team=support_team.name)
    demo.seed(io.StringIO())
    demo.seed(io.StringIO())
    assert ReportSubscription.objects.count() == 2
