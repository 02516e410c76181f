"""Only the requesting side accepts and rates: whoever worked on a ticket may not (issue 21)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.models import AuditEntry, Notification, User
from tests.tickets.factories import approved_plan, force_status, make_ticket
from tickets import services
from tickets.models import SatisfactionRating, Ticket

S = Ticket.Status
WORKED_ON_ACCEPT = "You worked on this request; someone on the requesting side accepts it."
WORKED_ON_RATE = "You worked on this request; someone on the requesting side rates it."


def english(user: User) -> User:
    """Refusal texts are compared in English, whatever the default language."""
    user.language = "en"
    user.save(update_fields=["language"])
    return user


def deliver(ticket: Ticket, *, by: User, assignee: User) -> Ticket:
    """Walk the ticket through the real workflow to awaiting acceptance, worked by `assignee`."""
    services.ticket_transition(ticket=ticket, to=S.TRIAGED, by=by, feasibility="feasible", assignee=assignee)
    for to in (S.IN_PROGRESS, S.TESTING, S.AWAITING_ACCEPTANCE):
        services.ticket_transition(ticket=ticket, to=to, by=assignee)
    ticket.refresh_from_db()
    return ticket


@pytest.fixture
def self_served(agent, manager) -> Ticket:
    """An agent filed a request, it was assigned to them and they delivered it."""
    english(agent)
    return deliver(make_ticket(agent), by=agent, assignee=agent)


@pytest.fixture
def support_mate(make_user, support_team) -> User:
    """Another member of the support team: on the requesting side of a request an agent files."""
    return make_user("mate", role="agent", team=support_team.name)


# --- the reproduction: the one who worked on it is refused everywhere ---------------------------------


def test_worker_who_filed_cannot_accept_from_the_page(client_for, self_served, agent):
    response = client_for(agent).post(
        reverse("tickets:transition", args=[self_served.key]), {"to": "resolved"}
    )
    assert response.status_code == 403
    assert WORKED_ON_ACCEPT in response.content.decode()
    self_served.refresh_from_db()
    assert self_served.status == S.AWAITING_ACCEPTANCE


def test_worker_who_filed_cannot_accept_by_htmx(client_for, self_served, agent):
    response = client_for(agent).post(
        reverse("tickets:transition", args=[self_served.key]), {"to": "resolved"}, HTTP_HX_REQUEST="true"
    )
    assert WORKED_ON_ACCEPT in response.content.decode()
    self_served.refresh_from_db()
    assert self_served.status == S.AWAITING_ACCEPTANCE


def test_worker_who_filed_cannot_accept_through_the_api(api_for, self_served, agent):
    response = api_for(agent).post(f"/api/v1/tickets/{self_served.key}/accept/")
    assert response.status_code == 403
    assert response.json()["detail"] == WORKED_ON_ACCEPT
    self_served.refresh_from_db()
    assert self_served.status == S.AWAITING_ACCEPTANCE


def test_worker_who_filed_cannot_rate_from_the_page(client_for, self_served, agent):
    force_status(self_served, S.RESOLVED)
    response = client_for(agent).post(reverse("tickets:rate", args=[self_served.key]), {"score": "5"})
    assert response.status_code == 403
    assert WORKED_ON_RATE in response.content.decode()
    self_served.refresh_from_db()
    assert self_served.status == S.RESOLVED
    assert not SatisfactionRating.objects.filter(ticket=self_served).exists()


def test_worker_who_filed_cannot_rate_through_the_api(api_for, self_served, agent):
    force_status(self_served, S.RESOLVED)
    response = api_for(agent).post(f"/api/v1/tickets/{self_served.key}/rating/", {"score": 5}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == WORKED_ON_RATE
    assert not SatisfactionRating.objects.filter(ticket=self_served).exists()


def test_an_earlier_assignee_cannot_accept(api_for, agent, manager, support_mate):
    # given the agent's own request was assigned to them, then handed to a teammate who delivered it
    english(agent)
    ticket = make_ticket(agent)
    services.ticket_assign(ticket=ticket, by=manager, assignee=agent)
    ticket = deliver(ticket, by=manager, assignee=support_mate)
    assert ticket.assignee == support_mate
    # when the earlier assignee tries to accept, then they are refused
    response = api_for(agent).post(f"/api/v1/tickets/{ticket.key}/accept/")
    assert response.status_code == 403
    assert response.json()["detail"] == WORKED_ON_ACCEPT


def test_the_plan_author_cannot_accept(api_for, agent, manager, support_mate):
    # given the agent wrote the plan of their own request, which a teammate delivered
    english(agent)
    ticket = make_ticket(agent)
    approved_plan(ticket, author=agent)
    ticket = deliver(ticket, by=manager, assignee=support_mate)
    # when the plan's author tries to accept, then they are refused
    response = api_for(agent).post(f"/api/v1/tickets/{ticket.key}/accept/")
    assert response.status_code == 403
    assert response.json()["detail"] == WORKED_ON_ACCEPT


def test_the_assignee_on_the_requesting_team_cannot_rate_a_resolved_ticket(agent, support_mate):
    ticket = force_status(deliver(make_ticket(support_mate), by=agent, assignee=agent), S.RESOLVED)
    with pytest.raises(PermissionDenied):
        services.rating_submit(ticket=ticket, by=agent, score=5)


# --- who does accept and rate ------------------------------------------------------------------------


def test_a_teammate_of_the_requester_accepts_and_rates(api_for, self_served, agent, support_mate):
    # given an agent delivered their own request; when a teammate accepts it
    response = api_for(support_mate).post(f"/api/v1/tickets/{self_served.key}/accept/")
    # then it is resolved, and the acceptance is audited as every transition is
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    assert AuditEntry.objects.filter(
        action="ticket.transition",
        actor=support_mate,
        object_id=str(self_served.pk),
        changes={"status": [S.AWAITING_ACCEPTANCE, S.RESOLVED]},
    ).exists()
    rated = api_for(support_mate).post(
        f"/api/v1/tickets/{self_served.key}/rating/", {"score": 4}, format="json"
    )
    assert rated.status_code == 201


def test_the_requester_accepts_work_they_did_not_do(api_for, requester, agent, manager):
    ticket = deliver(make_ticket(requester), by=manager, assignee=agent)
    response = api_for(requester).post(f"/api/v1/tickets/{ticket.key}/accept/")
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"


def test_the_requesters_team_manager_accepts(api_for, make_user, agent, manager, support_mate):
    # given the agent delivered their own request; the support team's manager is on the requesting side
    ticket = deliver(make_ticket(agent), by=manager, assignee=agent)
    response = api_for(manager).post(f"/api/v1/tickets/{ticket.key}/accept/")
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"


@pytest.fixture
def lone_worker(make_user, agent, manager) -> tuple[Ticket, User]:
    """An agent alone in their team filed a request and delivered it: nobody else is on the requesting side."""
    solo = english(make_user("solo", role="agent", team="Marketing data"))
    return deliver(make_ticket(solo), by=solo, assignee=solo), solo


def test_any_manager_accepts_when_only_workers_are_on_the_requesting_side(api_for, lone_worker, manager):
    ticket, solo = lone_worker
    assert api_for(solo).post(f"/api/v1/tickets/{ticket.key}/accept/").status_code == 403
    response = api_for(manager).post(f"/api/v1/tickets/{ticket.key}/accept/")
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"


def test_a_fallback_manager_may_send_the_delivery_back(api_for, lone_worker, manager):
    ticket, _solo = lone_worker
    response = api_for(manager).post(
        f"/api/v1/tickets/{ticket.key}/reject/", {"reason": "Broken"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "in_progress"


def test_a_fallback_manager_does_not_rate(api_for, lone_worker, manager):
    # satisfaction is the requesting side's voice; a manager who accepted for it does not rate
    ticket, _solo = lone_worker
    api_for(manager).post(f"/api/v1/tickets/{ticket.key}/accept/")
    response = api_for(manager).post(f"/api/v1/tickets/{ticket.key}/rating/", {"score": 5}, format="json")
    assert response.status_code == 403


def test_an_outside_manager_does_not_accept_while_the_requesting_team_can(api_for, requester, agent, manager):
    english(manager)
    ticket = deliver(make_ticket(requester), by=manager, assignee=agent)
    response = api_for(manager).post(f"/api/v1/tickets/{ticket.key}/accept/")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only the requesting team accepts delivered work."
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_ACCEPTANCE


def test_a_manager_who_worked_on_it_is_not_the_fallback(api_for, make_user, agent, manager):
    solo = make_user("solo", role="agent", team="Marketing data")
    ticket = deliver(make_ticket(solo), by=manager, assignee=manager)
    assert api_for(manager).post(f"/api/v1/tickets/{ticket.key}/accept/").status_code == 403


# --- the page offers only the allowed steps -----------------------------------------------------------


def test_accept_button_hidden_for_the_one_who_worked_on_it(client_for, self_served, agent):
    page = client_for(agent).get(reverse("tickets:detail", args=[self_served.key])).content.decode()
    assert 'data-step="resolved"' not in page
    assert WORKED_ON_ACCEPT in page  # the page says why


def test_accept_button_shown_to_a_teammate(client_for, self_served, support_mate):
    page = client_for(support_mate).get(reverse("tickets:detail", args=[self_served.key])).content.decode()
    assert 'data-step="resolved"' in page
    assert 'id="acceptance-note"' not in page


def test_rating_form_hidden_for_the_one_who_worked_on_it(client_for, self_served, agent, support_mate):
    force_status(self_served, S.RESOLVED)
    url = reverse("tickets:detail", args=[self_served.key])
    assert 'id="rating-card"' not in client_for(agent).get(url).content.decode()
    assert 'id="rating-card"' in client_for(support_mate).get(url).content.decode()


# --- who is told that delivered work awaits acceptance ------------------------------------------------


def delivered_notices(ticket: Ticket) -> set[str]:
    return set(
        Notification.objects.filter(verb="ticket.awaiting_acceptance", params__key=ticket.key).values_list(
            "recipient__username", flat=True
        )
    )


def test_the_requesting_teams_manager_is_told_when_the_requester_worked_on_it(self_served):
    # the agent filed and delivered it; the support team's manager ("boss") is the one to accept
    assert delivered_notices(self_served) == {"boss"}


def test_any_manager_is_told_when_only_workers_are_on_the_requesting_side(lone_worker):
    ticket, _solo = lone_worker
    assert delivered_notices(ticket) == {"boss"}


def test_only_the_requester_is_told_when_they_did_not_work_on_it(requester, agent, manager):
    ticket = deliver(make_ticket(requester), by=manager, assignee=agent)
    assert delivered_notices(ticket) == {"req"}
