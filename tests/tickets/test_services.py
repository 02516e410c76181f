"""The state machine and the other ticket writes."""

import datetime as dt
import threading

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from accounts.models import Notification
from tests.tickets.factories import approved_plan, force_status, make_ticket
from tickets import services
from tickets.models import SolutionPlan, Ticket, TicketEvent

S = Ticket.Status
ALL = list(S.values)

# The table, written out independently of tickets.permissions: (from, to) -> sides.
SPEC = {
    ("new", "triaged"): {"agent"},
    ("new", "rejected"): {"agent"},
    ("triaged", "rejected"): {"agent"},
    ("analysis", "rejected"): {"agent"},
    ("new", "cancelled"): {"team"},
    ("triaged", "cancelled"): {"team"},
    ("analysis", "cancelled"): {"team"},
    ("triaged", "analysis"): {"agent"},
    ("triaged", "in_progress"): {"agent"},
    ("analysis", "in_progress"): {"agent"},
    ("triaged", "waiting_on_requester"): {"agent"},
    ("analysis", "waiting_on_requester"): {"agent"},
    ("in_progress", "waiting_on_requester"): {"agent"},
    ("waiting_on_requester", "in_progress"): {"agent", "team"},  # back to where it came from
    ("in_progress", "testing"): {"agent"},
    ("testing", "awaiting_acceptance"): {"agent"},
    ("testing", "in_progress"): {"agent"},
    ("awaiting_acceptance", "resolved"): {"team"},
    ("awaiting_acceptance", "in_progress"): {"team"},
    ("resolved", "closed"): {"system"},
    ("new", "resolved"): {"system"},  # an alert incident that resolved itself untouched (alert intake)
    ("resolved", "in_progress"): {"team"},
}
ROLE_SIDE = {"requester": "team", "agent": "agent", "manager": "agent", "outsider": None}


def expected_outcome(frm: str, to: str, role: str) -> str:
    sides = SPEC.get((frm, to))
    if sides is None:
        return "409"
    return "ok" if ROLE_SIDE[role] in sides else "403"


@pytest.fixture
def people(requester, agent, manager, other_requester):
    return {"requester": requester, "agent": agent, "manager": manager, "outsider": other_requester}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["requester", "agent", "manager", "outsider"])
@pytest.mark.parametrize("frm", ALL)
def test_every_transition_per_role(people, agent, role, frm):
    # given a ticket in `frm` with everything each step may need (an approved plan, a feature)
    by = people[role]
    ticket = make_ticket(people["requester"], type=Ticket.Type.FEATURE)
    approved_plan(ticket, agent)
    previous = "in_progress" if frm == "waiting_on_requester" else ""
    for to in ALL:
        force_status(ticket, frm, previous=previous)
        # when this person asks for the step, then it happens, is forbidden (403) or does not exist (409)
        try:
            services.ticket_transition(
                ticket=ticket, to=to, by=by, note="a question", reason="a reason", feasibility="feasible"
            )
            outcome = "ok"
        except services.TransitionForbidden:
            outcome = "403"
        except services.TransitionNotAllowed:
            outcome = "409"
        assert outcome == expected_outcome(frm, to, role), f"{frm} -> {to} by {role}"
        ticket.refresh_from_db()
        assert ticket.status == (to if outcome == "ok" else frm)


@pytest.mark.django_db
def test_system_closes_resolved(ticket):
    force_status(ticket, S.RESOLVED)
    services.ticket_transition(ticket=ticket, to=S.CLOSED, by=None)
    ticket.refresh_from_db()
    assert ticket.status == S.CLOSED
    assert ticket.closed_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("frm", "to", "missing"),
    [
        ("new", "triaged", "feasibility"),
        ("new", "rejected", "reason"),
        ("in_progress", "waiting_on_requester", "note"),
    ],
)
def test_agent_steps_need_their_data(ticket, agent, frm, to, missing):
    force_status(ticket, frm)
    with pytest.raises(services.TransitionDataMissing) as exc:
        services.ticket_transition(ticket=ticket, to=to, by=agent)
    assert missing in exc.value.errors
    ticket.refresh_from_db()
    assert ticket.status == frm


