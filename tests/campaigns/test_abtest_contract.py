"""The A/B result's contract in the API (fields, schema, bad input) and on the A/B page."""

import pytest

from campaigns.models import ABTest
from campaigns.services import ab_test_create

pytestmark = pytest.mark.django_db

THREE = [
    {"name": "control", "exposures": 2000, "conversions": 200},
    {"name": "red", "exposures": 2000, "conversions": 250},
    {"name": "blue", "exposures": 2000, "conversions": 120},
]
COMPARISON_FIELDS = {
    "variant",
    "test",
    "p_value",
    "p_adjusted",
    "lift",
    "lift_ci",
    "relative_lift",
    "relative_lift_ci",
    "significant",
}
NEW_FIELDS = {"test", "comparisons", "winner", "omnibus_p_value", "mde", "power", "sequential"}


def create(client, code: str, **payload) -> tuple[int, dict]:
    response = client.post(f"/api/v1/campaigns/{code}/ab-tests/", payload, format="json")
    return response.status_code, response.json()


# API -------------------------------------------------------------------------------------------


def test_detail_has_the_new_contract(api_for, requester, campaign):
    client = api_for(requester)
    status, created = create(client, campaign.code, name="Hero", min_sample=1000, variants=THREE)
    assert status == 201
    body = client.get(f"/api/v1/campaigns/{campaign.code}/ab-tests/{created['id']}/").json()
    assert NEW_FIELDS <= set(body)
    assert (body["test"], body["winner"], body["sequential"]) == ("z", "red", None)
    assert [c["variant"] for c in body["comparisons"]] == ["red", "blue"]
    red = body["comparisons"][0]
    assert COMPARISON_FIELDS <= set(red)
    # lift is the difference of rates, relative_lift the ratio minus one
    assert red["lift"] == pytest.approx(0.025) and red["relative_lift"] == pytest.approx(0.25)
    assert red["significant"] and red["lift_ci"][0] > 0 and red["relative_lift_ci"][0] > 0
    assert body["omnibus_p_value"] < 0.001


def test_two_variant_fields_keep_their_meaning(api_for, requester, campaign):
    variants = [
        {"name": "A", "exposures": 5000, "conversions": 500},
        {"name": "B", "exposures": 5000, "conversions": 600},
    ]
    _, body = create(api_for(requester), campaign.code, name="AB", variants=variants)
    assert (body["challenger"], body["winner"], body["status"]) == ("B", "B", "winner")
    # top-level lift stays relative, absolute_lift the difference; the same comparison's figures
    assert body["lift"] == pytest.approx(0.2) and body["absolute_lift"] == pytest.approx(0.02)
    assert body["lift_ci"] == body["comparisons"][0]["relative_lift_ci"]
    assert body["p_value"] == body["comparisons"][0]["p_value"]
    assert body["omnibus_p_value"] is None


def test_small_test_says_fisher(api_for, requester, campaign):
    variants = [
        {"name": "A", "exposures": 6, "conversions": 0},
        {"name": "B", "exposures": 6, "conversions": 4},
    ]
    _, body = create(api_for(requester), campaign.code, name="Tiny", min_sample=1, variants=variants)
    assert (body["test"], body["winner"]) == ("fisher", None)


def test_design_gives_the_mde_before_any_exposure(api_for, requester, campaign):
    variants = [
        {"name": "A", "exposures": 0, "conversions": 0},
        {"name": "B", "exposures": 0, "conversions": 0},
    ]
    status, body = create(
        api_for(requester),
        campaign.code,
        name="Planned",
        planned_sample=5000,
        baseline_rate="0.1",
        sequential="msprt",
        variants=variants,
    )
    assert status == 201
    assert (body["planned_sample"], body["baseline_rate"], body["sequential"]) == (5000, 0.1, "msprt")
    assert body["mde"] == pytest.approx(0.1744, abs=1e-3)
    assert body["status"] == "insufficient_data" and body["power"] is None
    test = ABTest.objects.get(pk=body["id"])
    assert (test.planned_sample, str(test.baseline_rate), test.sequential) == (5000, "0.100000", "msprt")


@pytest.mark.parametrize(
    "field,value",
    [
        ("baseline_rate", "NaN"),
        ("baseline_rate", "1.5"),
        ("baseline_rate", 0),
        ("baseline_rate", "0.1234567"),
        ("baseline_rate", "1e400"),
        ("planned_sample", 0),
        ("planned_sample", 2**31),
        ("planned_sample", "many"),
        ("sequential", "bayes"),
    ],
)
def test_bad_design_is_a_400_naming_the_field(api_for, requester, campaign, field, value):
    variants = [
        {"name": "A", "exposures": 10, "conversions": 1},
        {"name": "B", "exposures": 10, "conversions": 2},
    ]
    response = api_for(requester).post(
        f"/api/v1/campaigns/{campaign.code}/ab-tests/",
        {"name": "Bad", "variants": variants, field: value},
        format="json",
    )
    assert response.status_code == 400
    assert field in response.content.decode()


