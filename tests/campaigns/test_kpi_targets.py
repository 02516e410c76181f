"""KPI targets as rows (metric, target) on the campaign form (issue 18, item 12): no JSON to type, a
bad row says what is wrong beside it, rates are typed in percent and stored as fractions."""

import pytest

from campaigns.models import Campaign
from tests.campaigns.factories import campaign_make
from tests.conftest import in_english

pytestmark = pytest.mark.django_db

PLAN = {
    "name": "Double 11",
    "code": "d11",
    "budget": "5000",
    "start_date": "2026-11-01",
    "end_date": "2026-11-11",
    "audience_include_mode": "any",
    "kpi_rows": "1",
}


def test_rows_are_saved_as_targets_with_rates_as_fractions(client_for, requester):
    response = client_for(requester).post(
        "/campaigns/new/",
        PLAN | {"kpi_metric": ["conversions", "roi", ""], "kpi_target": ["500", "150", ""]},
    )

    assert response.status_code == 302
    assert Campaign.objects.get(code="d11").kpi_targets == {"conversions": 500, "roi": 1.5}


def test_a_bad_target_is_named_beside_its_row_and_nothing_is_saved(client_for, requester):
    in_english(requester)
    response = client_for(requester).post(
        "/campaigns/new/", PLAN | {"kpi_metric": ["conversions", "revenue"], "kpi_target": ["500", "abc"]}
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert not Campaign.objects.filter(code="d11").exists()
    rows = html.split('class="row g-2 align-items-start mb-2 kpi-row"')
    assert "Enter a number." in rows[2] and "kpi-error" not in rows[1]
    assert 'value="abc"' in rows[2]


@pytest.mark.parametrize(
    ("metrics", "targets", "message"),
    [
        (["roi", "roi"], ["1", "2"], "ROI is already listed above."),
        (["", "roi"], ["5", "2"], "Choose a metric for this target."),
        (["leads"], [""], "Enter a target for this metric."),
        (["leads"], ["-3"], "Enter a number from 0"),
        (["made_up"], ["3"], "Choose a metric from the list."),
    ],
)
def test_each_row_problem_has_a_clear_message(client_for, requester, metrics, targets, message):
    in_english(requester)
    response = client_for(requester).post(
        "/campaigns/new/", PLAN | {"kpi_metric": metrics, "kpi_target": targets}
    )

    assert response.status_code == 422
    assert message in response.content.decode()


def test_the_edit_form_shows_saved_targets_as_rows_in_words(client_for, requester):
    in_english(requester)
    campaign = campaign_make(owner=requester, code="c11", name="Rows", kpi_targets={"roi": 1.5, "old_key": 7})

    html = client_for(requester).get(f"/campaigns/{campaign.code}/edit/").content.decode()

    assert '<option value="roi" data-unit="%" selected>ROI</option>' in html
    assert 'value="150"' in html
    # a key saved before the rows existed stays choosable, so editing does not drop it
    assert '<option value="old_key" data-unit="" selected>old_key</option>' in html
    assert "roi:" not in html
