"""Pages: who may open which dashboard (allow and deny), chart endpoints, reports and subscriptions."""

import re

import pytest
from django.urls import reverse

from analytics.models import ReportDelivery, ReportJob, ReportSubscription
from tests.analytics.factories import at, ticket_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(requester, agent, manager, admin_user):
    return {"requester": requester, "agent": agent, "manager": manager, "admin": admin_user}


@pytest.mark.parametrize(
    ("page", "allowed"),
    [
        ("analytics:index", {"manager"}),
        ("analytics:support", {"manager", "requester", "agent", "admin"}),  # the last three: own team only
        ("analytics:marketing", {"manager", "requester", "agent", "admin"}),
        ("analytics:customers", {"manager"}),
        ("analytics:reports", {"manager", "agent"}),
        ("analytics:subscriptions", {"manager"}),
    ],
)
@pytest.mark.parametrize("role", ["requester", "agent", "manager", "admin"])
def test_page_allow_and_deny(client_for, people, page, allowed, role):
    response = client_for(people[role]).get(reverse(page))
    assert response.status_code == (200 if role in allowed else 403)


@pytest.mark.parametrize("page", ["analytics:support", "analytics:reports", "analytics:subscriptions"])
def test_anonymous_goes_to_login(client, page):
    response = client.get(reverse(page))
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_dashboard_page_has_a_card_per_chart_with_the_filters_in_its_url(client_for, manager):
    html = (
        client_for(manager)
        .get(reverse("analytics:support"), {"from": "2026-11-01", "to": "2026-11-30", "urgency": "urgent"})
        .content.decode()
    )
    assert html.count("data-chart=") == 8
    assert (
        "/dashboards/support/charts/sla_attainment/?from=2026-11-01&amp;to=2026-11-30&amp;urgency=urgent"
        in html
    )
    assert "vendor/plotly.min.js" in html and "analytics/dashboard.js" in html
    assert "<script>" not in html and "<script nonce" in html  # no inline scripts, nonces on files


def test_requester_sees_a_team_badge_and_no_team_filter(client_for, requester):
    html = client_for(requester).get(reverse("analytics:support")).content.decode()
    assert 'id="team-scope"' in html
    assert 'name="team"' not in html
    assert 'data-tab="customers"' not in html


def test_invalid_dates_show_an_error_under_the_field(client_for, manager):
    response = client_for(manager).get(
        reverse("analytics:support"), {"from": "2026-11-30", "to": "2026-11-01"}
    )
    assert response.status_code == 400
    assert 'data-error-for="to"' in response.content.decode()


def test_chart_endpoint_returns_series_and_as_of(client_for, manager, requester):
    ticket_make(requester=requester, created_at=at(2, 4))
    url = reverse("analytics:chart", args=["support", "inflow_outflow"])
    body = client_for(manager).get(url, {"from": "2026-11-01", "to": "2026-11-30"}).json()
    assert body["as_of"] and body["kind"] == "grouped_bar"
    assert sum(body["data"]["series"][0]["values"]) == 1


def test_chart_endpoint_scopes_requesters_to_their_team(client_for, requester, other_requester):
    ticket_make(requester=other_requester, created_at=at(2, 4))
    url = reverse("analytics:chart", args=["support", "kpis"])
    body = (
        client_for(requester)
        .get(url, {"from": "2026-11-01", "to": "2026-11-30", "team": other_requester.team_id})
        .json()
    )
    assert next(t["value"] for t in body["data"]["tiles"] if t["key"] == "opened") == 0


def test_chart_endpoint_denies_and_404s(client_for, requester, manager):
    assert (
        client_for(requester).get(reverse("analytics:chart", args=["customers", "cohorts"])).status_code
        == 403
    )
    assert client_for(manager).get(reverse("analytics:chart", args=["support", "nope"])).status_code == 404


def test_refresh_recomputes_the_chart(client_for, manager, requester):
    client = client_for(manager)
    url = reverse("analytics:chart", args=["support", "kpis"])
    first = client.get(url).json()
    again = client.get(url).json()
    fresh = client.get(url, {"refresh": "1"}).json()
    assert again["cached"] is True and again["as_of"] == first["as_of"]
    assert fresh["cached"] is False


def test_start_a_report_from_the_page(client_for, agent, django_capture_on_commit_callbacks):
    client = client_for(agent)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("analytics:reports"), {"kind": "customers", "format": "xlsx"})
    job = ReportJob.objects.get()
    assert response.status_code == 302
    assert (job.status, job.format) == ("done", "xlsx")
    html = client.get(reverse("analytics:reports")).content.decode()
    assert f'href="/api/v1/reports/{job.pk}/download/"' in html


def test_reports_page_first_load_shows_no_form_error(client_for, agent):
    # given an agent who has sent nothing yet
    # when the reports page opens
    response = client_for(agent).get(reverse("analytics:reports"))

    # then the form is unbound: no "required" (or any other) error on it
    html = response.content.decode()
    assert response.status_code == 200
    assert not response.context["form"].is_bound
    assert "data-error-for=" not in html and "This field is required." not in html


def test_the_page_after_a_start_has_a_fresh_form(client_for, agent, django_capture_on_commit_callbacks):
    # given an agent who has just started a report
    client = client_for(agent)
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(reverse("analytics:reports"), {"kind": "customers", "format": "xlsx"})

    # when the redirect is followed
    response = client.get(started["Location"])

    # then the form is a fresh one (CSV chosen by default) without errors
    html = response.content.decode()
    assert not response.context["form"].is_bound
    assert "data-error-for=" not in html and "This field is required." not in html
    assert re.search(r'<input[^>]*value="csv"[^>]*checked', html)