def test_sequential_without_a_baseline_is_a_400_naming_it(api_for, requester, campaign):
    variants = [
        {"name": "A", "exposures": 10, "conversions": 1},
        {"name": "B", "exposures": 10, "conversions": 2},
    ]
    response = api_for(requester).post(
        f"/api/v1/campaigns/{campaign.code}/ab-tests/",
        {"name": "Seq", "variants": variants, "sequential": "msprt"},
        format="json",
    )
    assert response.status_code == 400
    assert "baseline_rate" in response.content.decode()
    assert not ABTest.objects.filter(name="Seq").exists()


def test_schema_documents_every_field(api_for, requester):
    schema = api_for(requester).get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    result = components["ABTestResult"]["properties"]
    assert NEW_FIELDS | {"mde_absolute", "planned_sample", "baseline_rate", "family_alpha"} <= set(result)
    comparison = components["Comparison"]["properties"]
    assert COMPARISON_FIELDS <= set(comparison)
    assert all(comparison[name].get("description") for name in COMPARISON_FIELDS)
    assert all(result[name].get("description") for name in NEW_FIELDS - {"comparisons"})
    request = components["ABTestCreateRequest"]["properties"]
    assert {"planned_sample", "baseline_rate", "sequential"} <= set(request)


# Page ------------------------------------------------------------------------------------------


def test_ab_page_shows_the_verdict_per_comparison(client_for, requester, campaign):
    ab_test_create(campaign=campaign, by=requester, name="Hero", variants=[dict(v) for v in THREE])
    html = client_for(requester).get(f"/campaigns/{campaign.code}/?tab=ab_tests").content.decode()
    assert 'data-ab-status="winner" data-ab-winner="red"' in html
    assert 'data-ab-test-used="z"' in html
    assert 'data-comparison="red" data-significant="true"' in html
    assert 'data-comparison="blue" data-significant="true"' in html
    assert 'data-ab="omnibus"' in html and 'data-ab="mde"' in html and 'data-ab="power"' in html


def test_ab_page_labels_a_sequential_small_test(client_for, requester, campaign):
    ab_test_create(
        campaign=campaign,
        by=requester,
        name="Seq",
        baseline_rate=0.2,
        planned_sample=500,
        sequential="msprt",
        variants=[
            {"name": "A", "exposures": 6, "conversions": 0},
            {"name": "B", "exposures": 6, "conversions": 4},
        ],
    )
    html = client_for(requester).get(f"/campaigns/{campaign.code}/?tab=ab_tests").content.decode()
    assert 'data-ab-sequential="msprt"' in html and 'data-ab-test-used="msprt"' in html


def test_ab_form_takes_the_design_as_a_percentage(client_for, requester, campaign):
    client_for(requester).post(
        f"/campaigns/{campaign.code}/ab-tests/",
        {
            "name": "Form",
            "min_sample": "100",
            "planned_sample": "4000",
            "baseline_rate": "4.5%",
            "sequential": "msprt",
            "variants": "A, 100, 5\nB, 100, 8",
        },
    )
    test = ABTest.objects.get(campaign=campaign, name="Form")
    assert (test.planned_sample, str(test.baseline_rate), test.sequential) == (4000, "0.045000", "msprt")


@pytest.mark.parametrize("rate", ["abc", "0", "100", "NaN", "1.23456"])
def test_ab_form_refuses_a_bad_percentage(client_for, requester, campaign, rate):
    response = client_for(requester).post(
        f"/campaigns/{campaign.code}/ab-tests/",
        {"name": "Bad", "min_sample": "100", "baseline_rate": rate, "variants": "A, 100, 5\nB, 100, 8"},
    )
    assert response.status_code == 302
    assert not ABTest.objects.filter(campaign=campaign, name="Bad").exists()


def test_ab_form_sequential_needs_the_rate(client_for, requester, campaign):
    client_for(requester).post(
        f"/campaigns/{campaign.code}/ab-tests/",
        {"name": "Seq", "min_sample": "100", "sequential": "msprt", "variants": "A, 100, 5\nB, 100, 8"},
    )
    assert not ABTest.objects.filter(campaign=campaign, name="Seq").exists()
