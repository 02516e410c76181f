"""The queue's sortable columns, page size and CSV export; the search box on "My team's requests"."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import in_english
from tests.tickets.factories import force_status, make_ticket
from tickets.models import SavedView, Ticket

S = Ticket.Status
pytestmark = pytest.mark.django_db
QUEUE = reverse("tickets:queue")
EXPORT = reverse("tickets:queue_export")
MINE = reverse("tickets:my_requests")


def keys_of(response) -> list[str]:
    return [t.key for t in response.context["page"].object_list]


def export_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def three(requester, agent):
    """Three open tickets with distinct titles, urgencies and update times."""
    b = make_ticket(requester, title="Banner", urgency="planned")
    a = make_ticket(requester, title="Apple promo", urgency="urgent")
    c = make_ticket(requester, title="Coupon", urgency="routine")
    now = timezone.now()
    for ticket, hours in ((b, 3), (a, 1), (c, 2)):
        Ticket.objects.filter(pk=ticket.pk).update(updated_at=now - timedelta(hours=hours))
    return a, b, c


# --- sorting ------------------------------------------------------------------------------------------


def test_queue_sorts_by_title_both_ways(client_for, agent, three):
    a, b, c = three
    client = client_for(agent)
    assert keys_of(client.get(QUEUE + "?sort=title")) == [a.key, b.key, c.key]
    assert keys_of(client.get(QUEUE + "?sort=-title")) == [c.key, b.key, a.key]


def test_queue_sorts_by_priority_most_urgent_first(client_for, agent, three):
    a, b, c = three
    assert keys_of(client_for(agent).get(QUEUE + "?sort=priority")) == [a.key, c.key, b.key]
    assert keys_of(client_for(agent).get(QUEUE + "?sort=-priority")) == [b.key, c.key, a.key]


def test_queue_sorts_by_updated_and_key(client_for, agent, three):
    a, b, c = three
    client = client_for(agent)
    assert keys_of(client.get(QUEUE + "?sort=-updated")) == [a.key, c.key, b.key]
    assert keys_of(client.get(QUEUE + "?sort=key")) == [b.key, a.key, c.key]


def test_queue_sorts_by_status_in_workflow_order(client_for, requester, agent):
    testing = force_status(make_ticket(requester), S.TESTING)
    new = make_ticket(requester)
    analysis = force_status(make_ticket(requester), S.ANALYSIS)
    assert keys_of(client_for(agent).get(QUEUE + "?sort=status")) == [new.key, analysis.key, testing.key]


def test_sla_due_descending_keeps_tickets_without_a_deadline_last(client_for, requester, agent):
    urgent, planned = make_ticket(requester, urgency="urgent"), make_ticket(requester, urgency="planned")
    waiting = make_ticket(requester)
    Ticket.objects.filter(pk=waiting.pk).update(sla_due=None)
    assert keys_of(client_for(agent).get(QUEUE + "?sort=-sla_due")) == [planned.key, urgent.key, waiting.key]


@pytest.mark.parametrize("bad", ["password", "-", "--title", "title;drop", "x" * 5000, "requester__password"])
def test_a_bad_sort_is_ignored(client_for, requester, agent, bad):
    planned, urgent = make_ticket(requester, urgency="planned"), make_ticket(requester, urgency="urgent")
    response = client_for(agent).get(QUEUE, {"sort": bad})
    assert response.status_code == 200
    assert keys_of(response) == [urgent.key, planned.key]  # the default: next SLA deadline first


def test_headers_show_the_order_and_toggle_it(client_for, agent, three):
    html = client_for(agent).get(QUEUE + "?sort=title&urgency=urgent").content.decode()
    assert 'aria-sort="ascending"><a class="mt-sort' in html
    title_header = html.split('data-sort="title"')[0].rsplit("<th", 1)[1]
    assert 'aria-sort="ascending"' in title_header and "sort=-title" in title_header
    assert "urgency=urgent" in title_header  # the filters stay
    assert html.count("aria-sort=") == 1


def test_default_order_is_shown_on_the_due_column(client_for, agent, three):
    html = client_for(agent).get(QUEUE).content.decode()
    due_header = html.split('data-sort="sla_due"')[0].rsplit("<th", 1)[1]
    assert 'aria-sort="ascending"' in due_header and "sort=-sla_due" in due_header


def test_sort_stays_in_the_filter_form_for_htmx_and_saved_views(client_for, agent, three):
    response = client_for(agent).get(
        QUEUE + "?sort=-updated&per_page=25", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="queue-results"
    )
    html = response.content.decode()
    assert '<input type="hidden" name="sort" value="-updated" form="queue-filters"' in html
    assert "sort=-updated" in html and "per_page=25" in html  # the export link carries both


def test_saved_view_keeps_sort_and_page_size(client_for, agent, three):
    client = client_for(agent)
    response = client.post(
        reverse("tickets:saved_view_save"), {"name": "Mine", "query": "status=open&sort=-updated&per_page=25"}
    )
    assert response.status_code == 302 and "sort=-updated" in response.url and "per_page=25" in response.url
    assert SavedView.objects.get(name="Mine").query == "status=open&sort=-updated&per_page=25"
    page = client.get(response.url)
    assert keys_of(page) == [three[0].key, three[2].key, three[1].key]
    assert page.context["per_page"] == 25


# --- page size ----------------------------------------------------------------------------------------


def test_page_size_choices(client_for, requester, agent):
    for n in range(30):
        make_ticket(requester, title=f"R{n}")
    client = client_for(agent)
    assert len(client.get(QUEUE + "?per_page=25").context["page"].object_list) == 25
    assert len(client.get(QUEUE).context["page"].object_list) == 30  # 50 by default


@pytest.mark.parametrize("bad", ["1000000", "0", "-5", "abc", "26", "1e9"])
def test_page_size_is_bounded(client_for, requester, agent, bad):
    make_ticket(requester)
    response = client_for(agent).get(QUEUE, {"per_page": bad})
    assert response.status_code == 200
    assert response.context["page"].paginator.per_page == 50


# --- CSV export ---------------------------------------------------------------------------------------


def test_export_is_exactly_the_current_filter_and_order(client_for, agent, three):
    a, b, c = three
    closed = force_status(make_ticket(three[0].requester, title="Old", urgency="urgent"), S.CLOSED)
    response = client_for(agent).get(EXPORT + "?sort=-title&urgency=urgent&urgency=routine")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = export_rows(response)
    assert rows[0][:3] == ["key", "title", "status"]
    assert [row[0] for row in rows[1:]] == [c.key, a.key]  # planned b and the closed one are filtered out
    assert closed.key not in {row[0] for row in rows}


def test_export_is_every_page_not_just_one(client_for, requester, agent):
    for n in range(30):
        make_ticket(requester, title=f"R{n}")
    rows = export_rows(client_for(agent).get(EXPORT + "?per_page=25&page=2"))
    assert len(rows) == 31


def test_export_neutralises_formulas(client_for, requester, agent):
    make_ticket(requester, title='=HYPERLINK("http://evil.example","x")')
    rows = export_rows(client_for(agent).get(EXPORT))
    assert rows[1][1].startswith("'=")


def test_export_denied_to_requesters_and_anonymous(client, client_for, requester, three):
    assert client_for(requester).get(EXPORT).status_code == 403
    response = client.get(EXPORT)
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_export_with_bad_parameters_never_fails(client_for, agent, three):
    response = client_for(agent).get(EXPORT, {"sort": "bogus", "team": "x", "created_from": "2026-13-45"})
    assert response.status_code == 200
    assert len(export_rows(response)) == 4


def test_queue_denied_to_requesters(client_for, requester):
    assert client_for(requester).get(QUEUE + "?sort=title").status_code == 403


def test_sorted_queue_query_count(client_for, requester, agent, django_assert_max_num_queries):
    for n in range(15):
        make_ticket(requester, title=f"R{n}")
    client = client_for(agent)
    # as the default queue (test_views.test_queue_query_count): sorting adds no query
    with django_assert_max_num_queries(16):
        response = client.get(QUEUE + "?sort=-priority&per_page=100")
    assert response.content.decode().count("data-key=") == 15


def test_export_query_count(client_for, requester, agent, django_assert_max_num_queries):
    for n in range(15):
        make_ticket(requester, title=f"R{n}")
    client = client_for(agent)
    # session, user, perms; the rows with team, requester and assignee joined (one server-side cursor)
    with django_assert_max_num_queries(8):
        rows = export_rows(client.get(EXPORT))
    assert len(rows) == 16


# --- "My team's requests" search -------------------------------------------------------------------


def test_my_requests_search_by_title_key_and_description(client_for, requester, team_mate):
    banner = make_ticket(requester, title="Banner too wide", description="on the home page")
    coupon = make_ticket(team_mate, title="Coupon", description="the checkout banner is fine")
    other = make_ticket(requester, title="Report", description="monthly")
    client = client_for(requester)
    assert set(keys_of(client.get(MINE + "?q=banner"))) == {banner.key, coupon.key}
    assert keys_of(client.get(MINE + "?q=" + other.key.lower().replace("-", ""))) == [other.key]
    assert keys_of(client.get(MINE + "?q=" + other.key.split("-")[1])) == [other.key]
    assert keys_of(client.get(MINE + "?q=HOME PAGE")) == [banner.key]


def test_my_requests_search_never_reaches_another_team(client_for, requester, other_requester):
    theirs = make_ticket(other_requester, title="Secret banner")
    client = client_for(requester)
    assert keys_of(client.get(MINE + "?q=banner")) == []
    assert keys_of(client.get(MINE + "?q=" + theirs.key)) == []


def test_my_requests_search_keeps_the_chip_and_answers_htmx_with_the_table(client_for, requester):
    waiting = force_status(make_ticket(requester, title="Banner A"), S.AWAITING_ACCEPTANCE)
    make_ticket(requester, title="Banner B")
    response = client_for(requester).get(MINE + "?chip=waiting&q=banner", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert keys_of(response) == [waiting.key]
    assert 'id="requests-table"' in html and "<html" not in html


def test_my_requests_search_with_no_match_says_so(client_for, requester):
    in_english(requester)
    make_ticket(requester, title="Banner")
    html = client_for(requester).get(MINE + "?q=nothing-like-this").content.decode()
    assert "No request matches this search" in html


def test_my_requests_pages_keep_the_search(client_for, requester):
    for n in range(30):
        make_ticket(requester, title=f"Banner {n}")
    html = client_for(requester).get(MINE + "?q=banner").content.decode()
    assert "q=banner&amp;page=2" in html or "q=banner&page=2" in html


def test_my_requests_search_box_is_there(client_for, requester):
    html = client_for(requester).get(MINE + "?q=abc").content.decode()
    assert 'name="q" value="abc"' in html and 'hx-target="#my-requests"' in html


def test_my_requests_search_query_count(client_for, requester, django_assert_max_num_queries):
    for n in range(10):
        make_ticket(requester, title=f"Banner {n}")
    client = client_for(requester)
    # as without a search (test_views.test_my_requests_query_count)
    with django_assert_max_num_queries(12):
        response = client.get(MINE + "?q=banner")
    assert response.content.decode().count("data-key=") == 10


def test_my_requests_needs_login(client):
    response = client.get(MINE + "?q=banner")
    assert response.status_code == 302 and "/accounts/login/" in response.url
