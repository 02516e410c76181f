"""Cross-department sign-off of solution plans (issue 21): all must approve, any can send back (which resets
the approvals for the next revision), nobody approves their own plan, only members of the named team or
holders of the named role sign, and the ticket moves on when the last one approves."""

import pytest
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError

from accounts.models import AuditEntry, Notification, Team
from tests.tickets.factories import force_status, make_ticket
from tickets import services, signoff
from tickets.models import PlanSignoff, SignoffDefault, SolutionPlan, Ticket, TicketEvent

pytestmark = pytest.mark.django_db
S = Ticket.Status


@pytest.fixture
def data_team(db) -> Team:
    return Team.objects.get_or_create(name="Data")[0]


@pytest.fixture
def analyst(make_user, data_team):
    return make_user("dora", role="requester", team="Data")


@pytest.fixture
def feature(requester, agent, manager):
    return force_status(make_ticket(requester, type="feature"), S.ANALYSIS)


def submit(ticket, by, signoffs=None):
    return services.plan_save(
        ticket=ticket,
        by=by,
        implementation_path="Build the coupon widget",
        milestones=[{"name": "confirm", "due": "2026-12-01"}, {"name": "go_live", "due": "2026-12-20"}],
        submit=True,
        signoffs=signoffs,
    )


def test_with_no_list_and_no_defaults_one_manager_signs(feature, agent, manager):
    plan = submit(feature, agent)

    rows = signoff.current_signoffs(plan)
    assert [(r.role, r.team_id, r.decision) for r in rows] == [("manager", None, "pending")]
    services.plan_review(ticket=feature, by=manager, approve=True)
    plan.refresh_from_db()
    assert plan.status == SolutionPlan.Status.APPROVED


def test_all_must_approve_before_the_ticket_moves_on(feature, agent, manager, analyst, data_team):
    plan = submit(feature, agent, signoffs=["role:manager", f"team:{data_team.pk}"])

    signoff.signoff_decide(ticket=feature, by=manager, approve=True)
    plan.refresh_from_db()
    feature.refresh_from_db()
    assert plan.status == SolutionPlan.Status.SUBMITTED and feature.status == S.ANALYSIS

    signoff.signoff_decide(ticket=feature, by=analyst, approve=True)
    plan.refresh_from_db()
    feature.refresh_from_db()
    assert plan.status == SolutionPlan.Status.APPROVED
    assert feature.status == S.IN_PROGRESS
    assert {r.decided_by for r in signoff.current_signoffs(plan)} == {manager, analyst}


def test_each_decision_is_audited_and_in_the_history(feature, agent, manager, analyst, data_team):
    submit(feature, agent, signoffs=["role:manager", f"team:{data_team.pk}"])
    signoff.signoff_decide(ticket=feature, by=manager, approve=True)

    entry = AuditEntry.objects.filter(action="ticket.plan_signoff", actor=manager).get()
    assert entry.changes["decision"] == "approved"
    assert TicketEvent.objects.filter(ticket=feature, field="signoff", actor=manager, new="approved").exists()


def test_one_send_back_returns_the_plan_and_the_next_revision_starts_afresh(
    feature, agent, manager, analyst, data_team
):
    codes = ["role:manager", f"team:{data_team.pk}"]
    submit(feature, agent, signoffs=codes)
    signoff.signoff_decide(ticket=feature, by=manager, approve=True)

    plan = signoff.signoff_decide(
        ticket=feature, by=analyst, approve=False, note="Needs the data export spec"
    )
    assert plan.status == SolutionPlan.Status.RETURNED
    feature.refresh_from_db()
    assert feature.status == S.ANALYSIS
    assert Notification.objects.filter(recipient=agent, kind="ticket.plan_reviewed").exists()

    plan = submit(feature, agent, signoffs=codes)
    rows = signoff.current_signoffs(plan)
    assert [r.revision for r in rows] == [2, 2]
    assert [r.decision for r in rows] == ["pending", "pending"]  # the manager's approval was reset
    signoff.signoff_decide(ticket=feature, by=manager, approve=True)  # and may be given again