@pytest.mark.django_db
@pytest.mark.parametrize("frm", ["awaiting_acceptance", "resolved"])
def test_refusal_and_reopen_need_a_reason(ticket, requester, frm):
    force_status(ticket, frm)
    with pytest.raises(services.TransitionDataMissing) as exc:
        services.ticket_transition(ticket=ticket, to=S.IN_PROGRESS, by=requester)
    assert "reason" in exc.value.errors


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "complex_"), [("feature", False), ("incident", True)])
def test_analysis_to_in_progress_needs_an_approved_plan(requester, agent, kind, complex_):
    ticket = make_ticket(requester, type=kind)
    Ticket.objects.filter(pk=ticket.pk).update(is_complex=complex_)
    force_status(ticket, S.ANALYSIS)
    with pytest.raises(services.TransitionDataMissing) as exc:
        services.ticket_transition(ticket=ticket, to=S.IN_PROGRESS, by=agent)
    assert "plan" in exc.value.errors


@pytest.mark.django_db
def test_simple_ticket_needs_no_plan(ticket, agent):
    force_status(ticket, S.ANALYSIS)
    assert services.ticket_transition(ticket=ticket, to=S.IN_PROGRESS, by=agent).status == S.IN_PROGRESS


@pytest.mark.django_db
def test_reopen_window_is_seven_days(ticket, requester):
    force_status(ticket, S.RESOLVED, resolved_at=timezone.now() - dt.timedelta(days=8))
    with pytest.raises(services.TransitionNotAllowed):
        services.ticket_transition(ticket=ticket, to=S.IN_PROGRESS, by=requester, reason="broken again")


@pytest.mark.django_db
def test_triage_without_assignee_goes_round_robin(requester, agent, manager, make_user, support_team):
    # given two available support people and one unavailable
    away = make_user("away", role="agent", team=support_team.name)
    away.is_available = False
    away.save()
    chosen = []
    for _ in range(3):
        ticket = make_ticket(requester)
        services.ticket_transition(ticket=ticket, to=S.TRIAGED, by=agent, feasibility="feasible")
        ticket.refresh_from_db()
        chosen.append(ticket.assignee.username)
    # then they take turns and the unavailable one gets nothing
    assert chosen[0] != chosen[1]
    assert chosen[2] == chosen[0]
    assert "away" not in chosen


@pytest.mark.django_db
def test_triage_with_assignee_and_audit(ticket, agent, manager):
    services.ticket_transition(
        ticket=ticket, to=S.TRIAGED, by=agent, feasibility="needs_external", assignee=manager
    )
    ticket.refresh_from_db()
    assert ticket.assignee == manager
    assert ticket.feasibility == "needs_external"
    status_event = TicketEvent.objects.get(ticket=ticket, kind="status")
    assert (status_event.old, status_event.new, status_event.actor) == ("new", "triaged", agent)


@pytest.mark.django_db
def test_waiting_pauses_and_requester_reply_resumes(ticket, agent, requester):
    force_status(ticket, S.IN_PROGRESS)
    services.ticket_transition(ticket=ticket, to=S.WAITING_ON_REQUESTER, by=agent, note="Which SKU?")
    ticket.refresh_from_db()
    assert ticket.sla_state == "paused"
    assert ticket.sla_paused_at is not None
    services.comment_add(ticket=ticket, by=requester, body="SKU 123")
    ticket.refresh_from_db()
    assert ticket.status == S.IN_PROGRESS
    assert ticket.sla_paused_at is None


@pytest.mark.django_db
def test_first_public_agent_reply_stops_first_response_clock(ticket, agent):
    services.comment_add(ticket=ticket, by=agent, body="Looking", internal=True)
    ticket.refresh_from_db()
    assert ticket.first_response_at is None
    services.comment_add(ticket=ticket, by=agent, body="On it")
    ticket.refresh_from_db()
    assert ticket.first_response_at is not None
    assert ticket.sla_due == ticket.resolution_due


@pytest.mark.django_db
def test_requester_cannot_write_internal_note(ticket, requester):
    with pytest.raises(PermissionDenied):
        services.comment_add(ticket=ticket, by=requester, body="psst", internal=True)


@pytest.mark.django_db
def test_internal_note_never_reaches_the_requester(
    ticket, agent, manager, requester, mailoutbox, django_capture_on_commit_callbacks
):
    # given the ticket is the manager's, and the agent writes an internal note
    services.ticket_assign(ticket=ticket, by=agent, assignee=manager)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_add(ticket=ticket, by=agent, body="secret margin is 40%", internal=True)
    # then the assignee is told, the requester neither in the app nor by e-mail
    assert any(manager.email in m.to and "secret" in m.body for m in mail.outbox)
    assert not Notification.objects.filter(recipient=requester, body__contains="secret").exists()
    assert all(requester.email not in m.to for m in mail.outbox)


