"""Services: imports, approvals, dates, budget warnings, tasks, review."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from accounts.models import AuditEntry, Notification
from campaigns import services
from campaigns.models import Campaign, CampaignReview, DailyMetric
from config.csv_import import ImportRejected
from tests.campaigns.factories import campaign_make, csv_bytes, metric_make

pytestmark = pytest.mark.django_db
HEADER = "date,channel,spend,impressions,clicks,leads,conversions,revenue"


def upload(lines: list[str]) -> io.BytesIO:
    return io.BytesIO(csv_bytes(lines))


# Create / approve / dates ----------------------------------------------------------------------


def test_create_drafts_a_campaign_for_the_owners_team(requester):
    campaign = services.campaign_create(
        by=requester,
        name="Summer",
        code=" Summer-26 ",
        budget=Decimal("100"),
        start_date=dt.date(2026, 7, 1),
        end_date=dt.date(2026, 7, 31),
        channels=["WeChat", "wechat", "Douyin"],
    )
    assert (campaign.code, campaign.team_id, campaign.status, campaign.channels) == (
        "summer-26",
        requester.team_id,
        "planning",
        ["wechat", "douyin"],
    )
    assert AuditEntry.objects.filter(action="campaign.create", object_id=str(campaign.pk)).exists()


def test_manager_approves_a_future_campaign(campaign, manager):
    campaign.start_date, campaign.end_date = dt.date(2099, 1, 1), dt.date(2099, 1, 31)
    campaign.save()
    approved = services.campaign_approve(campaign=campaign, by=manager)
    assert (approved.status, approved.approved_by) == ("approved", manager)


def test_approval_of_a_campaign_already_started_makes_it_run(requester, manager):
    today = dt.date.today()
    campaign = campaign_make(
        owner=requester, start_date=today - dt.timedelta(days=1), end_date=today + dt.timedelta(days=5)
    )
    assert services.campaign_approve(campaign=campaign, by=manager).status == "running"


def test_requester_cannot_approve(campaign, requester):
    with pytest.raises(PermissionDenied):
        services.campaign_approve(campaign=campaign, by=requester)
    campaign.refresh_from_db()
    assert campaign.status == "planning"


def test_follow_dates_starts_and_completes(requester):
    today = dt.date(2026, 6, 15)
    starting = campaign_make(
        owner=requester, status="approved", start_date=today, end_date=dt.date(2026, 6, 20)
    )
    ending = campaign_make(
        owner=requester, status="running", start_date=dt.date(2026, 6, 1), end_date=dt.date(2026, 6, 14)
    )
    future = campaign_make(
        owner=requester, status="approved", start_date=dt.date(2026, 7, 1), end_date=dt.date(2026, 7, 2)
    )
    assert services.campaigns_follow_dates(today=today) == 2
    statuses = dict(
        Campaign.objects.filter(pk__in=[starting.pk, ending.pk, future.pk]).values_list("pk", "status")
    )
    assert statuses == {starting.pk: "running", ending.pk: "completed", future.pk: "approved"}


def test_follow_dates_leaves_hand_set_status_alone(requester):
    campaign = campaign_make(
        owner=requester,
        status="running",
        status_manual=True,
        start_date=dt.date(2026, 6, 1),
        end_date=dt.date(2026, 6, 2),
    )
    services.campaigns_follow_dates(today=dt.date(2026, 6, 15))
    campaign.refresh_from_db()
    assert campaign.status == "running"


def test_follow_dates_beat_task_runs_the_service(requester):
    from campaigns.tasks import follow_dates

    campaign_make(
        owner=requester, status="approved", start_date=dt.date(2020, 1, 1), end_date=dt.date(2099, 1, 1)
    )
    assert follow_dates.delay().get() == 1


def test_set_status_by_hand_marks_manual(requester, manager):
    campaign = campaign_make(owner=requester, status="running")
    done = services.campaign_set_status(campaign=campaign, to="completed", by=requester)
    assert (done.status, done.status_manual) == ("completed", True)


def test_set_status_refuses_skipping_approval(campaign, requester):
    with pytest.raises(PermissionDenied):
        services.campaign_set_status(campaign=campaign, to="running", by=requester)


# Metrics import --------------------------------------------------------------------------------


def test_metrics_import_writes_rows(campaign, requester):
    count = services.metrics_import(
        campaign=campaign,
        upload=upload(
            [HEADER, "2026-06-01,WeChat,100.50,1000,50,10,2,300", "2026-06-01,douyin,10,100,5,1,0,0"]
        ),
        by=requester,
    )
    assert count == 2
    assert DailyMetric.objects.get(campaign=campaign, channel="wechat").spend == Decimal("100.50")


def test_metrics_import_is_all_or_nothing(campaign, requester):
    with pytest.raises(ImportRejected) as info:
        services.metrics_import(
            campaign=campaign,
            upload=upload(
                [HEADER, "2026-06-01,wechat,100,1000,50,10,2,300", "2026-06-02,wechat,-5,x,50,10,2,300"]
            ),
            by=requester,
        )
    assert [(e.row, e.column) for e in info.value.errors] == [(3, "spend"), (3, "impressions")]
    assert not DailyMetric.objects.filter(campaign=campaign).exists()


def test_metrics_import_rejects_duplicate_day_and_channel(campaign, requester):
    with pytest.raises(ImportRejected) as info:
        services.metrics_import(
            campaign=campaign,
            upload=upload([HEADER, "2026-06-01,wechat,1,1,1,1,1,1", "2026-06-01,wechat,2,2,2,2,2,2"]),
            by=requester,
        )
    assert (info.value.errors[0].row, info.value.errors[0].column) == (3, "channel")


def test_metrics_import_rejects_missing_column(campaign, requester):
    with pytest.raises(ImportRejected) as info:
        services.metrics_import(
            campaign=campaign, upload=upload(["date,channel", "2026-06-01,wechat"]), by=requester
        )
    assert info.value.errors[0].row == 1


def test_reimporting_a_day_replaces_it(campaign, requester):
    metric_make(campaign=campaign, date=dt.date(2026, 6, 1), channel="wechat", spend=Decimal("999"))
    metric_make(campaign=campaign, date=dt.date(2026, 6, 1), channel="email", spend=Decimal("5"))
    metric_make(campaign=campaign, date=dt.date(2026, 6, 2), channel="wechat", spend=Decimal("7"))
    services.metrics_import(
        campaign=campaign, upload=upload([HEADER, "2026-06-01,wechat,100,0,0,0,0,0"]), by=requester
    )
    rows = set(DailyMetric.objects.filter(campaign=campaign).values_list("date", "channel", "spend"))
    assert rows == {
        (dt.date(2026, 6, 1), "wechat", Decimal("100.00")),
        (dt.date(2026, 6, 2), "wechat", Decimal("7.00")),
    }


def test_import_command_imports_a_file(campaign, tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(csv_bytes([HEADER, "2026-06-01,wechat,1,1,1,1,1,1"]))
    out = io.StringIO()
    call_command("import_campaign_metrics", campaign.code, str(path), stdout=out)
    assert "1 row(s) imported" in out.getvalue()


def test_import_command_reports_bad_rows(campaign, tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(csv_bytes([HEADER, "not-a-date,wechat,1,1,1,1,1,1"]))
    with pytest.raises(CommandError, match="row 2, column date"):
        call_command("import_campaign_metrics", campaign.code, str(path))


# Budget warnings -------------------------------------------------------------------------------


def budget_notifications() -> list[tuple[str, str]]:
    return list(
        Notification.objects.filter(verb="campaign.budget").values_list("recipient__username", "title")
    )


def test_budget_warning_at_80_percent_goes_to_owner_and_managers_once(campaign, requester, manager):
    # budget 10,000: 8,000 spent is 80 %
    services.metrics_import(
        campaign=campaign, upload=upload([HEADER, "2026-06-01,wechat,8000,0,0,0,0,0"]), by=requester
    )
    services.metrics_import(
        campaign=campaign, upload=upload([HEADER, "2026-06-02,wechat,100,0,0,0,0,0"]), by=requester
    )
    sent = budget_notifications()
    assert sorted(user for user, _ in sent) == ["boss", "req"]
    assert all("80%" in title for _, title in sent)


def test_budget_warning_at_100_percent_is_sent_once(campaign, requester, manager):
    services.metrics_import(
        campaign=campaign, upload=upload([HEADER, "2026-06-01,wechat,8500,0,0,0,0,0"]), by=requester
    )
    services.metrics_import(
        campaign=campaign, upload=upload([HEADER, "2026-06-02,wechat,2000,0,0,0,0,0"]), by=requester
    )
    services.metrics_import(
        campaign=campaign, upload=upload([HEADER, "2026-06-03,wechat,1,0,0,0,0,0"]), by=requester
    )
    titles = [title for user, title in budget_notifications() if user == "req"]
    assert sorted(titles) == sorted(
        [f"{campaign.name} has used 80% of its budget", f"{campaign.name} has used 100% of its budget"]
    )


def test_no_budget_warning_below_80_percent(campaign, requester, manager):
    services.metrics_import(
        campaign=campaign, upload=upload([HEADER, "2026-06-01,wechat,7999,0,0,0,0,0"]), by=requester
    )
    assert budget_notifications() == []


# Tasks, A/B, review ----------------------------------------------------------------------------


def test_task_overdue_until_done(campaign, requester):
    task = services.task_create(campaign=campaign, by=requester, title="Brief", due_date=dt.date(2020, 1, 1))
    assert task.is_overdue
    task = services.task_set_done(task=task, by=requester, done=True)
    assert not task.is_overdue


def test_other_team_cannot_add_tasks(campaign, other_requester):
    with pytest.raises(PermissionDenied):
        services.task_create(campaign=campaign, by=other_requester, title="Sneaky")


def test_utm_link_defaults_campaign_to_code(campaign, requester):
    link = services.utm_link_create(
        campaign=campaign, by=requester, url="https://a.example.com/?x=1", source="WeChat", medium="Social"
    )
    assert link.url == "https://a.example.com/?x=1&utm_source=wechat&utm_medium=social&utm_campaign=c618"


def test_ab_test_needs_two_variants(campaign, requester):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.ab_test_create(
            campaign=campaign,
            by=requester,
            name="t",
            variants=[{"name": "A", "exposures": 1, "conversions": 0}],
        )


def test_review_freezes_figures(campaign, requester):
    campaign.status = "completed"
    campaign.save()
    metric_make(campaign=campaign, date=dt.date(2026, 6, 1), spend=Decimal("100"), revenue=Decimal("250"))
    services.review_save(
        campaign=campaign, by=requester, what_worked="KOL posts", what_to_improve="Landing page"
    )
    metric_make(campaign=campaign, date=dt.date(2026, 6, 2), spend=Decimal("900"))
    services.review_save(
        campaign=campaign, by=requester, what_worked="KOL posts!", what_to_improve="Landing page"
    )
    review = CampaignReview.objects.get(campaign=campaign)
    assert (review.figures["spend"], review.figures["roi"], review.what_worked) == (100.0, 1.5, "KOL posts!")
    campaign.refresh_from_db()
    assert campaign.status == "reviewed"


def test_review_refused_before_completion(campaign, requester):
    with pytest.raises(PermissionDenied):
        services.review_save(campaign=campaign, by=requester, what_worked="a", what_to_improve="b")


def test_drafting_asks_managers_for_approval(requester, manager):
    services.campaign_create(
        by=requester,
        name="Needs approval",
        code="needs-approval",
        budget=Decimal("1"),
        start_date=dt.date(2026, 7, 1),
        end_date=dt.date(2026, 7, 2),
    )
    assert Notification.objects.filter(recipient=manager, verb="campaign.submitted").count() == 1


def test_approval_tells_the_owner(campaign, requester, manager):
    services.campaign_approve(campaign=campaign, by=manager)
    assert Notification.objects.filter(recipient=requester, verb="campaign.approved").exists()


def test_variant_counts_import_updates_and_adds(campaign, requester):
    test = services.ab_test_create(
        campaign=campaign,
        by=requester,
        name="Hero",
        variants=[
            {"name": "A", "exposures": 1, "conversions": 0},
            {"name": "B", "exposures": 1, "conversions": 0},
        ],
    )
    services.ab_variants_import(
        test=test, upload=upload(["name,exposures,conversions", "A,1000,40", "C,900,50"]), by=requester
    )
    counts = list(test.variants.order_by("position").values_list("name", "exposures", "conversions"))
    assert counts == [("A", 1000, 40), ("B", 1, 0), ("C", 900, 50)]


def test_variant_counts_import_is_all_or_nothing(campaign, requester):
    test = services.ab_test_create(
        campaign=campaign,
        by=requester,
        name="Hero",
        variants=[
            {"name": "A", "exposures": 1, "conversions": 0},
            {"name": "B", "exposures": 1, "conversions": 0},
        ],
    )
    with pytest.raises(ImportRejected) as info:
        services.ab_variants_import(
            test=test, upload=upload(["name,exposures,conversions", "A,1000,40", "B,10,50"]), by=requester
        )
    assert (info.value.errors[0].row, info.value.errors[0].column) == (3, "conversions")
    assert test.variants.get(name="A").exposures == 1


def test_jumping_past_100_percent_sends_only_that_warning(campaign, requester, manager):
    services.metrics_import(
        campaign=campaign, upload=upload([HEADER, "2026-06-01,wechat,12000,0,0,0,0,0"]), by=requester
    )
    services.metrics_import(
        campaign=campaign, upload=upload([HEADER, "2026-06-02,wechat,1,0,0,0,0,0"]), by=requester
    )
    titles = [title for user, title in budget_notifications() if user == "req"]
    assert titles == [f"{campaign.name} has used 100% of its budget"]
