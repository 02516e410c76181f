"""Pages of routing and request types: allow and deny per page, the editors, the new-request form's fields
and the ticket page's values."""

import pytest

from tests.conftest import in_english
from tests.tickets.factories import make_ticket
from tickets import request_types
from tickets.models import AgentRouting, RequestField, RequestType, Skill, TeamRouting, Ticket, TypeSkill

pytestmark = pytest.mark.django_db
ROUTING = "/requests/routing/"


@pytest.fixture
def export(requester, manager):
    """ "Data export" for the requester's team: a required text and a choice."""
    return request_types.request_type_save(
        team=requester.team,
        by=manager,
        name="Data export",
        default_type="data_support",
        fields=[
            {"name": "table", "label": "Table name", "kind": "text", "required": True},
            {"name": "format", "label": "File format", "kind": "choice", "choices": ["csv", "xlsx"]},
        ],
    )


# --- routing overview, away, capacity and skills -----------------------------------------------------------


def test_routing_page_for_agents_and_managers_not_requesters(client, client_for, agent, manager, requester):
    assert client_for(agent).get(ROUTING).status_code == 200
    body = client_for(manager).get(ROUTING).content.decode()
    assert 'id="agents-table"' in body and "routing/agents/" in body
    assert client_for(requester).get(ROUTING).status_code == 403
    assert client.get(ROUTING).status_code == 302


def test_agents_see_no_edit_forms(client_for, agent, manager):
    assert "routing/agents/" not in client_for(agent).get(ROUTING).content.decode()


def test_routing_page_query_count(
    client_for, make_user, support_team, manager, django_assert_max_num_queries
):
    for n in range(8):
        make_user(f"a{n}", role="agent", team=support_team.name)
    client = client_for(manager)
    with django_assert_max_num_queries(16):
        response = client.get(ROUTING)
    assert response.content.decode().count("data-agent=") == 9


def test_an_agent_marks_themselves_away_and_back(client_for, agent):
    in_english(agent)
    client = client_for(agent)
    client.post(ROUTING + "away/", {"away": "1"})
    assert AgentRouting.objects.get(user=agent).away is True
    assert "I am back" in client.get(ROUTING).content.decode()
    client.post(ROUTING + "away/", {"away": "0"})
    assert AgentRouting.objects.get(user=agent).away is False


def test_requesters_cannot_mark_themselves_away(client_for, requester):
    assert client_for(requester).post(ROUTING + "away/", {"away": "1"}).status_code == 403
    assert not AgentRouting.objects.exists()


def test_a_manager_sets_capacity_and_skills(client_for, manager, agent):
    sql = Skill.objects.create(name="SQL")
    response = client_for(manager).post(
        f"{ROUTING}agents/{agent.pk}/", {f"a{agent.pk}-capacity": "6", f"a{agent.pk}-skills": [sql.pk]}
    )
    assert response.status_code == 302
    row = AgentRouting.objects.get(user=agent)
    assert row.capacity == 6 and list(row.skills.all()) == [sql]


def test_a_bad_capacity_changes_nothing(client_for, manager, agent):
    client_for(manager).post(f"{ROUTING}agents/{agent.pk}/", {f"a{agent.pk}-capacity": "-3"})
    assert not AgentRouting.objects.filter(user=agent, capacity__isnull=False).exists()


def test_agents_cannot_set_capacity_or_add_skills(client_for, agent):
    assert (
        client_for(agent).post(f"{ROUTING}agents/{agent.pk}/", {f"a{agent.pk}-capacity": "99"}).status_code
        == 403
    )
    assert client_for(agent).post(ROUTING + "skills/", {"name": "SQL"}).status_code == 403
    assert not Skill.objects.exists()


def test_a_manager_adds_a_skill(client_for, manager):
    client_for(manager).post(ROUTING + "skills/", {"name": "Mini-program"})
    assert Skill.objects.filter(name="Mini-program").exists()


# --- team routing and request types ---------------------------------------------------------------------------


def test_team_page_for_managers_only(client_for, manager, agent, requester):
    url = f"{ROUTING}teams/{requester.team_id}/"
    assert client_for(manager).get(url).status_code == 200
    assert client_for(agent).get(url).status_code == 403
    assert client_for(requester).get(url).status_code == 403
    assert client_for(manager).get(f"{ROUTING}teams/999999/").status_code == 404


def test_a_manager_sets_the_team_routing_and_type_skills(client_for, manager, requester):
    sql = Skill.objects.create(name="SQL")
    response = client_for(manager).post(
        f"{ROUTING}teams/{requester.team_id}/",
        {"mode": "skill", "assign_on_create": "on", "skills_data_support": [sql.pk]},
    )
    assert response.status_code == 302
    routing = TeamRouting.objects.get(team_id=requester.team_id)
    assert (routing.mode, routing.assign_on_create) == ("skill", True)
    assert list(TypeSkill.objects.filter(team_id=requester.team_id).values_list("type", flat=True)) == [
        "data_support"
    ]


def test_a_bad_routing_mode_is_refused(client_for, manager, requester):
    response = client_for(manager).post(f"{ROUTING}teams/{requester.team_id}/", {"mode": "random"})
    assert response.status_code == 400
    assert 'data-error-for="mode"' in response.content.decode()
    assert not TeamRouting.objects.exists()