@pytest.mark.django_db
def test_public_reply_is_mailed_to_the_requester(
    ticket, agent, requester, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_add(ticket=ticket, by=agent, body="Fixed the price")
    assert any(requester.email in m.to and "Fixed the price" in m.body for m in mailoutbox)


@pytest.mark.django_db
def test_urgency_change_recomputes_due_times(ticket, agent):
    before = ticket.resolution_due
    services.ticket_update_triage(ticket=ticket, by=agent, urgency=Ticket.Urgency.URGENT)
    ticket.refresh_from_db()
    assert ticket.resolution_due < before
    assert TicketEvent.objects.filter(ticket=ticket, field="urgency", old="routine", new="urgent").exists()


@pytest.mark.django_db
def test_rating_closes_and_only_once(ticket, requester):
    force_status(ticket, S.RESOLVED)
    services.rating_submit(ticket=ticket, by=requester, score=5, comment="quick")
    ticket.refresh_from_db()
    assert ticket.status == S.CLOSED
    with pytest.raises(services.TicketConflict):
        services.rating_submit(ticket=ticket, by=requester, score=4)


@pytest.mark.django_db
def test_other_team_cannot_rate(ticket, other_requester):
    force_status(ticket, S.RESOLVED)
    with pytest.raises(PermissionDenied):
        services.rating_submit(ticket=ticket, by=other_requester, score=1)


@pytest.mark.django_db
def test_plan_approval_by_manager_only(ticket, agent, manager):
    services.plan_save(ticket=ticket, by=agent, implementation_path="Path", milestones=[], submit=True)
    with pytest.raises(PermissionDenied):
        services.plan_review(ticket=ticket, by=agent, approve=True)
    plan = services.plan_review(ticket=ticket, by=manager, approve=True)
    assert plan.status == SolutionPlan.Status.APPROVED


@pytest.mark.django_db
def test_keys_are_sequential(requester):
    first, second = make_ticket(requester), make_ticket(requester)
    assert second.number == first.number + 1
    assert second.key == f"MT-{second.number}"


@pytest.mark.django_db
def test_auto_close_after_seven_days(ticket, requester):
    force_status(ticket, S.RESOLVED, resolved_at=timezone.now() - dt.timedelta(days=7, minutes=1))
    fresh = force_status(make_ticket(requester), S.RESOLVED)
    assert services.auto_close_resolved() == 1
    ticket.refresh_from_db()
    fresh.refresh_from_db()
    assert (ticket.status, fresh.status) == (S.CLOSED, S.RESOLVED)


@pytest.mark.django_db
def test_attachment_too_large_is_refused_and_nothing_is_made(requester, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.UPLOAD_MAX_BYTES = 10
    before = Ticket.objects.count()
    with pytest.raises(ValidationError):
        make_ticket(requester, files=[SimpleUploadedFile("notes.txt", b"x" * 11)])
    assert Ticket.objects.count() == before


def _in_threads(count: int, work) -> list:
    results: list = []
    barrier = threading.Barrier(count)

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:  # noqa: BLE001 (collected for the assertion)
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_parallel_creates_get_gap_free_keys(requester):
    results = _in_threads(6, lambda: make_ticket(requester).number)
    assert all(isinstance(r, int) for r in results), results
    assert sorted(results) == list(range(min(results), min(results) + 6))


@pytest.mark.django_db(transaction=True)
def test_two_agents_transitioning_the_same_ticket(requester, agent, manager):
    ticket = make_ticket(requester)
    force_status(ticket, S.IN_PROGRESS)
    people = iter([agent, manager])
    lock = threading.Lock()

    def move():
        with lock:
            person = next(people)
        return services.ticket_transition(ticket=ticket, to=S.TESTING, by=person)

    results = _in_threads(2, move)
    # then exactly one wins; the other sees the new status and gets "not allowed" (409)
    assert sum(isinstance(r, Ticket) for r in results) == 1
    assert sum(isinstance(r, services.TransitionNotAllowed) for r in results) == 1
    assert TicketEvent.objects.filter(ticket=ticket, kind="status").count() == 1


@pytest.mark.django_db
def test_mentions_notify_only_people_who_may_read(ticket, agent, manager, other_requester, requester):
    services.comment_add(ticket=ticket, by=agent, body="@boss @brand please look", internal=False)
    services.comment_add(ticket=ticket, by=agent, body="@req internal only", internal=True)
    mentioned = set(
        Notification.objects.filter(verb="ticket.mention").values_list("recipient__username", flat=True)
    )
    assert mentioned == {"boss"}
