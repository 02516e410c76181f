"""Plan milestones (issue 21): dates in order or nothing is saved, reminders before each that fire once,
overdue milestones on the queue (badge and filter) and on the dashboard, marking one done."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry, Notification
from tests.conftest import in_english
from tests.tickets.factories import force_status, make_ticket
from tickets import milestones, services
from tickets.models import MilestoneReminder, PlanMilestone, SolutionPlan, Ticket
from tickets.tasks import milestone_reminders

pytestmark = pytest.mark.django_db
S = Ticket.Status


def plan_with(ticket, by, *dates: tuple[str, dt.date], submit: bool = False) -> SolutionPlan:
    return services.plan_save(
        ticket=ticket,
        by=by,
        implementation_path="Path",
        milestones=[{"name": name, "due": due.isoformat()} for name, due in dates],
        submit=submit,
    )


def days(n: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=n)


# Order ------------------------------------------------------------------------------------------


def test_dates_out_of_order_are_refused_naming_the_milestone_and_nothing_is_saved(ticket, agent):
    in_english(agent)
    with pytest.raises(DjangoValidationError) as exc:
        plan_with(ticket, agent, ("confirm", days(1)), ("build", days(10)), ("test", days(5)))

    message = exc.value.message_dict["milestone_test"][0]
    assert "“Test”" in message and "“Build”" in message and days(5).isoformat() in message
    assert not SolutionPlan.objects.exists() and not PlanMilestone.objects.exists()


def test_an_edit_out_of_order_keeps_the_saved_plan(ticket, agent):
    plan_with(ticket, agent, ("confirm", days(1)), ("go_live", days(9)))
    with pytest.raises(DjangoValidationError):
        plan_with(ticket, agent, ("confirm", days(10)), ("go_live", days(9)))
    assert list(PlanMilestone.objects.values_list("name", "due")) == [
        ("confirm", days(1)),
        ("go_live", days(9)),
    ]


def test_the_plan_form_shows_the_order_error_under_the_field(client_for, ticket, agent):
    in_english(agent)
    response = client_for(agent).post(
        reverse("tickets:plan", args=[ticket.key]),
        {"implementation_path": "x", "milestone_build": "2026-12-10", "milestone_test": "2026-12-01"},
    )
    assert response.status_code == 400
    assert "is due before" in response.content.decode()
    assert not SolutionPlan.objects.exists()


def test_same_day_milestones_are_in_order_and_done_marks_survive_an_edit(ticket, agent):
    plan = plan_with(ticket, agent, ("confirm", days(1)), ("build", days(1)))
    first = plan.milestone_rows.get(name="confirm")
    milestones.milestone_mark(milestone_id=first.pk, ticket=ticket, by=agent, done=True)

    plan_with(ticket, agent, ("confirm", days(2)), ("build", days(3)), ("go_live", days(4)))
    first.refresh_from_db()
    assert first.done and first.due == days(2)
    assert plan.milestone_rows.count() == 3


# Reminders --------------------------------------------------------------------------------------


def test_a_reminder_goes_to_the_assignee_once(ticket, agent, settings):
    settings.MILESTONE_REMINDER_DAYS = 2
    ticket = force_status(ticket, S.IN_PROGRESS)
    Ticket.objects.filter(pk=ticket.pk).update(assignee=agent)
    plan_with(ticket, agent, ("confirm", days(1)), ("go_live", days(30)))

    assert milestone_reminders.delay().get() == 1
    assert milestone_reminders.delay().get() == 0  # the beat runs again: nothing more
    sent = Notification.objects.filter(kind="ticket.milestone_due")
    assert [(n.recipient, n.params["due"]) for n in sent] == [(agent, days(1).isoformat())]
    assert MilestoneReminder.objects.count() == 1


def test_a_moved_date_reminds_again_but_a_done_or_closed_one_never(ticket, agent, requester):
    ticket = force_status(ticket, S.IN_PROGRESS)
    plan = plan_with(ticket, agent, ("confirm", days(1)), ("build", days(2)))
    assert milestones.milestone_reminders_send(days=2) == 2

    plan_with(ticket, agent, ("confirm", days(2)), ("build", days(2)))  # confirm moved
    milestones.milestone_mark(
        milestone_id=plan.milestone_rows.get(name="build").pk, ticket=ticket, by=agent, done=True
    )
    assert milestones.milestone_reminders_send(days=2) == 1

    closed = force_status(make_ticket(requester), S.CLOSED)
    plan_with(closed, agent, ("confirm", days(1)))
    assert milestones.milestone_reminders_send(days=2) == 0


def test_without_an_assignee_the_author_is_reminded(ticket, agent):
    Ticket.objects.filter(pk=ticket.pk).update(assignee=None)
    plan_with(ticket, agent, ("confirm", days(0)))
    milestones.milestone_reminders_send(days=2)
    assert Notification.objects.get(kind="ticket.milestone_due").recipient == agent


# Overdue on the queue and the dashboard -----------------------------------------------------------


def test_the_queue_badges_and_filters_tickets_with_an_overdue_milestone(client_for, requester, agent):
    in_english(agent)
    late = make_ticket(requester, title="Late one")
    plan_with(late, agent, ("confirm", days(-3)), ("go_live", days(5)))
    on_time = make_ticket(requester, title="On time")
    plan_with(on_time, agent, ("confirm", days(2)))
    done_late = make_ticket(requester, title="Done late")
    plan = plan_with(done_late, agent, ("confirm", days(-3)))
    milestones.milestone_mark(
        milestone_id=plan.milestone_rows.get().pk, ticket=done_late, by=agent, done=True
    )

    html = client_for(agent).get(reverse("tickets:queue")).content.decode()
    late_row = html.split(f'data-key="{late.key}"')[1].split("</tr>")[0]
    assert "data-overdue-milestone" in late_row and "Milestone overdue" in late_row
    assert "data-overdue-milestone" not in html.split(f'data-key="{on_time.key}"')[1].split("</tr>")[0]

    filtered = client_for(agent).get(reverse("tickets:queue"), {"milestone": "overdue"}).content.decode()
    assert f'data-key="{late.key}"' in filtered
    assert f'data-key="{on_time.key}"' not in filtered and f'data-key="{done_late.key}"' not in filtered


def test_the_overdue_badge_adds_no_query_per_row(client_for, requester, agent, django_assert_max_num_queries):
    for n in range(12):
        ticket = make_ticket(requester, title=f"Request {n}")
        plan_with(ticket, agent, ("confirm", days(-1 if n % 2 else 3)))
    client = client_for(agent)
    client.get(reverse("tickets:queue"))  # warm the per-session reads
    # the same bound as the queue's own query-count test: the badge is an EXISTS inside the page's query
    with django_assert_max_num_queries(16):
        response = client.get(reverse("tickets:queue"))
    assert response.content.decode().count("data-overdue-milestone") == 6


def test_the_dashboard_counts_and_lists_overdue_milestones(client_for, requester, agent, manager):
    in_english(manager)
    late = make_ticket(requester)
    plan_with(late, agent, ("confirm", days(-4)), ("build", days(-2)), ("go_live", days(3)))

    html = client_for(manager).get(reverse("analytics:support")).content.decode()
    widget = html.split('id="overdue-milestones"')[1].split("</section>")[0]
    assert "data-overdue-count>2<" in widget
    assert widget.count(f'data-overdue-row="{late.key}"') == 2
    assert "?milestone=overdue" in widget


def test_the_dashboard_widget_shows_a_requesters_team_only(requester, other_requester, agent):
    plan_with(make_ticket(requester), agent, ("confirm", days(-4)))

    assert milestones.overdue_milestones_for(user=requester)[0] == 1
    assert milestones.overdue_milestones_for(user=other_requester)[0] == 0


# Marking done -----------------------------------------------------------------------------------


def test_an_agent_marks_a_milestone_done_and_it_is_audited(client_for, ticket, agent):
    plan = plan_with(ticket, agent, ("confirm", days(-1)))
    milestone = plan.milestone_rows.get()

    response = client_for(agent).post(
        reverse("tickets:milestone_mark", args=[ticket.key, milestone.pk]), {"done": "1"}
    )
    assert response.status_code == 302
    milestone.refresh_from_db()
    assert milestone.done and milestone.done_by == agent and milestone.done_at is not None
    assert AuditEntry.objects.filter(action="ticket.milestone", actor=agent).exists()


def test_a_requester_cannot_mark_a_milestone(client_for, ticket, agent, requester):
    plan = plan_with(ticket, agent, ("confirm", days(-1)))
    milestone = plan.milestone_rows.get()

    response = client_for(requester).post(
        reverse("tickets:milestone_mark", args=[ticket.key, milestone.pk]), {"done": "1"}
    )
    assert response.status_code == 403
    milestone.refresh_from_db()
    assert not milestone.done


def test_a_milestone_of_another_ticket_is_not_marked(client_for, ticket, agent, requester):
    other = make_ticket(requester)
    foreign = plan_with(other, agent, ("confirm", days(1))).milestone_rows.get()
    plan_with(ticket, agent, ("confirm", days(1)))

    client_for(agent).post(reverse("tickets:milestone_mark", args=[ticket.key, foreign.pk]), {"done": "1"})
    foreign.refresh_from_db()
    assert not foreign.done


def test_the_ticket_list_api_filters_overdue_milestones(api_for, requester, agent):
    late = make_ticket(requester, title="Late one")
    plan_with(late, agent, ("confirm", days(-3)))
    plan_with(make_ticket(requester, title="On time"), agent, ("confirm", days(3)))

    body = api_for(agent).get("/api/v1/tickets/", {"milestone": "overdue"}).json()
    assert [row["key"] for row in body["results"]] == [late.key]


# Milestones of a plan's own --------------------------------------------------------------------------


def test_editing_a_plan_in_the_form_keeps_its_own_milestones(client_for, ticket, agent):
    # given a plan whose milestones include one of its own (the API takes any name)
    in_english(agent)
    plan_with(ticket, agent, ("confirm", days(1)), ("UAT with the brand team", days(5)), ("go_live", days(9)))
    # the form shows it for editing, with blank rows for more
    page = client_for(agent).get(reverse("tickets:detail", args=[ticket.key])).content.decode()
    assert 'name="own_name_0" value="UAT with the brand team"' in page and 'name="own_name_2"' in page
    # when the plan is saved through the form with another one added in a blank row
    response = client_for(agent).post(
        reverse("tickets:plan", args=[ticket.key]),
        {
            "implementation_path": "Path",
            "milestone_confirm": days(1).isoformat(),
            "milestone_go_live": days(9).isoformat(),
            "own_name_0": "UAT with the brand team",
            "own_due_0": days(5).isoformat(),
            "own_name_1": "Legal review",
            "own_due_1": days(2).isoformat(),
            "own_name_2": "",
            "own_due_2": "",
        },
    )
    # then both are kept, in the order of their dates among the standard ones
    assert response.status_code == 302
    assert list(PlanMilestone.objects.order_by("position").values_list("name", "due")) == [
        ("confirm", days(1)),
        ("Legal review", days(2)),
        ("UAT with the brand team", days(5)),
        ("go_live", days(9)),
    ]


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"own_name_0": "Legal review", "own_due_0": ""}, "own_due_0", "Give the milestone a due date."),
        ({"own_name_0": "", "own_due_0": "2026-12-20"}, "own_name_0", "Name the milestone."),
    ],
)
def test_a_milestone_of_its_own_needs_a_name_and_a_date(client_for, ticket, agent, row, field, message):
    in_english(agent)
    response = client_for(agent).post(
        reverse("tickets:plan", args=[ticket.key]), {"implementation_path": "Path", **row}
    )
    assert response.status_code == 400
    assert f'data-error-for="{field}"' in response.content.decode() and message in response.content.decode()
    assert not SolutionPlan.objects.exists()
