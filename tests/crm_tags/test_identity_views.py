"""Identity on pages: the customer's identifiers and merge history panel with unmerge, and the possible
duplicates list with its merge button."""

from datetime import date

import pytest
from django.urls import reverse

from crm_tags.identity import customers_merge
from crm_tags.models import Customer, CustomerIdentifier, CustomerMerge
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

EMAIL, PHONE = "planted.person@example.com", "13912345678"


@pytest.fixture
def merged(manager):
    older = factories.customer(external_id="OLD1", email=EMAIL, phone=PHONE)
    CustomerIdentifier.objects.create(customer=older, kind="email", value=EMAIL)
    CustomerIdentifier.objects.create(customer=older, kind="phone", value="+86" + PHONE)
    newer = factories.customer(external_id="NEW1")
    return customers_merge(survivor=older, loser=newer, by=manager, rebuild=False)


def _panel(client, external_id="OLD1"):
    return client.get(reverse("crm_tags:customer_identity", args=[external_id]))


# --- the panel -------------------------------------------------------------------------------------


def test_the_customer_page_loads_the_identity_panel(client_for, agent, merged):
    html = client_for(agent).get(reverse("crm_tags:customer_detail", args=["OLD1"])).content.decode()
    assert reverse("crm_tags:customer_identity", args=["OLD1"]) in html


def test_the_panel_shows_identifiers_masked_without_view_pii(client_for, agent, merged):
    response = _panel(client_for(agent))
    assert response.status_code == 200
    html = response.content.decode()
    assert EMAIL not in html and PHONE not in html
    assert "p***@example.com" in html and "NEW1" in html
    assert 'id="unmerge-' not in html  # agents may not unmerge


def test_the_panel_shows_identifiers_to_a_viewer_with_view_pii(client_for, manager, merged):
    html = _panel(client_for(manager)).content.decode()
    assert EMAIL in html and "+86" + PHONE in html
    assert f'id="unmerge-{merged.pk}"' in html


def test_the_panel_is_a_404_for_an_unknown_customer(client_for, agent):
    assert _panel(client_for(agent), "NOPE").status_code == 404


def test_the_panel_needs_a_login(client, merged):
    assert _panel(client).status_code == 302


def test_a_manager_unmerges_from_the_panel(client_for, manager, merged):
    response = client_for(manager).post(
        reverse("crm_tags:customer_unmerge", args=["OLD1"]), {"merge_id": merged.pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert Customer.objects.filter(external_id="NEW1").exists()
    assert CustomerMerge.objects.get(pk=merged.pk).unmerged_at is not None
    assert f'id="unmerge-{merged.pk}"' not in response.content.decode()


def test_an_agent_may_not_unmerge(client_for, agent, merged):
    response = client_for(agent).post(
        reverse("crm_tags:customer_unmerge", args=["OLD1"]), {"merge_id": merged.pk}
    )
    assert response.status_code == 403
    assert not Customer.objects.filter(external_id="NEW1").exists()


@pytest.mark.parametrize(("merge_id", "message"), [("x", "whole number"), ("999999", "No merge")])
def test_a_bad_unmerge_says_what_is_wrong(client_for, manager, merged, merge_id, message):
    response = client_for(manager).post(
        reverse("crm_tags:customer_unmerge", args=["OLD1"]), {"merge_id": merge_id}
    )
    assert response.status_code == 422
    assert message in response.content.decode()


# --- possible duplicates ---------------------------------------------------------------------------


@pytest.fixture
def twins(db):
    born = date(1990, 5, 1)
    first = factories.customer(
        external_id="T1", name="Li Lei", city="Hangzhou", birth_date=born, email=EMAIL, phone=PHONE
    )
    second = factories.customer(external_id="T2", name="Li Lei", city="Hangzhou", birth_date=born)
    # the same name, city and birth date but a shared identifier: not "possible", already one person
    factories.customer(
        external_id="S1", name="Han Mei", city="Xi'an", birth_date=born, email="han@example.com"
    )
    factories.customer(
        external_id="S2", name="Han Mei", city="Xi'an", birth_date=born, email="HAN@example.com"
    )
    return first, second


def test_an_agent_sees_possible_duplicates_masked(client_for, agent, twins):
    response = client_for(agent).get(reverse("crm_tags:duplicates"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "T1" in html and "T2" in html and "S1" not in html
    assert EMAIL not in html and PHONE not in html and "Li Lei" not in html
    assert 'id="merge-T2"' not in html


def test_a_requester_may_not_see_possible_duplicates(client_for, requester, twins):
    assert client_for(requester).get(reverse("crm_tags:duplicates")).status_code == 403


def test_the_duplicates_list_reads_a_bounded_number_of_queries(
    client_for, manager, django_assert_max_num_queries
):
    for n in range(10):
        for k in range(2):
            factories.customer(
                external_id=f"D{n}-{k}", name=f"Twin {n}", city="Wuhan", birth_date=date(1990, 1, 1 + n)
            )
    client = client_for(manager)
    # session, user, groups (1), customers (1), identifiers (1), unmasked-read log (1-2), permissions
    with django_assert_max_num_queries(14):
        response = client.get(reverse("crm_tags:duplicates"))
    assert response.content.decode().count("card mb-3 duplicate-group") == 10


def test_a_manager_merges_a_possible_duplicate(client_for, manager, twins):
    response = client_for(manager).post(reverse("crm_tags:duplicates_merge"), {"into": "T1", "source": "T2"})
    assert response.status_code == 302
    assert not Customer.objects.filter(external_id="T2").exists()
    assert CustomerMerge.objects.get().merged_external_id == "T2"


def test_an_agent_may_not_merge_a_possible_duplicate(client_for, agent, twins):
    response = client_for(agent).post(reverse("crm_tags:duplicates_merge"), {"into": "T1", "source": "T2"})
    assert response.status_code == 403
    assert Customer.objects.filter(external_id="T2").exists()


def test_merging_a_customer_that_does_not_exist_says_so(client_for, manager, twins):
    response = client_for(manager).post(
        reverse("crm_tags:duplicates_merge"), {"into": "T1", "source": "GONE"}, follow=True
    )
    assert "Choose two customers that exist" in response.content.decode()
    assert Customer.objects.filter(external_id="T2").exists()


def test_an_admin_adds_identifier_kinds_in_the_admin_and_an_agent_may_not(client, make_user):
    # "plus kinds an admin adds" (issue 19): the admin role holds the identity settings' model rights
    admin = make_user("ida", role="admin", team="MarTech support")
    agent = make_user("aga", role="agent", team="MarTech support")
    url = "/admin/crm_tags/identifierkind/add/"
    client.force_login(admin)
    assert client.get(url).status_code == 200
    assert client.get("/admin/crm_tags/blockedidentifier/").status_code == 200
    client.force_login(agent)
    assert client.get(url).status_code in (302, 403)
