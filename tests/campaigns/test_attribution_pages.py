"""The attribution endpoint and tab: the new models, bounded parameters, permissions, query counts."""

import datetime as dt
from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator

from campaigns.models import Conversion, Touchpoint

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def journeys(campaign):
    """c1: wechat (14 days before), douyin (7 days), email (same day), then buys 100.00."""
    Touchpoint.objects.bulk_create(
        Touchpoint(
            campaign=campaign, customer_external_id="c1", occurred_at=T0 + dt.timedelta(days=d), channel=ch
        )
        for d, ch in ((0, "wechat"), (7, "douyin"), (14, "email"))
    )
    Conversion.objects.create(
        campaign=campaign,
        customer_external_id="c1",
        occurred_at=T0 + dt.timedelta(days=14),
        revenue=Decimal("100"),
    )
    return campaign


def url(campaign, query: str = "") -> str:
    return f"/api/v1/campaigns/{campaign.code}/attribution/{query}"


def by_channel(body) -> dict[str, tuple[float, float]]:
    return {r["channel"]: (r["conversions"], r["revenue"]) for r in body["channels"]}


# API -------------------------------------------------------------------------------------------


def test_position_based_by_the_api(api_for, requester, journeys):
    body = api_for(requester).get(url(journeys, "?model=position_based")).json()
    assert by_channel(body) == {"wechat": (0.4, 40.0), "douyin": (0.2, 20.0), "email": (0.4, 40.0)}
    assert body["attributed"] == {"conversions": 1, "revenue": 100.0}
    assert body["half_life_days"] is None


def test_time_decay_by_the_api_with_its_half_life(api_for, requester, journeys):
    # ages 14, 7, 0 days with half-life 7: weights 1/4, 1/2, 1 over 7/4 -> 1/7, 2/7, 4/7
    body = api_for(requester).get(url(journeys, "?model=time_decay&half_life_days=7")).json()
    assert body["half_life_days"] == 7
    assert by_channel(body) == {
        "email": (0.571429, 57.14),
        "douyin": (0.285714, 28.57),
        "wechat": (0.142857, 14.29),
    }


def test_time_decay_half_life_defaults_to_seven_days(api_for, requester, journeys):
    assert api_for(requester).get(url(journeys, "?model=time_decay")).json()["half_life_days"] == 7


@pytest.mark.parametrize("model", ["first_touch", "last_touch", "linear"])
def test_existing_model_names_still_work(api_for, requester, journeys, model):
    body = api_for(requester).get(url(journeys, f"?model={model}")).json()
    assert body["model"] == model
    assert sum(Decimal(str(r["revenue"])) for r in body["channels"]) == Decimal("100")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?model=time_decay&half_life_days=0", "half_life_days"),
        ("?model=time_decay&half_life_days=366", "half_life_days"),
        ("?model=time_decay&half_life_days=7.5", "half_life_days"),
        ("?model=time_decay&half_life_days=%C2%B2", "half_life_days"),
        ("?model=time_decay&half_life_days=NaN", "half_life_days"),
        ("?model=time_decay&half_life_days=1&half_life_days=2", "half_life_days"),
        ("?model=u_shaped", "model"),
        ("?lookback_days=0", "lookback_days"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(api_for, requester, journeys, query, field):
    response = api_for(requester).get(url(journeys, query))
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_attribution_api_is_denied_to_another_team(api_for, other_requester, journeys):
    assert api_for(other_requester).get(url(journeys, "?model=time_decay")).status_code == 404


def test_attribution_api_is_allowed_to_support_staff(api_for, agent, journeys):
    assert api_for(agent).get(url(journeys, "?model=position_based")).status_code == 200


def test_attribution_api_refuses_anonymous(api_for, journeys):
    assert api_for(None).get(url(journeys, "?model=time_decay")).status_code in (401, 403)


def test_attribution_api_query_count_does_not_grow_with_conversions(
    api_for, requester, journeys, django_assert_max_num_queries
):
    Conversion.objects.bulk_create(
        Conversion(
            campaign=journeys, customer_external_id="c1", occurred_at=T0 + dt.timedelta(days=14, hours=h)
        )
        for h in range(1, 30)
    )
    client = api_for(requester)
    client.get(url(journeys))  # the viewer's permissions are loaded once and cached on the forced user
    # the campaign (scoped to the viewer), the credits per channel, the totals
    with django_assert_max_num_queries(3):
        assert client.get(url(journeys, "?model=time_decay")).status_code == 200


def test_schema_documents_the_models_and_the_half_life():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/campaigns/{code}/attribution/"]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert {"position_based", "time_decay"} <= set(parameters["model"]["enum"])
    assert parameters["half_life_days"] == {"type": "integer", "minimum": 1, "maximum": 365, "default": 7}
    properties = schema["components"]["schemas"]["Attribution"]["properties"]
    assert {"half_life_days", "attributed"} <= set(properties)


# The tab ---------------------------------------------------------------------------------------


def test_tab_shows_position_based_credits_and_the_total(client_for, requester, journeys):
    html = (
        client_for(requester).get(f"/campaigns/{journeys.code}/?tab=attribution&model=position_based").content
    )
    html = html.decode()
    assert 'value="position_based" selected' in html
    assert 'id="attribution-total"' in html
    assert "0.40" in html and "0.20" in html


def test_tab_time_decay_keeps_the_half_life_typed(client_for, requester, journeys):
    response = client_for(requester).get(
        f"/campaigns/{journeys.code}/?tab=attribution&model=time_decay&half_life_days=14"
    )
    assert response.status_code == 200
    assert 'name="half_life_days" value="14"' in response.content.decode()


def test_tab_opens_with_the_defaults(client_for, requester, journeys):
    html = client_for(requester).get(f"/campaigns/{journeys.code}/?tab=attribution").content.decode()
    assert 'name="lookback_days" value="30"' in html and 'name="half_life_days" value="7"' in html


@pytest.mark.parametrize(
    ("query", "field"),
    [("half_life_days=0", "half_life_days"), ("lookback_days=%C2%B2", "lookback_days"), ("model=x", "model")],
)
def test_tab_names_a_bad_parameter_under_its_field(client_for, requester, journeys, query, field):
    response = client_for(requester).get(f"/campaigns/{journeys.code}/?tab=attribution&{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert f'data-error-for="{field}"' in html
    assert 'id="attribution-table"' not in html


def test_tab_is_404_for_another_team(client_for, other_requester, journeys):
    response = client_for(other_requester).get(
        f"/campaigns/{journeys.code}/?tab=attribution&model=time_decay"
    )
    assert response.status_code == 404
