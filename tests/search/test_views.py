"""The global search: a key opens its request (only within reach); words find requests, campaigns,
customers and articles, each scoped to the viewer, customers' personal values masked without view_pii."""

from urllib.parse import quote, quote_plus

import pytest
from django.urls import reverse

from privacy.models import UnmaskedAccess
from tests.campaigns.factories import campaign_make
from tests.conftest import in_english
from tests.crm_tags.factories import customer
from tests.knowledge_base.factories import make_published
from tests.tickets.factories import make_ticket

pytestmark = pytest.mark.django_db
SEARCH = reverse("search:index")
PLANTED_EMAIL = "plant.zhao@secret-mail.example"
PLANTED_PHONE = "13912345678"


def search(client, q: str):
    return client.get(SEARCH, {"q": q})


def without_echo(html: str, typed: str) -> str:
    """The page less the places that repeat what the person typed: the box, the heading and the page's own
    address (the language form's "next")."""
    for echo in (f'value="{typed}"', f"“{typed}”", f"?q={quote_plus(typed)}", f"?q={quote(typed)}"):
        html = html.replace(echo, "")
    return html


# --- jumping to a key ---------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["{key}", "{lower}", "{nodash}", "  {lower}  ", "{spaced}"])
def test_a_key_opens_its_request(client_for, requester, agent, typed):
    ticket = make_ticket(requester)
    number = ticket.key.split("-")[1]
    text = typed.format(key=ticket.key, lower=ticket.key.lower(), nodash=f"mt{number}", spaced=f"MT {number}")
    for person in (requester, agent):
        response = search(client_for(person), text)
        assert response.status_code == 302
        assert response.url == reverse("tickets:detail", args=[ticket.key])


def test_a_key_out_of_reach_looks_like_no_such_request(client_for, requester, other_requester):
    ticket = make_ticket(requester, title="Brand secret launch")
    in_english(other_requester)
    response = search(client_for(other_requester), ticket.key)
    html = response.content.decode()
    assert response.status_code == 200
    assert ticket.key not in without_echo(html, ticket.key)
    assert "Brand secret launch" not in html
    assert "Nothing matches this search" in html
    missing = search(client_for(other_requester), "MT-999999")
    assert missing.status_code == 200 and "Nothing matches this search" in missing.content.decode()


# --- grouped results ----------------------------------------------------------------------------------


def test_results_are_grouped(client_for, requester, agent, manager):
    ticket = make_ticket(requester, title="Spring banner broken")
    campaign = campaign_make(owner=requester, name="Spring banner sale")
    article = make_published(agent, manager, title="How to fix a banner", body="Resize the banner.")
    client = client_for(agent)
    response = search(client, "banner")
    html = response.content.decode()
    assert response.status_code == 200
    results = response.context["results"]
    assert [t.key for t in results.tickets] == [ticket.key]
    assert [c.code for c in results.campaigns] == [campaign.code]
    assert [r["article"].pk for r in results.articles] == [article.pk]
    for section in ("search-requests", "search-campaigns", "search-customers", "search-articles"):
        assert f'id="{section}"' in html
    # "see all" for support staff is the queue over every status
    assert "/requests/queue/?status=all&amp;q=banner" in html


def test_a_customer_is_found_by_external_id(client_for, agent):
    person = customer(external_id="VIP-0042")
    results = search(client_for(agent), "VIP-0042").context["results"]
    assert [c.pk for c in results.customers] == [person.pk]


def test_requesters_see_only_their_teams_requests_and_campaigns(client_for, requester, other_requester):
    mine = make_ticket(requester, title="Banner mine")
    theirs = make_ticket(other_requester, title="Banner theirs")
    my_campaign = campaign_make(owner=requester, name="Banner week")
    their_campaign = campaign_make(owner=other_requester, name="Banner month")
    response = search(client_for(requester), "banner")
    html = response.content.decode()
    results = response.context["results"]
    assert [t.key for t in results.tickets] == [mine.key]
    assert [c.code for c in results.campaigns] == [my_campaign.code]
    assert theirs.key not in html and "Banner theirs" not in html
    assert their_campaign.name not in html
    # "see all" for a requester is their team's list
    assert "/requests/?q=banner" in html