def test_a_send_back_needs_a_reason_and_changes_nothing_without_one(feature, agent, manager):
    submit(feature, agent)
    with pytest.raises(DjangoValidationError) as exc:
        signoff.signoff_decide(ticket=feature, by=manager, approve=False, note="  ")
    assert "note" in exc.value.message_dict
    assert PlanSignoff.objects.get().decision == "pending"


def test_a_manager_cannot_approve_their_own_plan(feature, manager, make_user):
    make_user("mina", role="manager", team="MarTech support")
    submit(feature, manager)

    with pytest.raises(PermissionDenied, match="someone else"):
        signoff.signoff_decide(ticket=feature, by=manager, approve=True)
    assert SolutionPlan.objects.get().status == SolutionPlan.Status.SUBMITTED


def test_the_author_approves_in_no_role(feature, make_user, support_team, manager):
    author = make_user("theo", role="agent", team=support_team.name)
    submit(feature, author, signoffs=[f"team:{support_team.pk}", "role:agent"])

    with pytest.raises(PermissionDenied, match="someone else"):
        signoff.signoff_decide(ticket=feature, by=author, approve=True)


def test_someone_outside_the_named_team_or_role_is_refused(
    feature, agent, analyst, other_requester, data_team
):
    submit(feature, agent, signoffs=[f"team:{data_team.pk}"])

    for outsider in (other_requester, agent):
        with pytest.raises(PermissionDenied):
            signoff.signoff_decide(ticket=feature, by=outsider, approve=True)
    assert PlanSignoff.objects.get().decision == "pending"


def test_a_person_approves_once_per_revision_even_holding_two_signoffs(feature, agent, make_user, data_team):
    both = make_user("bea", role="manager", team="Data")
    submit(feature, agent, signoffs=["role:manager", f"team:{data_team.pk}"])

    signoff.signoff_decide(ticket=feature, by=both, approve=True)
    with pytest.raises(PermissionDenied, match="already approved"):
        signoff.signoff_decide(ticket=feature, by=both, approve=True)
    assert SolutionPlan.objects.get().status == SolutionPlan.Status.SUBMITTED


def test_submitting_tells_the_people_who_may_sign_and_not_the_author(
    feature, agent, manager, analyst, data_team, other_requester
):
    submit(feature, agent, signoffs=["role:manager", f"team:{data_team.pk}"])

    told = set(
        Notification.objects.filter(kind="ticket.plan_submitted").values_list(
            "recipient__username", flat=True
        )
    )
    assert told == {manager.username, analyst.username}


def test_defaults_for_the_team_and_type_are_used_when_no_list_is_chosen(feature, agent, data_team, analyst):
    SignoffDefault.objects.create(team=feature.team, ticket_type="feature", role="manager", position=0)
    SignoffDefault.objects.create(team=feature.team, ticket_type="feature", signer_team=data_team, position=1)
    SignoffDefault.objects.create(team=None, ticket_type="", role="admin", position=0)  # less specific

    plan = submit(feature, agent)

    assert [(r.role, r.team_id) for r in signoff.current_signoffs(plan)] == [
        ("manager", None),
        ("", data_team.pk),
    ]


@pytest.mark.parametrize("code", ["role:king", "team:999999", "nonsense"])
def test_an_unknown_signoff_is_named_and_nothing_is_saved(feature, agent, code):
    with pytest.raises(DjangoValidationError) as exc:
        submit(feature, agent, signoffs=[code])
    assert code in str(exc.value.message_dict["signoffs"])
    assert not SolutionPlan.objects.exists()


def test_a_signoff_nobody_but_the_author_can_give_is_refused(feature, agent, make_user):
    lonely = Team.objects.create(name="Lonely")
    with pytest.raises(DjangoValidationError, match="Nobody but the author"):
        submit(feature, agent, signoffs=[f"team:{lonely.pk}"])
    assert not SolutionPlan.objects.exists()


def test_plans_waiting_for_me_lists_only_the_current_revision_and_not_my_own(
    feature, agent, manager, analyst, data_team
):
    submit(feature, agent, signoffs=[f"team:{data_team.pk}"])

    assert [p.ticket_id for p in signoff.plans_waiting_for(analyst)] == [feature.pk]
    assert list(signoff.plans_waiting_for(manager)) == []
    signoff.signoff_decide(ticket=feature, by=analyst, approve=False, note="no")
    assert list(signoff.plans_waiting_for(analyst)) == []
