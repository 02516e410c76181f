"""The sign-off pages (issue 21): the plan's sign-off page for its signers, the decision, the list of plans
waiting for me; each allowed and refused, in both languages."""

import pytest
from django.urls import reverse

from accounts.models import Team
from tests.conftest import in_english
from tests.tickets.factories import force_status, make_ticket
from tickets import services
from tickets.models import SolutionPlan, Ticket

pytestmark = pytest.mark.django_db
S = Ticket.Status


@pytest.fixture
def data_team(db) -> Team:
    return Team.objects.get_or_create(name="Data")[0]


@pytest.fixture
def analyst(make_user, data_team):
    return make_user("dora", role="requester", team="Data")


@pytest.fixture
def submitted(requester, agent, manager, data_team, analyst):
    ticket = force_status(make_ticket(requester, type="feature"), S.ANALYSIS)
    services.plan_save(
        ticket=ticket,
        by=agent,
        implementation_path="Build **it**",
        milestones=[{"name": "confirm", "due": "2026-12-01"}],
        submit=True,
        signoffs=["role:manager", f"team:{data_team.pk}"],
    )
    return ticket


def test_a_signer_from_another_team_opens_the_page_and_sees_the_form(client_for, submitted, analyst):
    in_english(analyst)
    response = client_for(analyst).get(reverse("tickets:plan_signoff", args=[submitted.key]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="signoff-form"' in html and "Your sign-off as Data" in html
    assert "<strong>it</strong>" in html


def test_someone_neither_seeing_the_ticket_nor_signing_gets_404(client_for, submitted, make_user):
    outsider = make_user("otto", role="requester", team="Brand")
    assert client_for(outsider).get(reverse("tickets:plan_signoff", args=[submitted.key])).status_code == 404
    response = client_for(outsider).post(
        reverse("tickets:plan_signoff_decide", args=[submitted.key]), {"decision": "approve"}
    )
    assert response.status_code == 404


def test_the_author_sees_why_there_is_no_form(client_for, submitted, agent):
    in_english(agent)
    html = client_for(agent).get(reverse("tickets:plan_signoff", args=[submitted.key])).content.decode()
    assert 'id="signoff-form"' not in html and "You wrote this plan" in html


def test_approving_from_the_page_records_the_signoff(client_for, submitted, analyst):
    response = client_for(analyst).post(
        reverse("tickets:plan_signoff_decide", args=[submitted.key]), {"decision": "approve"}
    )
    assert response.status_code == 302
    assert SolutionPlan.objects.get().signoffs.get(team__name="Data").decided_by == analyst


def test_the_author_posting_a_decision_is_refused(client_for, submitted, agent):
    response = client_for(agent).post(
        reverse("tickets:plan_signoff_decide", args=[submitted.key]), {"decision": "approve"}
    )
    assert response.status_code == 403
    assert not SolutionPlan.objects.get().signoffs.filter(decision="approved").exists()


def test_a_send_back_without_a_reason_is_named_under_the_field(client_for, submitted, analyst):
    in_english(analyst)
    response = client_for(analyst).post(
        reverse("tickets:plan_signoff_decide", args=[submitted.key]), {"decision": "return", "note": ""}
    )
    assert response.status_code == 400
    assert "Say what needs to change." in response.content.decode()
    assert SolutionPlan.objects.get().status == SolutionPlan.Status.SUBMITTED


def test_both_signoffs_from_the_pages_move_the_ticket_on(client_for, submitted, analyst, manager):
    for person in (manager, analyst):
        client_for(person).post(
            reverse("tickets:plan_signoff_decide", args=[submitted.key]), {"decision": "approve"}
        )
    submitted.refresh_from_db()
    assert submitted.status == S.IN_PROGRESS


def test_the_ticket_page_shows_the_signoffs(client_for, submitted, manager):
    in_english(manager)
    html = client_for(manager).get(reverse("tickets:detail", args=[submitted.key])).content.decode()
    assert 'id="signoff-list"' in html and "Give my sign-off" in html


def test_plans_waiting_for_me_lists_them_in_a_fixed_number_of_queries(
    client_for, analyst, requester, agent, data_team, django_assert_max_num_queries
):
    for _n in range(6):
        ticket = force_status(make_ticket(requester, type="feature"), S.ANALYSIS)
        services.plan_save(
            ticket=ticket,
            by=agent,
            implementation_path="x",
            milestones=[],
            submit=True,
            signoffs=[f"team:{data_team.pk}"],
        )
    client = client_for(analyst)
    # session, user, role groups, the plans with their tickets and authors, plus the page's shared parts
    with django_assert_max_num_queries(12):
        response = client.get(reverse("tickets:plans_waiting"))
    assert response.content.decode().count('href="/requests/MT-') == 6


def test_plans_waiting_empty_state(client_for, other_requester):
    in_english(other_requester)
    html = client_for(other_requester).get(reverse("tickets:plans_waiting")).content.decode()
    assert "Nothing waits for your sign-off" in html


def test_plans_waiting_needs_a_login(client):
    assert client.get(reverse("tickets:plans_waiting")).status_code == 302


def test_an_it_admin_sets_default_signoffs_in_the_admin_and_a_manager_cannot(client_for, admin_user, manager):
    from accounts.services import role_groups_ensure

    role_groups_ensure()  # the admin role's model rights (accounts.roles), as after a migrate
    admin_user.refresh_from_db()
    assert client_for(admin_user).get("/admin/tickets/signoffdefault/").status_code == 200
    assert client_for(manager).get("/admin/tickets/signoffdefault/").status_code in (302, 403)