def test_requesters_do_not_find_draft_articles(client_for, requester, agent):
    from tests.knowledge_base.factories import make_article

    make_article(agent, title="Banner draft notes")
    results = search(client_for(requester), "banner").context["results"]
    assert results.articles == []


# --- personal data ------------------------------------------------------------------------------------


@pytest.fixture
def planted():
    return customer(external_id="C-PLANT", name="赵敏", email=PLANTED_EMAIL, phone=PLANTED_PHONE)


@pytest.mark.parametrize("role", ["requester", "agent"])
@pytest.mark.parametrize("typed", [PLANTED_EMAIL, PLANTED_PHONE, "secret-mail", "赵敏"])
def test_personal_values_neither_match_nor_show_without_view_pii(make_user, client_for, planted, role, typed):
    viewer = make_user("viewer", role=role)
    response = search(client_for(viewer), typed)
    body = response.content.decode()
    assert response.status_code == 200
    assert response.context["results"].customers == []
    assert "C-PLANT" not in body
    # the box echoes what was typed; nothing else on the page may hold the planted values
    body = without_echo(body, typed)
    assert PLANTED_EMAIL not in body and PLANTED_PHONE not in body and "赵敏" not in body


def test_a_customer_found_by_id_shows_masked_values_without_view_pii(client_for, agent, planted):
    response = search(client_for(agent), "C-PLANT")
    body = response.content.decode()
    assert "C-PLANT" in body
    assert PLANTED_EMAIL not in body and PLANTED_PHONE not in body and "赵敏" not in body
    assert "p***@secret-mail.example" in body and "139****5678" in body
    assert not UnmaskedAccess.objects.exists()


def test_view_pii_finds_by_email_and_the_read_is_logged(client_for, manager, planted):
    response = search(client_for(manager), PLANTED_EMAIL)
    body = without_echo(response.content.decode(), PLANTED_EMAIL)
    assert [c.pk for c in response.context["results"].customers] == [planted.pk]
    assert PLANTED_EMAIL in body and PLANTED_PHONE in body
    assert UnmaskedAccess.objects.filter(user=manager, rows=1).exists()
    assert "no-store" in response["Cache-Control"]


# --- access, input, cost ------------------------------------------------------------------------------


def test_search_needs_login(client):
    response = client.get(SEARCH, {"q": "banner"})
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_search_is_get_only(client_for, requester):
    assert client_for(requester).post(SEARCH, {"q": "x"}).status_code == 405


@pytest.mark.parametrize(
    "typed", ["", "   ", "x" * 5000, "a\x01b", "%' OR 1=1 --", "MT-", "-1", "MT-99999999999999"]
)
def test_odd_input_never_fails(client_for, agent, typed):
    in_english(agent)
    response = search(client_for(agent), typed)
    assert response.status_code == 200
    assert len(response.context["global_q"]) <= 200


def test_empty_search_explains_what_to_type(client_for, requester):
    in_english(requester)
    html = client_for(requester).get(SEARCH).content.decode()
    assert "Type what you are looking for" in html


def test_the_top_bar_searches_everything(client_for, requester):
    html = client_for(requester).get(reverse("tickets:my_requests")).content.decode()
    assert f'action="{SEARCH}"' in html and 'id="global-search"' in html


def test_search_query_count(client_for, requester, agent, manager, django_assert_max_num_queries):
    for n in range(8):
        make_ticket(requester, title=f"Banner {n}")
        campaign_make(owner=requester, name=f"Banner {n}")
        customer(external_id=f"Banner-{n}")
    make_published(agent, manager, title="Banner sizes", body="Banner sizes.")
    customer(external_id="banner")
    client = client_for(manager)
    # session, user; requests (team joined), campaigns (spend subquery), customers, the unmasked-read log
    # entry (view_pii); articles: stems, count, ranked rows; nav unread count, the user menu's team
    # (no key probe: "banner" is not a key; permissions come from the cached user access)
    with django_assert_max_num_queries(11):
        response = search(client, "banner")
    results = response.context["results"]
    assert len(results.tickets) == 5 and len(results.campaigns) == 5 and len(results.customers) == 1


def test_what_was_typed_is_shown_escaped(client_for, agent):
    html = search(client_for(agent), '<script>alert("x")</script>').content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
