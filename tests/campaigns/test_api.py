"""The API contract: paths, JSON names, permissions (allow and deny), error shapes, query counts."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from scipy import stats

from campaigns.models import Campaign, DailyMetric
from tests.campaigns.factories import campaign_make, csv_bytes, metric_make

pytestmark = pytest.mark.django_db
HEADER = "date,channel,spend,impressions,clicks,leads,conversions,revenue"
NEW = {
    "name": "双11 预热",
    "code": "d11-warmup",
    "objective": "Grow the list",
    "budget": "50000.00",
    "start_date": "2026-10-20",
    "end_date": "2026-11-10",
    "channels": ["wechat", "douyin"],
    "audience": {"include": ["vip"], "include_mode": "any", "exclude": ["churned"]},
}


def upload(lines: list[str], name: str = "m.csv") -> io.BytesIO:
    f = io.BytesIO(csv_bytes(lines))
    f.name = name
    return f


# Create / list / detail ------------------------------------------------------------------------


def test_requester_creates_a_campaign(api_for, requester, monkeypatch):
    monkeypatch.setattr("campaigns.selectors.known_tag_slugs", lambda slugs: set(slugs))
    response = api_for(requester).post("/api/v1/campaigns/", NEW, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["code"], body["status"], body["team"], body["budget"]) == (
        "d11-warmup",
        "planning",
        "E-commerce ops",
        50000.0,
    )
    assert body["audience"] == {"include": ["vip"], "include_mode": "any", "exclude": ["churned"]}


def test_create_rejects_end_before_start(api_for, requester):
    response = api_for(requester).post(
        "/api/v1/campaigns/", {**NEW, "audience": None, "end_date": "2026-01-01"} | {}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] in ("end_date", "audience")


def test_create_rejects_duplicate_code(api_for, requester, campaign):
    data = {k: v for k, v in NEW.items() if k != "audience"} | {"code": campaign.code}
    response = api_for(requester).post("/api/v1/campaigns/", data, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "code"


def test_anonymous_cannot_list(api_for):
    assert api_for(None).get("/api/v1/campaigns/").status_code in (401, 403)


def test_requester_lists_only_their_teams_campaigns(api_for, requester, other_requester, campaign):
    campaign_make(owner=other_requester, code="brand-1")
    response = api_for(requester).get("/api/v1/campaigns/")
    assert [c["code"] for c in response.json()["results"]] == [campaign.code]


def test_agent_lists_every_team(api_for, agent, requester, other_requester, campaign):
    campaign_make(owner=other_requester, code="brand-1")
    response = api_for(agent).get("/api/v1/campaigns/")
    assert {c["code"] for c in response.json()["results"]} == {campaign.code, "brand-1"}


def test_list_filters_by_status(api_for, agent, requester, campaign):
    campaign_make(owner=requester, code="running-1", status="running")
    response = api_for(agent).get("/api/v1/campaigns/?status=running")
    assert [c["code"] for c in response.json()["results"]] == ["running-1"]


def test_list_query_count_is_flat(api_for, agent, requester, django_assert_max_num_queries):
    for n in range(15):
        campaign_make(owner=requester, code=f"bulk-{n}")
    client = api_for(agent)
    # user perms, group perms, count, page of campaigns with owner, team and spend: 4
    with django_assert_max_num_queries(4):
        response = client.get("/api/v1/campaigns/")
    assert response.json()["count"] == 15


def test_other_team_gets_404_on_detail(api_for, other_requester, campaign):
    assert api_for(other_requester).get(f"/api/v1/campaigns/{campaign.code}/").status_code == 404


def test_own_team_reads_detail(api_for, requester, campaign):
    response = api_for(requester).get(f"/api/v1/campaigns/{campaign.code}/")
    assert response.json()["code"] == campaign.code
    assert "audience_size" in response.json()


def test_patch_changes_the_plan(api_for, requester, campaign):
    etag = api_for(requester).get(f"/api/v1/campaigns/{campaign.code}/")["ETag"]
    response = api_for(requester).patch(
        f"/api/v1/campaigns/{campaign.code}/", {"budget": "123.45"}, format="json", HTTP_IF_MATCH=etag
    )
    assert response.json()["budget"] == 123.45


# Approve ---------------------------------------------------------------------------------------


def test_manager_approves(api_for, manager, campaign):
    response = api_for(manager).post(f"/api/v1/campaigns/{campaign.code}/approve/")
    assert response.status_code == 200
    assert response.json()["status"] in ("approved", "running", "completed")
    assert response.json()["approved_by"] == manager.username


def test_requester_cannot_approve(api_for, requester, campaign):
    response = api_for(requester).post(f"/api/v1/campaigns/{campaign.code}/approve/")
    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "planning"


def test_approving_twice_conflicts(api_for, manager, campaign):
    api_for(manager).post(f"/api/v1/campaigns/{campaign.code}/approve/")
    assert api_for(manager).post(f"/api/v1/campaigns/{campaign.code}/approve/").status_code == 409


# Metrics import and summary --------------------------------------------------------------------


def test_metrics_import_endpoint(api_for, requester, campaign):
    response = api_for(requester).post(
        f"/api/v1/campaigns/{campaign.code}/metrics/import/",
        {"file": upload([HEADER, "2026-06-01,wechat,100,1000,50,10,2,300"])},
        format="multipart",
    )
    assert response.status_code == 200
    assert response.json() == {"imported": 1}


def test_metrics_import_errors_name_row_and_column(api_for, requester, campaign):
    response = api_for(requester).post(
        f"/api/v1/campaigns/{campaign.code}/metrics/import/",
        {"file": upload([HEADER, "2026-06-01,wechat,100,1000,50,10,2,300", "2026-13-01,wechat,1,1,1,1,1,1"])},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"row": 3, "column": "date", "message": "Not a date (use YYYY-MM-DD)."}
    ]
    assert not DailyMetric.objects.exists()


def test_other_team_cannot_import(api_for, other_requester, campaign):
    response = api_for(other_requester).post(
        f"/api/v1/campaigns/{campaign.code}/metrics/import/", {"file": upload([HEADER])}, format="multipart"
    )
    assert response.status_code == 404


def test_summary_shape_and_figures(api_for, requester, campaign):
    metric_make(
        campaign=campaign,
        date=dt.date(2026, 6, 1),
        channel="wechat",
        spend=Decimal("1000"),
        impressions=10000,
        clicks=500,
        leads=50,
        conversions=20,
        revenue=Decimal("3000"),
    )
    metric_make(
        campaign=campaign,
        date=dt.date(2026, 6, 1),
        channel="douyin",
        spend=Decimal("1000"),
        impressions=0,
        clicks=0,
        leads=0,
        conversions=0,
        revenue=Decimal("0"),
    )
    body = api_for(requester).get(f"/api/v1/campaigns/{campaign.code}/summary/").json()
    assert (body["spend"], body["revenue"], body["roi"], body["roas"], body["cac"]) == (
        2000.0,
        3000.0,
        0.5,
        1.5,
        100.0,
    )
    assert (body["ctr"], body["cvr"], body["cost_per_lead"], body["budget_used_pct"]) == (
        0.05,
        0.04,
        40.0,
        0.2,
    )
    douyin = next(c for c in body["by_channel"] if c["channel"] == "douyin")
    assert (douyin["ctr"], douyin["cvr"], douyin["cac"], douyin["roi"]) == (None, None, None, -1.0)
    day = body["by_day"][0]
    assert (day["date"], day["spend"], day["roi"], day["budget_used_pct"]) == (
        "2026-06-01",
        2000.0,
        0.5,
        None,
    )
    assert [s["value"] for s in body["funnel"]] == [10000, 500, 50, 20]


def test_summary_query_count(api_for, requester, campaign, django_assert_max_num_queries):
    for day in range(1, 20):
        metric_make(campaign=campaign, date=dt.date(2026, 6, day), spend=Decimal("10"))
    client = api_for(requester)
    # 2 perms, campaign, totals, by channel, by day: 6, however many days
    with django_assert_max_num_queries(6):
        assert client.get(f"/api/v1/campaigns/{campaign.code}/summary/").status_code == 200


def test_summary_is_404_for_other_team(api_for, other_requester, campaign):
    assert api_for(other_requester).get(f"/api/v1/campaigns/{campaign.code}/summary/").status_code == 404


# A/B tests -------------------------------------------------------------------------------------


def test_ab_test_create_returns_the_contract(api_for, requester, campaign):
    payload = {
        "name": "Banner",
        "variants": [
            {"name": "A", "exposures": 5000, "conversions": 500},
            {"name": "B", "exposures": 5000, "conversions": 600},
        ],
    }
    response = api_for(requester).post(f"/api/v1/campaigns/{campaign.code}/ab-tests/", payload, format="json")
    assert response.status_code == 201
    body = response.json()
    expected_p = stats.chi2_contingency([[500, 4500], [600, 4400]], correction=False)[1]
    assert body["variants"][0]["name"] == "A" and body["variants"][1]["rate"] == 0.12
    assert body["p_value"] == pytest.approx(expected_p)
    assert body["lift"] == pytest.approx(0.2)
    assert len(body["lift_ci"]) == 2 and body["lift_ci"][0] < 0.2 < body["lift_ci"][1]
    assert body["winner"] == "B"


def test_ab_test_below_min_sample_has_no_winner(api_for, requester, campaign):
    payload = {
        "name": "Small",
        "min_sample": 10000,
        "variants": [
            {"name": "A", "exposures": 5000, "conversions": 500},
            {"name": "B", "exposures": 5000, "conversions": 600},
        ],
    }
    body = (
        api_for(requester).post(f"/api/v1/campaigns/{campaign.code}/ab-tests/", payload, format="json").json()
    )
    assert (body["winner"], body["status"], body["more_exposures_needed"]) == (None, "not_significant", 10000)


def test_ab_test_rejects_conversions_above_exposures(api_for, requester, campaign):
    payload = {
        "name": "Bad",
        "variants": [
            {"name": "A", "exposures": 5, "conversions": 6},
            {"name": "B", "exposures": 5, "conversions": 1},
        ],
    }
    response = api_for(requester).post(f"/api/v1/campaigns/{campaign.code}/ab-tests/", payload, format="json")
    assert response.status_code == 400


def test_ab_test_detail(api_for, requester, campaign):
    payload = {
        "name": "T",
        "variants": [
            {"name": "A", "exposures": 10, "conversions": 1},
            {"name": "B", "exposures": 10, "conversions": 2},
        ],
    }
    created = (
        api_for(requester).post(f"/api/v1/campaigns/{campaign.code}/ab-tests/", payload, format="json").json()
    )
    body = api_for(requester).get(f"/api/v1/campaigns/{campaign.code}/ab-tests/{created['id']}/").json()
    assert (body["id"], body["winner"]) == (created["id"], None)


def test_ab_test_detail_hidden_from_other_team(api_for, requester, other_requester, campaign):
    payload = {
        "name": "T",
        "variants": [
            {"name": "A", "exposures": 10, "conversions": 1},
            {"name": "B", "exposures": 10, "conversions": 2},
        ],
    }
    created = (
        api_for(requester).post(f"/api/v1/campaigns/{campaign.code}/ab-tests/", payload, format="json").json()
    )
    assert (
        api_for(other_requester)
        .get(f"/api/v1/campaigns/{campaign.code}/ab-tests/{created['id']}/")
        .status_code
        == 404
    )


def test_ab_test_list_query_count(api_for, requester, campaign, django_assert_max_num_queries):
    client = api_for(requester)
    for n in range(5):
        client.post(
            f"/api/v1/campaigns/{campaign.code}/ab-tests/",
            {
                "name": f"T{n}",
                "variants": [
                    {"name": "A", "exposures": 10, "conversions": 1},
                    {"name": "B", "exposures": 10, "conversions": 2},
                ],
            },
            format="json",
        )
    # campaign, tests, their variants (prefetch): 3 (perms are cached on the forced user)
    with django_assert_max_num_queries(3):
        assert len(client.get(f"/api/v1/campaigns/{campaign.code}/ab-tests/").json()) == 5


# Attribution -----------------------------------------------------------------------------------


def test_touchpoints_and_conversions_import_then_attribution(api_for, requester, campaign):
    client = api_for(requester)
    touches = upload(
        [
            "customer_external_id,occurred_at,channel,utm_source,utm_medium,utm_campaign",
            "c1,2026-06-01T10:00:00+08:00,WeChat,WeChat,social,c618",
            "c1,2026-06-03T10:00:00+08:00,douyin,,,",
        ]
    )
    assert client.post(
        f"/api/v1/campaigns/{campaign.code}/touchpoints/import/", {"file": touches}, format="multipart"
    ).json() == {"imported": 2}
    convs = upload(["customer_external_id,occurred_at,revenue", "c1,2026-06-04T10:00:00+08:00,90"])
    assert client.post(
        f"/api/v1/campaigns/{campaign.code}/conversions/import/", {"file": convs}, format="multipart"
    ).json() == {"imported": 1}
    body = client.get(f"/api/v1/campaigns/{campaign.code}/attribution/?model=linear&lookback_days=30").json()
    assert body["model"] == "linear"
    assert body["channels"] == [
        {"channel": "douyin", "conversions": 0.5, "revenue": 45.0},
        {"channel": "wechat", "conversions": 0.5, "revenue": 45.0},
    ]


def test_touchpoint_import_rejects_bad_time(api_for, requester, campaign):
    bad = upload(["customer_external_id,occurred_at,channel", "c1,yesterday,wechat"])
    response = api_for(requester).post(
        f"/api/v1/campaigns/{campaign.code}/touchpoints/import/", {"file": bad}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["column"] == "occurred_at"


def test_attribution_rejects_unknown_model(api_for, requester, campaign):
    response = api_for(requester).get(f"/api/v1/campaigns/{campaign.code}/attribution/?model=magic")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "model"


def test_attribution_is_404_for_other_team(api_for, other_requester, campaign):
    assert api_for(other_requester).get(f"/api/v1/campaigns/{campaign.code}/attribution/").status_code == 404


# UTM -------------------------------------------------------------------------------------------


def test_utm_builds_and_saves(api_for, requester, campaign):
    response = api_for(requester).post(
        "/api/v1/utm/",
        {
            "code": campaign.code,
            "url": "https://shop.example.com/p?id=1",
            "source": " WeChat ",
            "medium": "Social",
            "content": "Banner",
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (
        body["url"]
        == "https://shop.example.com/p?id=1&utm_source=wechat&utm_medium=social&utm_campaign=c618&utm_content=banner"
    )
    assert (body["campaign"], campaign.utm_links.count()) == ("c618", 1)


def test_utm_for_other_teams_campaign_is_404(api_for, other_requester, campaign):
    response = api_for(other_requester).post(
        "/api/v1/utm/",
        {"code": campaign.code, "url": "https://a.example.com/", "source": "s", "medium": "m"},
        format="json",
    )
    assert response.status_code == 404


def test_list_filters_by_dates(api_for, agent, requester):
    campaign_make(owner=requester, code="june", start_date=dt.date(2026, 6, 1), end_date=dt.date(2026, 6, 30))
    campaign_make(
        owner=requester, code="nov", start_date=dt.date(2026, 11, 1), end_date=dt.date(2026, 11, 11)
    )
    response = api_for(agent).get("/api/v1/campaigns/?date_from=2026-10-01&date_to=2026-12-31")
    assert [c["code"] for c in response.json()["results"]] == ["nov"]


def test_list_rejects_a_bad_date(api_for, agent):
    response = api_for(agent).get("/api/v1/campaigns/?date_from=tomorrow")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "date_from"