def test_a_manager_creates_a_request_type_and_adds_fields(client_for, manager, requester):
    client = client_for(manager)
    response = client.post(
        f"{ROUTING}teams/{requester.team_id}/request-types/new/", {"name": "Coupon setup", "active": "on"}
    )
    created = RequestType.objects.get(name="Coupon setup")
    assert response.status_code == 302 and created.team_id == requester.team_id
    edit = f"{ROUTING}teams/{requester.team_id}/request-types/{created.pk}/"
    client.post(
        edit, {"action": "add_field", "name": "sku", "label": "SKU", "kind": "text", "required": "on"}
    )
    client.post(
        edit, {"action": "add_field", "name": "ch", "label": "Channel", "kind": "choice", "choices": "a, b"}
    )
    assert list(created.fields.values_list("name", "required", "choices")) == [
        ("sku", True, []),
        ("ch", False, ["a", "b"]),
    ]
    field = created.fields.get(name="sku")
    client.post(edit, {"action": "remove_field", "field_id": field.pk})
    assert list(created.fields.values_list("name", flat=True)) == ["ch"]


def test_a_bad_field_name_is_shown_and_nothing_added(client_for, manager, export):
    url = f"{ROUTING}teams/{export.team_id}/request-types/{export.pk}/"
    response = client_for(in_english(manager)).post(
        url, {"action": "add_field", "name": "Bad Name", "label": "x", "kind": "text"}
    )
    assert response.status_code == 400
    assert "Bad Name" in response.content.decode()
    assert export.fields.count() == 2


def test_a_duplicate_request_type_name_is_refused(client_for, manager, export):
    response = client_for(manager).post(
        f"{ROUTING}teams/{export.team_id}/request-types/new/", {"name": "Data export", "active": "on"}
    )
    assert response.status_code == 400
    assert 'data-error-for="name"' in response.content.decode()
    assert RequestType.objects.count() == 1


def test_request_type_editor_denied_to_agents_and_other_team_ids(
    client_for, agent, manager, export, other_requester
):
    url = f"{ROUTING}teams/{export.team_id}/request-types/{export.pk}/"
    assert client_for(agent).get(url).status_code == 403
    assert client_for(agent).post(url, {"action": "remove_field", "field_id": 1}).status_code == 403
    wrong_team = f"{ROUTING}teams/{other_requester.team_id}/request-types/{export.pk}/"
    assert client_for(manager).get(wrong_team).status_code == 404
    assert (
        client_for(agent)
        .post(f"{ROUTING}teams/{export.team_id}/request-types/new/", {"name": "x"})
        .status_code
        == 403
    )
    assert RequestField.objects.count() == 2


# --- the new-request form and the ticket page -----------------------------------------------------------------


def test_the_fields_partial_shows_the_chosen_types_fields(client_for, requester, export):
    body = (
        client_for(requester)
        .get(f"/requests/request-types/fields/?request_type={export.pk}")
        .content.decode()
    )
    assert 'name="cf_table"' in body and 'name="cf_format"' in body
    assert "<html" not in body


def test_the_fields_partial_is_empty_for_another_teams_type(client_for, other_requester, export):
    body = client_for(other_requester).get(f"/requests/request-types/fields/?request_type={export.pk}")
    assert body.status_code == 200 and "cf_table" not in body.content.decode()


def test_the_new_request_page_offers_the_teams_request_types(client_for, requester, other_requester, export):
    assert "Data export" in client_for(requester).get("/requests/new/").content.decode()
    assert 'name="request_type"' not in client_for(other_requester).get("/requests/new/").content.decode()


def test_filing_through_the_form_stores_the_values(client_for, requester, export):
    response = client_for(requester).post(
        "/requests/new/",
        {
            "request_type": export.pk,
            "urgency": "routine",
            "title": "Orders of November",
            "cf_table": "orders",
            "cf_format": "xlsx",
        },
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.type, ticket.request_type) == ("data_support", export)
    assert ticket.custom_fields == {"table": "orders", "format": "xlsx"}


def test_a_missing_required_field_is_shown_under_it_and_nothing_filed(client_for, requester, export):
    response = client_for(requester).post(
        "/requests/new/", {"request_type": export.pk, "urgency": "routine", "title": "x", "cf_format": "csv"}
    )
    assert response.status_code == 400
    assert 'data-error-for="cf_table"' in response.content.decode()
    assert not Ticket.objects.exists()


def test_the_ticket_page_shows_the_values(client_for, requester, agent, export):
    ticket = make_ticket(requester, request_type=export, custom_fields={"table": "orders", "format": "csv"})
    for person in (requester, agent):
        body = client_for(person).get(ticket.get_absolute_url()).content.decode()
        assert 'id="request-type-values"' in body
        assert "Table name" in body and 'data-field="table">orders<' in body


def test_a_ticket_without_request_type_has_no_values_card(client_for, requester):
    ticket = make_ticket(requester)
    assert (
        'id="request-type-values"'
        not in client_for(requester).get(ticket.get_absolute_url()).content.decode()
    )


def test_the_navigation_links_routing_for_support_staff_only(client_for, agent, requester):
    assert 'data-nav="routing"' in client_for(agent).get(ROUTING).content.decode()
    assert 'data-nav="routing"' not in client_for(requester).get("/requests/").content.decode()
