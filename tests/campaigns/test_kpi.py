"""KPI targets compared with actuals (issue 21): the summary API's `kpi` list (contract), the figures tab's
table, the targets form and API for the owner or a manager; each allowed and refused."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import AuditEntry
from campaigns import kpi
from campaigns.models import Campaign
from tests.campaigns.factories import campaign_make, metric_make
from tests.conftest import in_english

pytestmark = pytest.mark.django_db


@pytest.fixture
def measured(campaign):
    """Spend 1,000, revenue 2,500, 100,000 impressions, 2,000 clicks, 50 conversions."""
    metric_make(
        campaign=campaign,
        date=dt.date(2026, 6, 1),
        spend=Decimal("600"),
        revenue=Decimal("1500"),
        impressions=60000,
        clicks=1200,
        leads=100,
        conversions=30,
    )
    metric_make(
        campaign=campaign,
        date=dt.date(2026, 6, 2),
        channel="douyin",
        spend=Decimal("400"),
        revenue=Decimal("1000"),
        impressions=40000,
        clicks=800,
        leads=60,
        conversions=20,
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        kpi_targets={"conversions": 40, "roi": 2, "cac": 25, "ctr": 0, "made_up": 3}
    )
    campaign.refresh_from_db()
    return campaign


# The summary API --------------------------------------------------------------------------------


def test_the_summary_lists_each_target_with_its_actual_and_attainment(api_for, requester, measured):
    body = api_for(requester).get(f"/api/v1/campaigns/{measured.code}/summary/").json()

    assert body["kpi"] == [
        {"metric": "roi", "target": 2.0, "actual": 1.5, "attainment": 0.75},
        {"metric": "cac", "target": 25.0, "actual": 20.0, "attainment": 0.8},
        {"metric": "ctr", "target": 0.0, "actual": 0.02, "attainment": None},  # a zero target: null
        {"metric": "conversions", "target": 40.0, "actual": 50.0, "attainment": 1.25},
    ]


def test_no_targets_is_an_empty_list(api_for, requester, campaign):
    assert api_for(requester).get(f"/api/v1/campaigns/{campaign.code}/summary/").json()["kpi"] == []


def test_another_teams_summary_stays_out_of_reach(api_for, other_requester, measured):
    assert api_for(other_requester).get(f"/api/v1/campaigns/{measured.code}/summary/").status_code == 404


def test_the_schema_documents_the_kpi_list_and_the_targets_endpoint():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    summary = schema["paths"]["/api/v1/campaigns/{code}/summary/"]["get"]["responses"]["200"]
    ref = summary["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    components = schema["components"]["schemas"]
    item_ref = components[ref]["properties"]["kpi"]["items"]["$ref"].rsplit("/", 1)[1]
    item = components[item_ref]
    assert set(item["properties"]) == {"metric", "target", "actual", "attainment"}
    assert item["properties"]["attainment"].get("nullable") is True
    assert {"get", "put"} <= set(schema["paths"]["/api/v1/campaigns/{code}/kpi-targets/"])


# The campaign page ------------------------------------------------------------------------------


def test_the_figures_tab_shows_target_actual_attainment_and_colour(client_for, requester, measured):
    in_english(requester)
    html = client_for(requester).get(f"/campaigns/{measured.code}/?tab=figures").content.decode()

    table = html.split('id="kpi-table"')[1].split("</table>")[0]
    roi = table.split('data-kpi-metric="roi"')[1].split("</tr>")[0]
    assert roi.startswith(' data-standing="missed"')
    assert "200.0%" in roi and "150.0%" in roi and "75.0%" in roi and "text-bg-danger" in roi
    conversions = table.split('data-kpi-metric="conversions"')[1].split("</tr>")[0]
    assert "125.0%" in conversions and "text-bg-success" in conversions
    cac = table.split('data-kpi-metric="cac"')[1].split("</tr>")[0]
    assert "80.0%" in cac and "text-bg-success" in cac  # lower is better: under the target meets it
    assert "made_up" not in table


def test_the_owner_sees_the_edit_link_and_a_team_mate_does_not(client_for, requester, team_mate, measured):
    assert (
        'id="kpi-edit-link"'
        in client_for(requester).get(f"/campaigns/{measured.code}/?tab=figures").content.decode()
    )
    assert (
        'id="kpi-edit-link"'
        not in client_for(team_mate).get(f"/campaigns/{measured.code}/?tab=figures").content.decode()
    )


def test_standing_reads_lower_is_better_metrics_the_other_way():
    assert (
        kpi.standing("cac", 0.9) == "met"
        and kpi.standing("cac", 1.1) == "near"
        and kpi.standing("cac", 1.5) == "missed"
    )
    assert (
        kpi.standing("roi", 1.0) == "met"
        and kpi.standing("roi", 0.85) == "near"
        and kpi.standing("roi", 0.5) == "missed"
    )
    assert kpi.standing("roi", None) == "unknown"


# The targets form -------------------------------------------------------------------------------


@pytest.fixture
def team_mate(make_user):
    return make_user("teammate", role="requester", team="E-commerce ops")


def test_the_owner_saves_targets_typed_as_they_read(client_for, requester, campaign):
    response = client_for(requester).post(
        f"/campaigns/{campaign.code}/kpi/",
        {"target_roi": "150", "target_conversions": "500", "target_cac": ""},
    )
    assert response.status_code == 302 and response["Location"].endswith("?tab=figures")
    campaign.refresh_from_db()
    assert campaign.kpi_targets == {"roi": 1.5, "conversions": 500}
    assert AuditEntry.objects.filter(action="campaign.kpi_targets", actor=requester).exists()


def test_a_manager_may_edit_targets(client_for, manager, campaign):
    assert client_for(manager).get(f"/campaigns/{campaign.code}/kpi/").status_code == 200
    client_for(manager).post(f"/campaigns/{campaign.code}/kpi/", {"target_leads": "100"})
    campaign.refresh_from_db()
    assert campaign.kpi_targets == {"leads": 100}


def test_a_team_mate_who_is_not_the_owner_is_refused(client_for, team_mate, campaign):
    assert client_for(team_mate).get(f"/campaigns/{campaign.code}/kpi/").status_code == 403
    assert (
        client_for(team_mate).post(f"/campaigns/{campaign.code}/kpi/", {"target_leads": "1"}).status_code
        == 403
    )
    campaign.refresh_from_db()
    assert campaign.kpi_targets == {}


def test_another_team_gets_404(client_for, other_requester, campaign):
    assert client_for(other_requester).get(f"/campaigns/{campaign.code}/kpi/").status_code == 404


def test_a_bad_target_is_named_beside_its_metric_and_nothing_is_saved(client_for, requester, campaign):
    in_english(requester)
    Campaign.objects.filter(pk=campaign.pk).update(kpi_targets={"leads": 7})
    response = client_for(requester).post(
        f"/campaigns/{campaign.code}/kpi/", {"target_leads": "9", "target_revenue": "lots"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert 'data-error-for="revenue"' in html and 'value="lots"' in html
    campaign.refresh_from_db()
    assert campaign.kpi_targets == {"leads": 7}


def test_the_plan_form_cannot_change_targets_for_someone_else(team_mate, campaign):
    from django.core.exceptions import ValidationError

    from campaigns import services

    with pytest.raises(ValidationError, match="owner or a manager"):
        services.campaign_update(campaign=campaign, by=team_mate, kpi_targets={"leads": 1})
    services.campaign_update(campaign=campaign, by=team_mate, objective="Other")  # the rest stays open
    campaign.refresh_from_db()
    assert campaign.kpi_targets == {} and campaign.objective == "Other"


# The targets API --------------------------------------------------------------------------------


def test_the_owner_replaces_targets_over_the_api(api_for, requester, campaign):
    response = api_for(requester).put(
        f"/api/v1/campaigns/{campaign.code}/kpi-targets/",
        {"targets": {"cvr": 0.05, "revenue": 10000}},
        format="json",
    )
    assert response.status_code == 200 and response.json() == {"targets": {"cvr": 0.05, "revenue": 10000}}
    assert api_for(requester).get(f"/api/v1/campaigns/{campaign.code}/kpi-targets/").json()["targets"] == {
        "cvr": 0.05,
        "revenue": 10000,
    }


def test_the_api_refuses_a_team_mate_and_names_an_unknown_metric(api_for, requester, team_mate, campaign):
    url = f"/api/v1/campaigns/{campaign.code}/kpi-targets/"
    assert api_for(team_mate).put(url, {"targets": {"leads": 1}}, format="json").status_code == 403
    response = api_for(requester).put(url, {"targets": {"likes": 1}}, format="json")
    assert response.status_code == 400 and "likes" in str(response.json())
    campaign.refresh_from_db()
    assert campaign.kpi_targets == {}


def test_the_api_hides_another_teams_campaign(api_for, other_requester, campaign):
    assert api_for(other_requester).get(f"/api/v1/campaigns/{campaign.code}/kpi-targets/").status_code == 404


def test_a_reviewed_campaigns_targets_are_frozen(api_for, manager, requester):
    done = campaign_make(owner=requester, status=Campaign.Status.REVIEWED)
    url = f"/api/v1/campaigns/{done.code}/kpi-targets/"
    assert api_for(manager).put(url, {"targets": {"leads": 1}}, format="json").status_code == 403


def test_the_kpi_table_costs_no_query_per_target(client_for, requester, measured):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(requester)
    url = f"/campaigns/{measured.code}/?tab=figures"
    client.get(url)  # warm the per-session reads
    Campaign.objects.filter(pk=measured.pk).update(kpi_targets={"roi": 1})
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    Campaign.objects.filter(pk=measured.pk).update(kpi_targets=dict.fromkeys(kpi.METRICS, 1))
    with CaptureQueriesContext(connection) as all_twelve:
        html = client.get(url).content.decode()
    assert html.count("data-kpi-metric=") == 12
    assert len(all_twelve) == len(one)
