"""The consent panel of a customer page: loaded by htmx, states as badges, history, a form for staff."""

import pytest
from django.urls import reverse

from privacy import consent
from privacy.models import Consent, ConsentChange
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def kim(db):
    return factories.customer(external_id="KIM1")


def _panel_url(external_id: str = "KIM1") -> str:
    return reverse("privacy:customer_consent", args=[external_id])


def _set_url(external_id: str = "KIM1") -> str:
    return reverse("privacy:customer_consent_set", args=[external_id])


def test_customer_page_loads_the_consent_panel_by_htmx(client_for, requester, kim):
    # when the customer page is opened
    html = client_for(requester).get(reverse("crm_tags:customer_detail", args=["KIM1"])).content.decode()
    # then it holds the panel that fetches its content on load, with a busy indicator
    assert 'id="consent-panel"' in html
    assert f'hx-get="{_panel_url()}"' in html
    assert 'hx-trigger="load"' in html
    assert "htmx-indicator" in html


def test_panel_shows_states_source_and_history_without_a_form_for_requesters(
    client_for, requester, agent, kim
):
    # given the customer withdrew personalisation through the API
    consent.consent_set(customer=kim, states={"personalisation": "withdrawn"}, source="api", by=agent)
    # when a requester opens the panel
    response = client_for(requester).get(_panel_url(), **HTMX)
    html = response.content.decode()
    # then every purpose has a state badge, the change is listed, and there is nothing to edit
    assert response.status_code == 200
    assert 'id="consent-state-personalisation" data-state="withdrawn">Withdrawn<' in html
    assert 'id="consent-state-marketing_email" data-state="unknown">Unknown<' in html
    assert 'id="consent-history"' in html and "Personalisation: Unknown → Withdrawn" in html
    assert "<select" not in html and "Save consent" not in html


def test_panel_offers_a_labelled_form_per_purpose_to_agents(client_for, agent, kim):
    html = client_for(agent).get(_panel_url(), **HTMX).content.decode()
    for purpose in consent.PURPOSES:
        assert f'name="{purpose}" id="consent-input-{purpose}"' in html
        assert f'<label class="small text-body-secondary" for="consent-input-{purpose}">' in html
    assert html.count("Save consent") == len(consent.PURPOSES)
    assert f'hx-post="{_set_url()}"' in html


def test_an_agent_sets_consent_from_the_panel(client_for, agent, kim):
    # when an agent withdraws personalisation from the panel
    response = client_for(agent).post(_set_url(), {"personalisation": "withdrawn"}, **HTMX)
    # then the re-rendered panel shows it, recorded with source "web"
    assert response.status_code == 200
    assert 'id="consent-state-personalisation" data-state="withdrawn"' in response.content.decode()
    row = Consent.objects.get(customer=kim, purpose="personalisation")
    assert (row.state, row.source) == ("withdrawn", "web")
    assert ConsentChange.objects.get(customer=kim).by_id == agent.pk


def test_without_htmx_the_form_redirects_to_the_customer_page(client_for, agent, kim):
    response = client_for(agent).post(_set_url(), {"analytics": "granted"})
    assert response.status_code == 302
    assert response["Location"] == reverse("crm_tags:customer_detail", args=["KIM1"])
    assert Consent.objects.get(customer=kim).state == "granted"


def test_a_bad_state_re_renders_the_panel_with_an_error(client_for, agent, kim):
    response = client_for(agent).post(_set_url(), {"analytics": "sometimes"}, **HTMX)
    assert response.status_code == 422
    assert 'id="consent-errors"' in response.content.decode()
    assert not Consent.objects.exists()


def test_a_requester_may_not_post_consent(client_for, requester, kim):
    response = client_for(requester).post(_set_url(), {"personalisation": "withdrawn"}, **HTMX)
    assert response.status_code == 403
    assert not Consent.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_customer_answers_404(client_for, agent, method):
    url = _panel_url("NOBODY") if method == "get" else _set_url("NOBODY")
    response = getattr(client_for(agent), method)(url, {"analytics": "granted"}, **HTMX)
    assert response.status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, kim):
    response = client.post(_set_url(), {"analytics": "granted"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert not Consent.objects.exists()


def test_panel_query_count(client_for, agent, kim, django_assert_max_num_queries):
    # given a customer with many changes (the panel lists the latest 20)
    for index in range(30):
        state = "granted" if index % 2 else "withdrawn"
        consent.consent_set(customer=kim, states={p: state for p in consent.PURPOSES}, source="api", by=agent)
    client = client_for(agent)
    # when the panel is loaded: (1) session, (2) user, (3) customer, (4) consent rows, (5) history with
    # the people who made the changes, (6) the unread-notification count of the layout's context
    with django_assert_max_num_queries(6):
        response = client.get(_panel_url(), **HTMX)
    assert response.content.decode().count("<li>") == 20
