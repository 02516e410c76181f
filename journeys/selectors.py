"""Reads, scoped to the viewer: journeys, their stats (counts, per-step outcomes, lift against the holdout
with the A/B engine) and one customer's enrolments. Customers appear by external id only: nothing here
reads or returns a personal value, whoever asks."""

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404

from accounts.models import User
from campaigns.abtest import VariantCounts, compare, expected_counts_small
from journeys import permissions
from journeys.definition import program_of
from journeys.models import Enrolment, Journey, JourneyVersion, StepRun


def journeys_for_user(*, user: User | AnonymousUser) -> QuerySet[Journey]:
    newest = JourneyVersion.objects.filter(journey=OuterRef("pk")).order_by("-number").values("number")[:1]
    journeys = (
        Journey.objects.select_related("active_version", "owner", "team")
        .annotate(latest_number=Subquery(newest))
        .order_by("-created_at", "-id")
    )
    if permissions.sees_all_journeys(user):
        return journeys
    if not user.is_authenticated or user.team_id is None:
        return journeys.none()
    return journeys.filter(team_id=user.team_id)


def journey_get_for_user(*, user: User | AnonymousUser, journey_id: int) -> Journey:
    """The journey, or 404 when it does not exist or is out of the viewer's reach."""
    journey = journeys_for_user(user=user).filter(pk=journey_id).first()
    if journey is None:
        raise Http404
    return journey


def _lift(treated: tuple[int, int], holdout: tuple[int, int]) -> tuple[float | None, list[float] | None]:
    """Conversion-rate difference (journey − holdout) and its 95 % interval, by the A/B engine's test
    (Fisher's exact test when a cell is expected below 5, else the two-proportion z-test)."""
    control = VariantCounts("holdout", holdout[0], holdout[1])
    challenger = VariantCounts("journey", treated[0], treated[1])
    if not control.exposures or not challenger.exposures:
        return None, None
    test = "fisher" if expected_counts_small(control, challenger) else "z"
    result = compare(control, challenger, test=test)
    return result["lift"], result["lift_ci"]


def journey_stats(*, journey: Journey) -> dict[str, Any]:
    """`{entered, active, converted, holdout: {entered, converted}, lift, lift_ci, steps: [...]}`; the
    first three count the enrolments that walk the journey (the holdout is apart)."""
    with connection.cursor() as cursor:
        # (1) the enrolment counts, one pass over the journey's enrolments
        cursor.execute(
            "SELECT count(*) FILTER (WHERE NOT holdout), "
            "count(*) FILTER (WHERE NOT holdout AND state = 'active'), "
            "count(*) FILTER (WHERE NOT holdout AND converted_at IS NOT NULL), "
            "count(*) FILTER (WHERE holdout), count(*) FILTER (WHERE holdout AND converted_at IS NOT NULL) "
            "FROM journeys_enrolment WHERE journey_id = %s",
            [journey.pk],
        )
        entered, active, converted, h_entered, h_converted = cursor.fetchone()
        # (2) the outcomes per step, from the (journey, step, outcome) index
        cursor.execute(
            "SELECT step, kind, outcome, count(*) FROM journeys_steprun WHERE journey_id = %s "
            "GROUP BY step, kind, outcome",
            [journey.pk],
        )
        counts = cursor.fetchall()
    steps: dict[str, dict[str, Any]] = {}
    version = journey.active_version or journey.versions.order_by("-number").first()
    if version is not None:
        for node in program_of(version.steps).nodes.values():
            steps[node.id] = {"id": node.id, "kind": node.action or node.kind}
    for step, kind, outcome, count in counts:
        row = steps.setdefault(step, {"id": step, "kind": kind})
        row[outcome] = row.get(outcome, 0) + count
    for row in steps.values():
        for outcome in StepRun.Outcome.values:
            row.setdefault(outcome, 0)
    lift, lift_ci = _lift((entered, converted), (h_entered, h_converted))
    return {
        "entered": entered,
        "active": active,
        "converted": converted,
        "holdout": {"entered": h_entered, "converted": h_converted},
        "lift": lift,
        "lift_ci": lift_ci,
        "steps": list(steps.values()),
    }


def journey_enrolments(*, journey: Journey, customer_external_id: str | None = None) -> QuerySet[Enrolment]:
    """The journey's enrolments, newest first, with their step runs (one customer's, when given)."""
    enrolments = (
        Enrolment.objects.filter(journey=journey)
        .select_related("customer")
        .only(
            "pk",
            "journey_id",
            "customer__external_id",
            "version__number",
            "holdout",
            "state",
            "step",
            "next_at",
            "entered_at",
            "converted_at",
            "finished_at",
            "exit_reason",
        )
        .select_related("version")
        .prefetch_related(Prefetch("runs", queryset=StepRun.objects.order_by("at", "pk")))
        .order_by("-entered_at", "-pk")
    )
    if customer_external_id is not None:
        enrolments = enrolments.filter(customer__external_id=customer_external_id)
    return enrolments