def test_an_empty_post_is_answered_with_the_missing_fields(client_for, agent):
    response = client_for(agent).post(reverse("analytics:reports"), {})
    assert response.status_code == 422
    assert 'data-error-for="kind"' in response.content.decode()


def test_report_form_errors_answer_422(client_for, agent):
    response = client_for(agent).post(reverse("analytics:reports"), {"kind": "nope"})
    assert response.status_code == 422
    assert 'data-error-for="kind"' in response.content.decode()


def test_progress_partial_polls_while_active_and_is_owner_only(client_for, agent, manager):
    job = ReportJob.objects.create(
        owner=agent, kind="customers", dedupe_key="k", status="running", progress=40
    )
    html = client_for(agent).get(reverse("analytics:report_progress", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in html and "40%" in html
    assert client_for(manager).get(reverse("analytics:report_progress", args=[job.pk])).status_code == 404


def test_reports_page_query_count(client_for, agent, django_assert_max_num_queries):
    for n in range(5):
        ReportJob.objects.create(owner=agent, kind="customers", dedupe_key=f"k{n}", status="done")
    client = client_for(agent)
    # session, user, permissions (2), nav unread count, groups, team, jobs
    with django_assert_max_num_queries(9):
        response = client.get(reverse("analytics:reports"))
    assert response.content.decode().count("data-status=") == 5


def test_subscribe_and_unsubscribe(client_for, manager):
    client = client_for(manager)
    response = client.post(
        reverse("analytics:subscriptions"), {"kind": "support_weekly", "weekday": 0, "hour": 8}
    )
    subscription = ReportSubscription.objects.get()
    assert response.status_code == 302 and subscription.owner == manager
    client.post(reverse("analytics:subscription_delete", args=[subscription.pk]))
    assert not ReportSubscription.objects.exists()


def test_someone_elses_subscription_is_404(client_for, manager, make_user, support_team):
    other = make_user("boss2", role="manager", team=support_team.name)
    subscription = ReportSubscription.objects.create(owner=other, kind="support_weekly")
    response = client_for(manager).post(reverse("analytics:subscription_delete", args=[subscription.pk]))
    assert response.status_code == 404


def test_subscriptions_page_query_count(client_for, manager, django_assert_max_num_queries):
    for kind in ("support_weekly", "campaign_weekly"):
        subscription = ReportSubscription.objects.create(owner=manager, kind=kind)
        for _n in range(3):
            ReportDelivery.objects.create(
                subscription=subscription, status="sent", period_start="2026-11-01", period_end="2026-11-07"
            )
    client = client_for(manager)
    # session, user, permissions (2), nav unread count, groups, team, subscriptions, deliveries (prefetched)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("analytics:subscriptions"))
    assert response.content.decode().count('data-delivery-status="sent"') == 6


# Quotas and cancel (issue 16, item 7) -------------------------------------------------------------


def test_a_fourth_report_from_the_page_is_429_naming_the_others(
    client_for, agent, django_capture_on_commit_callbacks
):
    # given three reports of the agent in progress
    client = client_for(agent)
    with django_capture_on_commit_callbacks(execute=False):
        for kind in ("customers", "tickets", "tag_members"):
            client.post(reverse("analytics:reports"), {"kind": kind, "format": "csv"})
        # when a fourth is started from the page
        response = client.post(reverse("analytics:reports"), {"kind": "sla_breaches", "format": "csv"})
    # then the form answers 429 naming the three, each row with its cancel button
    html = response.content.decode()
    assert response.status_code == 429
    jobs = list(ReportJob.objects.order_by("id"))
    assert len(jobs) == 3
    assert all(re.search(rf"#{job.pk}\D", html) for job in jobs)
    assert html.count("data-cancel") == 3


def test_cancel_from_the_page_htmx_gets_the_row(client_for, agent):
    # given a running report
    job = ReportJob.objects.create(owner=agent, kind="customers", dedupe_key="k", status="running")
    # when its owner presses cancel (htmx)
    response = client_for(agent).post(
        reverse("analytics:report_cancel", args=[job.pk]), HTTP_HX_REQUEST="true"
    )
    # then the row comes back cancelled, no longer polling, without a cancel button
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-status="cancelled"' in html and "hx-trigger" not in html and "data-cancel" not in html
    assert ReportJob.objects.get(pk=job.pk).status == "cancelled"


def test_cancel_from_the_page_without_htmx_redirects(client_for, agent):
    job = ReportJob.objects.create(owner=agent, kind="customers", dedupe_key="k")
    response = client_for(agent).post(reverse("analytics:report_cancel", args=[job.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("analytics:reports")
    assert ReportJob.objects.get(pk=job.pk).status == "cancelled"


def test_cancel_is_owner_only_and_post_only(client_for, agent, manager):
    job = ReportJob.objects.create(owner=agent, kind="customers", dedupe_key="k")
    url = reverse("analytics:report_cancel", args=[job.pk])
    assert client_for(manager).post(url).status_code == 404
    assert client_for(agent).get(url).status_code == 405
    assert ReportJob.objects.get(pk=job.pk).status == "queued"
