"""Who may open which landing page: anonymous → login, each role its allowed sections only."""

import pytest
from django.urls import reverse

LANDING_PAGES = {
    "tickets:my_requests": {"requester", "agent", "manager", "admin"},
    "tickets:queue": {"agent", "manager"},
    "crm_tags:index": {"requester", "agent", "manager", "admin"},
    "campaigns:index": {"requester", "agent", "manager", "admin"},
    "analytics:index": {"manager"},
    "knowledge_base:index": {"requester", "agent", "manager", "admin"},
}


@pytest.fixture
def people(requester, agent, manager, admin_user):
    return {"requester": requester, "agent": agent, "manager": manager, "admin": admin_user}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(LANDING_PAGES))
def test_anonymous_is_sent_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(LANDING_PAGES))
@pytest.mark.parametrize("role", ["requester", "agent", "manager", "admin"])
def test_landing_page_allow_and_deny(client_for, people, name, role):
    response = client_for(people[role]).get(reverse(name))
    expected = 200 if role in LANDING_PAGES[name] else 403
    assert response.status_code == expected


@pytest.mark.django_db
def test_requester_cannot_open_admin(client_for, requester):
    response = client_for(requester).get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response.url


@pytest.mark.django_db
def test_admin_role_opens_admin(client_for, admin_user):
    assert client_for(admin_user).get("/admin/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "visible", "hidden"),
    [
        ("requester", ["requests", "customers", "campaigns", "kb"], ["queue", "dashboards", "admin"]),
        ("agent", ["requests", "queue", "customers", "campaigns", "kb"], ["dashboards", "admin"]),
        ("manager", ["requests", "queue", "customers", "campaigns", "dashboards", "kb"], ["admin"]),
        ("admin", ["requests", "kb", "admin"], ["queue", "dashboards"]),
    ],
)
def test_navigation_shows_each_role_what_it_may_use(client_for, people, role, visible, hidden):
    html = client_for(people[role]).get(reverse("accounts:preferences")).content.decode()
    for key in visible:
        assert f'data-nav="{key}"' in html
    for key in hidden:
        assert f'data-nav="{key}"' not in html


@pytest.mark.django_db
def test_home_sends_agents_to_queue_and_requesters_to_requests(client_for, agent, requester):
    assert client_for(agent).get("/").url == reverse("tickets:queue")
    assert client_for(requester).get("/").url == reverse("tickets:my_requests")


@pytest.mark.django_db
def test_pages_reference_no_external_urls(client_for, manager):
    html = client_for(manager).get(reverse("accounts:preferences")).content.decode()
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html
    assert "/static/bootstrap/css/bootstrap.min.css" in html
    assert "/static/django_htmx/htmx-2.min.js" in html
