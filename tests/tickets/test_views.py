"""Request pages: what each person sees and may do (allow and deny), htmx partials, query counts."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.tickets.factories import force_status, make_ticket
from tickets.models import Attachment, SavedView, SolutionPlan, Ticket

S = Ticket.Status
pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def detail(ticket: Ticket) -> str:
    return reverse("tickets:detail", args=[ticket.key])


def test_new_request_form_has_kb_hooks(client_for, requester):
    html = client_for(requester).get(reverse("tickets:new")).content.decode()
    assert 'hx-get="/kb/suggest/"' in html
    assert 'hx-trigger="input changed delay:300ms, keyup changed delay:300ms"' in html
    assert 'hx-target="#kb-suggestions"' in html
    assert '<div id="kb-suggestions" aria-live="polite"></div>' in html
    assert 'name="title"' in html


def test_file_a_request_with_attachment(client_for, requester, agent):
    response = client_for(requester).post(
        reverse("tickets:new"),
        {
            "type": "incident",
            "urgency": "urgent",
            "title": "Coupon broken",
            "description": "**now**",
            "attachments": [SimpleUploadedFile("shot.png", PNG, content_type="image/png")],
        },
    )
    ticket = Ticket.objects.get(title="Coupon broken")
    assert response.status_code == 302
    assert response.url == detail(ticket)
    attachment = Attachment.objects.get(ticket=ticket)
    assert attachment.original_name == "shot.png"
    assert "shot" not in attachment.file.name


def test_new_request_refuses_a_file_whose_content_lies(client_for, requester):
    response = client_for(requester).post(
        reverse("tickets:new"),
        {
            "type": "incident",
            "urgency": "urgent",
            "title": "Bad file",
            "attachments": [SimpleUploadedFile("shot.png", b"MZ\x00\x00binary", content_type="image/png")],
        },
    )
    assert response.status_code == 400
    assert 'data-error-for="attachments"' in response.content.decode()
    assert not Ticket.objects.filter(title="Bad file").exists()


def test_new_request_requires_fields(client_for, requester):
    response = client_for(requester).post(reverse("tickets:new"), {"title": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-error-for="type"' in html and 'data-error-for="title"' in html


def test_my_requests_lists_only_my_team(client_for, requester, other_requester):
    mine, theirs = make_ticket(requester), make_ticket(other_requester)
    html = client_for(requester).get(reverse("tickets:my_requests")).content.decode()
    assert mine.key in html and theirs.key not in html


def test_my_requests_chips(client_for, requester):
    waiting = force_status(make_ticket(requester), S.AWAITING_ACCEPTANCE)
    open_ = make_ticket(requester)
    html = client_for(requester).get(reverse("tickets:my_requests") + "?chip=waiting").content.decode()
    assert waiting.key in html and open_.key not in html


def test_my_requests_empty_state(client_for, requester):
    html = client_for(requester).get(reverse("tickets:my_requests")).content.decode()
    assert "empty-state" in html


def test_my_requests_query_count(client_for, requester, django_assert_max_num_queries):
    for n in range(10):
        make_ticket(requester, title=f"R{n}")
    client = client_for(requester)
    # session, user, groups/perms for nav, unread count, chip counts, page count, page rows
    with django_assert_max_num_queries(12):
        response = client.get(reverse("tickets:my_requests"))
    assert response.content.decode().count("data-key=") == 10


def test_ticket_page_allow_and_deny(client_for, requester, team_mate, other_requester, agent):
    ticket = make_ticket(requester)
    assert client_for(team_mate).get(detail(ticket)).status_code == 200
    assert client_for(agent).get(detail(ticket)).status_code == 200
    assert client_for(other_requester).get(detail(ticket)).status_code == 404


def test_internal_notes_never_shown_to_requesters(client_for, requester, agent):
    ticket = make_ticket(requester)
    client_for(agent).post(
        reverse("tickets:comment", args=[ticket.key]), {"body": "secret margin", "internal": "on"}
    )
    client_for(agent).post(reverse("tickets:comment", args=[ticket.key]), {"body": "public answer"})
    requester_html = client_for(requester).get(detail(ticket)).content.decode()
    agent_html = client_for(agent).get(detail(ticket)).content.decode()
    assert "public answer" in requester_html and "secret margin" not in requester_html
    assert "secret margin" in agent_html and "internal-note" in agent_html


def test_requester_sees_only_their_steps(client_for, requester, agent):
    ticket = force_status(make_ticket(requester), S.AWAITING_ACCEPTANCE)
    requester_html = client_for(requester).get(detail(ticket)).content.decode()
    agent_html = client_for(agent).get(detail(ticket)).content.decode()
    assert 'data-step="resolved"' in requester_html
    assert 'data-step="resolved"' not in agent_html
    assert 'id="triage-form"' in agent_html and 'id="triage-form"' not in requester_html


def test_transition_through_the_page_with_htmx(client_for, requester, agent):
    ticket = make_ticket(requester)
    response = client_for(agent).post(
        reverse("tickets:transition", args=[ticket.key]),
        {"to": "triaged", "feasibility": "feasible", "assignee": "agent"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert 'data-status="triaged"' in response.content.decode()
    assert "<html" not in response.content.decode()


def test_transition_by_the_wrong_role_is_403(client_for, requester):
    ticket = make_ticket(requester)
    response = client_for(requester).post(
        reverse("tickets:transition", args=[ticket.key]), {"to": "triaged", "feasibility": "feasible"}
    )
    assert response.status_code == 403


def test_transition_that_does_not_exist_is_409(client_for, requester, agent):
    ticket = make_ticket(requester)
    response = client_for(agent).post(reverse("tickets:transition", args=[ticket.key]), {"to": "testing"})
    assert response.status_code == 409


def test_transition_missing_data_is_400(client_for, requester, agent):
    ticket = make_ticket(requester)
    response = client_for(agent).post(reverse("tickets:transition", args=[ticket.key]), {"to": "rejected"})
    assert response.status_code == 400
    ticket.refresh_from_db()
    assert ticket.status == S.NEW


def test_triage_form_changes_urgency(client_for, requester, agent):
    ticket = make_ticket(requester)
    response = client_for(agent).post(
        reverse("tickets:triage", args=[ticket.key]),
        {
            "type": "incident",
            "urgency": "urgent",
            "feasibility": "feasible",
            "effort_hours": "2.5",
            "version": ticket.lock_version,
        },
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.urgency, str(ticket.effort_hours)) == ("urgent", "2.5")


def test_triage_denied_to_requester(client_for, requester):
    ticket = make_ticket(requester)
    assert (
        client_for(requester)
        .post(reverse("tickets:triage", args=[ticket.key]), {"urgency": "urgent"})
        .status_code
        == 403
    )


def test_plan_submit_and_manager_approval(client_for, requester, agent, manager):
    ticket = make_ticket(requester, type="feature")
    client_for(agent).post(
        reverse("tickets:plan", args=[ticket.key]),
        {"implementation_path": "Build a widget", "milestone_build": "2026-12-01", "submit": "on"},
    )
    plan = SolutionPlan.objects.get(ticket=ticket)
    assert plan.status == "submitted" and plan.milestones == [{"name": "build", "due": "2026-12-01"}]
    assert (
        client_for(agent)
        .post(reverse("tickets:plan_review", args=[ticket.key]), {"decision": "approve"})
        .status_code
        == 403
    )
    client_for(manager).post(reverse("tickets:plan_review", args=[ticket.key]), {"decision": "approve"})
    plan.refresh_from_db()
    assert plan.status == "approved"


def test_rate_from_the_page(client_for, requester):
    ticket = force_status(make_ticket(requester), S.RESOLVED)
    client_for(requester).post(reverse("tickets:rate", args=[ticket.key]), {"score": "5", "comment": "great"})
    ticket.refresh_from_db()
    assert ticket.rating.score == 5 and ticket.status == S.CLOSED


def test_links_and_history(client_for, requester, agent):
    first, second = make_ticket(requester), make_ticket(requester)
    client_for(agent).post(
        reverse("tickets:link_add", args=[first.key]), {"kind": "duplicate_of", "target": second.key}
    )
    html = client_for(agent).get(detail(first)).content.decode()
    assert second.key in html
    assert 'data-event="link"' in html


def test_retrospective_publish_button_for_agents(client_for, requester, agent):
    agent.language = "en"
    agent.save(update_fields=["language"])
    ticket = force_status(make_ticket(requester), S.RESOLVED)
    client_for(agent).post(
        reverse("tickets:retrospective", args=[ticket.key]), {"background": "b", "solution": "s"}
    )
    agent_html = client_for(agent).get(detail(ticket)).content.decode()
    assert f'action="/kb/from-ticket/{ticket.key}/"' in agent_html
    assert "Publish retrospective to the knowledge base" in agent_html
    assert f"/kb/from-ticket/{ticket.key}/" not in client_for(requester).get(detail(ticket)).content.decode()


def test_attachment_served_only_to_those_who_see_the_ticket(client_for, requester, other_requester, agent):
    ticket = make_ticket(
        requester, files=[SimpleUploadedFile("plan.txt", b"hello", content_type="text/plain")]
    )
    attachment = Attachment.objects.get(ticket=ticket)
    url = reverse("tickets:attachment", args=[attachment.pk])
    response = client_for(requester).get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"hello"
    assert client_for(agent).get(url).status_code == 200
    assert client_for(other_requester).get(url).status_code == 404


def test_queue_filters_and_counts(client_for, requester, agent):
    urgent = make_ticket(requester, urgency="urgent", title="Checkout down")
    planned = make_ticket(requester, urgency="planned", title="Loyalty")
    force_status(make_ticket(requester, title="Old one"), S.CLOSED)
    response = client_for(agent).get(reverse("tickets:queue") + "?urgency=urgent")
    html = response.content.decode()
    assert urgent.key in html and planned.key not in html
    counts = {status: n for status, _label, n in response.context["counts"]}
    assert counts["new"] == 1
    assert "closed" not in counts


def test_queue_sorted_by_sla_due(client_for, requester, agent):
    planned = make_ticket(requester, urgency="planned")
    urgent = make_ticket(requester, urgency="urgent")
    keys = [t.key for t in client_for(agent).get(reverse("tickets:queue")).context["page"].object_list]
    assert keys.index(urgent.key) < keys.index(planned.key)


def test_queue_htmx_returns_only_results(client_for, requester, agent):
    make_ticket(requester)
    response = client_for(agent).get(
        reverse("tickets:queue"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="queue-results"
    )
    html = response.content.decode()
    assert 'id="queue-table"' in html and "<html" not in html


def test_queue_query_count(client_for, requester, agent, django_assert_max_num_queries):
    for n in range(15):
        make_ticket(requester, title=f"R{n}")
    client = client_for(agent)
    # session, user, perms, nav unread, role groups, counts GROUP BY, page count, rows (joined),
    # saved views, agents, teams, campaigns
    with django_assert_max_num_queries(16):
        response = client.get(reverse("tickets:queue"))
    assert response.content.decode().count("data-key=") == 15


def test_bulk_assign_and_transition(client_for, requester, agent, manager):
    first, second = make_ticket(requester), make_ticket(requester)
    client = client_for(agent)
    client.post(
        reverse("tickets:queue_bulk"),
        {"keys": [first.key, second.key], "action": "assign", "assignee": "boss"},
    )
    assert set(Ticket.objects.values_list("assignee__username", flat=True)) == {"boss"}
    client.post(
        reverse("tickets:queue_bulk"),
        {"keys": [first.key], "action": "transition", "to": "rejected", "note": "dup"},
    )
    first.refresh_from_db()
    assert first.status == S.REJECTED


def test_bulk_denied_to_requester(client_for, requester):
    ticket = make_ticket(requester)
    response = client_for(requester).post(
        reverse("tickets:queue_bulk"), {"keys": [ticket.key], "action": "assign"}
    )
    assert response.status_code == 403


def test_saved_views(client_for, agent):
    client = client_for(agent)
    client.post(reverse("tickets:saved_view_save"), {"name": "Urgent", "query": "urgency=urgent"})
    view = SavedView.objects.get(user=agent)
    assert 'data-saved-view="Urgent"' in client.get(reverse("tickets:queue")).content.decode()
    client.post(reverse("tickets:saved_view_delete", args=[view.pk]))
    assert not SavedView.objects.exists()


def test_sla_page_editable_by_manager_only(client_for, agent, manager):
    from tickets.models import SlaPolicy
    from tickets.services import sla_defaults_ensure

    sla_defaults_ensure()
    policy = SlaPolicy.objects.get(urgency="urgent")
    data = {
        "policy": policy.pk,
        f"p{policy.pk}-first_response_minutes": 20,
        f"p{policy.pk}-resolution_minutes": 100,
        f"p{policy.pk}-calendar": policy.calendar_id,
        f"p{policy.pk}-version": policy.lock_version,
    }
    assert client_for(agent).get(reverse("tickets:sla")).status_code == 200
    assert client_for(agent).post(reverse("tickets:sla"), data).status_code == 403
    assert client_for(manager).post(reverse("tickets:sla"), data).status_code == 302
    policy.refresh_from_db()
    assert policy.first_response_minutes == 20


def test_sla_page_denied_to_requester(client_for, requester):
    assert client_for(requester).get(reverse("tickets:sla")).status_code == 403


def test_markdown_preview_is_sanitised(client_for, requester):
    response = client_for(requester).post(
        reverse("tickets:preview"), {"description": "**hi** <script>x()</script>"}
    )
    html = response.content.decode()
    assert "<strong>hi</strong>" in html and "<script>" not in html


def test_a_description_cannot_cover_the_agents_page_with_a_fake_sign_in(client_for, requester, agent):
    # given the overlay of issue 16 in a ticket description
    overlay = (
        '<div class="position-fixed top-0 start-0 w-100 h-100 bg-white">'
        '<a href="https://evil.example/login">Session expired</a></div>'
    )
    ticket = make_ticket(requester, description=overlay)
    # when an agent opens the ticket
    html = client_for(agent).get(detail(ticket)).content.decode()
    # then the overlay's classes are gone and the link says where it leads
    assert "position-fixed" not in html
    assert "\u2197\u00a0evil.example" in html


AGENT_ONLY_POSTS = [
    ("tickets:triage", {"urgency": "urgent"}),
    ("tickets:assign", {"assignee": "agent"}),
    ("tickets:plan", {"implementation_path": "x"}),
    ("tickets:plan_review", {"decision": "approve"}),
    ("tickets:link_add", {"kind": "related_to", "target": "MT-1"}),
    ("tickets:retrospective", {"background": "b", "solution": "s"}),
]


@pytest.mark.parametrize(("name", "data"), AGENT_ONLY_POSTS)
def test_agent_only_actions_are_403_for_requesters(client_for, requester, name, data):
    ticket = make_ticket(requester)
    assert client_for(requester).post(reverse(name, args=[ticket.key]), data).status_code == 403


TEAM_POSTS = [
    ("tickets:comment", {"body": "hi"}),
    ("tickets:transition", {"to": "cancelled"}),
    ("tickets:rate", {"score": "5"}),
    ("tickets:watch", {}),
]


@pytest.mark.parametrize(("name", "data"), TEAM_POSTS)
def test_other_team_gets_404_on_every_ticket_action(client_for, requester, other_requester, name, data):
    ticket = make_ticket(requester)
    assert client_for(other_requester).post(reverse(name, args=[ticket.key]), data).status_code == 404


def test_requester_comments_and_cancels(client_for, requester):
    ticket = make_ticket(requester)
    client = client_for(requester)
    client.post(reverse("tickets:comment", args=[ticket.key]), {"body": "more detail"})
    client.post(reverse("tickets:transition", args=[ticket.key]), {"to": "cancelled"})
    ticket.refresh_from_db()
    assert ticket.status == S.CANCELLED
    assert ticket.comments.get().body == "more detail"


def test_assign_and_watch(client_for, requester, agent, manager):
    ticket = make_ticket(requester)
    client_for(agent).post(reverse("tickets:assign", args=[ticket.key]), {"assignee": "boss"})
    client_for(agent).post(reverse("tickets:watch", args=[ticket.key]))
    ticket.refresh_from_db()
    assert ticket.assignee == manager
    assert list(ticket.watchers.all()) == [agent]


def test_link_remove(client_for, requester, agent):
    first, second = make_ticket(requester), make_ticket(requester)
    client_for(agent).post(
        reverse("tickets:link_add", args=[first.key]), {"kind": "blocks", "target": second.key}
    )
    link = first.links_out.get()
    client_for(agent).post(reverse("tickets:link_remove", args=[first.key, link.pk]))
    assert not first.links_out.exists()


def test_saved_view_of_someone_else_cannot_be_deleted(client_for, agent, manager):
    view = SavedView.objects.create(user=manager, name="Mine", query="")
    assert client_for(agent).post(reverse("tickets:saved_view_delete", args=[view.pk])).status_code == 404
    assert SavedView.objects.filter(pk=view.pk).exists()


def test_saved_views_denied_to_requesters(client_for, requester):
    response = client_for(requester).post(reverse("tickets:saved_view_save"), {"name": "x", "query": ""})
    assert response.status_code == 403


def test_agent_logs_a_meeting_request_on_behalf_of_a_requester(client_for, requester, agent):
    client_for(agent).post(
        reverse("tickets:new"),
        {
            "type": "feature",
            "urgency": "planned",
            "title": "From the Monday meeting",
            "on_behalf_of": "req",
            "channel": "meeting",
        },
    )
    ticket = Ticket.objects.get(title="From the Monday meeting")
    assert (ticket.requester, ticket.team, ticket.channel) == (requester, requester.team, "meeting")


def test_requesters_cannot_file_for_others(client_for, requester, team_mate):
    client_for(requester).post(
        reverse("tickets:new"),
        {
            "type": "incident",
            "urgency": "routine",
            "title": "Mine",
            "on_behalf_of": "teammate",
            "channel": "meeting",
        },
    )
    ticket = Ticket.objects.get(title="Mine")
    assert (ticket.requester, ticket.channel) == (requester, "web")


def test_agent_who_files_a_request_sees_it_among_their_teams_requests(client_for, agent):
    ticket = force_status(make_ticket(agent), S.AWAITING_ACCEPTANCE)
    listing = client_for(agent).get(reverse("tickets:my_requests")).content.decode()
    page = client_for(agent).get(detail(ticket)).content.decode()
    assert f'data-key="{ticket.key}"' in listing
    assert 'data-step="resolved"' in page
