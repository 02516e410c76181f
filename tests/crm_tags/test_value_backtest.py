"""Computed attributes back-tested with as_of (issue 19): a rule previewed or built as of a day before the
stored values' day reads the values the daily job would have computed then (the fit and RFM on the orders
up to that day, the lead score decayed to it), not the stored ones; at the current as_of it reads the
stored values."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from crm_tags import services
from crm_tags.models import CustomerValue, Event, LeadScoreRule, TagMembership, ValueModelFit
from crm_tags.rules import compile_rule
from crm_tags.value.lead_score import lead_score_rule_save
from crm_tags.value.store import as_of_moment, backtest_day, value_model_fit
from tests.crm_tags import factories
from tests.crm_tags.value_data import load_cdnow

pytestmark = pytest.mark.django_db
AT_RISK = {"attr": "rfm_segment", "op": "=", "value": "at_risk"}
CLV_500 = {"attr": "clv_12m", "op": ">=", "value": 500}
AT_RISK_AND_RICH = {"all": [AT_RISK, CLV_500]}
# the CDNOW amounts (CDs at about $15) times 200: then some customers at risk are worth 500 in 12 months
# (the segments do not read amounts; the Gamma-Gamma spend scales with them)
AMOUNT_SCALE = 200
PAST_DAY = datetime.date(1997, 9, 30)  # the CDNOW calibration end
STORED_DAY = datetime.date(1998, 6, 30)  # the end of the CDNOW data
PAST_AS_OF = "1997-10-01"  # midnight: the last day that had ended is PAST_DAY


def _values_on_a_base_cut_at(day: datetime.date) -> dict[str, tuple]:
    """What the daily job computed on a base holding only the orders up to `day`: the orders after it
    deleted, value_model_fit run, the rows read, everything rolled back."""
    with transaction.atomic():
        Event.objects.filter(occurred_at__gt=as_of_moment(day)).delete()
        value_model_fit(as_of=day, time_unit="weeks")
        rows = {
            external_id: (segment, clv)
            for external_id, segment, clv in CustomerValue.objects.values_list(
                "customer__external_id", "segment", "clv_12m"
            )
        }
        transaction.set_rollback(True)
    return rows


def _members(values: dict[str, tuple], *, segment: bool, clv: float | None) -> set[str]:
    """The customers at risk (when `segment`) with a 12-month CLV of at least `clv` (when given)."""
    return {
        external_id
        for external_id, (seg, value) in values.items()
        if (not segment or seg == "at_risk") and (clv is None or (value is not None and value >= clv))
    }


@pytest.fixture
def cdnow_then_and_now(db):
    """The CDNOW sample, its values as of PAST_DAY (from a base cut at that day), and the stored values
    as of STORED_DAY."""
    load_cdnow(amount_scale=AMOUNT_SCALE)
    then = _values_on_a_base_cut_at(PAST_DAY)
    value_model_fit(as_of=STORED_DAY, time_unit="weeks")
    now = {
        external_id: (segment, clv)
        for external_id, segment, clv in CustomerValue.objects.values_list(
            "customer__external_id", "segment", "clv_12m"
        )
    }
    return then, now


def _preview_sample(api_for, user, slug: str, definition: dict, as_of: str | None) -> dict:
    payload = {"definition": definition, **({"as_of": as_of} if as_of else {})}
    response = api_for(user).post(f"/api/v1/tags/{slug}/preview/", payload, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _matched(definition: dict, as_of: datetime.datetime) -> set[str]:
    with transaction.atomic(), connection.cursor() as cursor:
        compiled = compile_rule(definition, as_of=as_of)
        cursor.execute(
            f"SELECT external_id FROM crm_tags_customer WHERE id IN ({compiled.sql})",  # noqa: S608
            compiled.params,
        )
        return {row[0] for row in cursor.fetchall()}


def test_rules_as_of_a_past_day_select_what_the_values_of_that_day_select(cdnow_then_and_now):
    then, now = cdnow_then_and_now
    past = timezone.make_aware(datetime.datetime(1997, 10, 1))
    # given values as of PAST_DAY that differ from the stored ones (else this test could not fail)
    for definition, segment, clv in (
        (AT_RISK, True, None),
        (CLV_500, False, 500),
        (AT_RISK_AND_RICH, True, 500),
    ):
        expected = _members(then, segment=segment, clv=clv)
        assert expected, definition
        assert expected != _members(now, segment=segment, clv=clv), definition
        # when the rule is evaluated as of the next midnight, then it selects the past day's members
        assert _matched(definition, past) == expected, definition
        # and evaluated now it still selects the stored values' members
        assert _matched(definition, timezone.now()) == _members(now, segment=segment, clv=clv), definition


def test_a_preview_as_of_a_past_day_counts_and_shows_that_days_values(cdnow_then_and_now, api_for, agent):
    then, now = cdnow_then_and_now
    factories.rule_tag("risky")
    # when an agent previews "at risk and CLV >= 500" as of the day after the calibration end
    body = _preview_sample(api_for, agent, "risky", AT_RISK_AND_RICH, PAST_AS_OF)
    # then it counts the members of the values computed from the orders up to that day
    expected = _members(then, segment=True, clv=500)
    assert body["matched"] == len(expected)
    assert body["matched"] != len(_members(now, segment=True, clv=500))
    # and the sample shows that day's values
    assert body["sample"]
    for row in body["sample"]:
        assert row["external_id"] in expected
        assert row["values"]["rfm_segment"] == "at_risk"
        assert float(row["values"]["clv_12m"]) == pytest.approx(then[row["external_id"]][1], rel=1e-9)
    # while a preview without as_of reads the stored values
    assert _preview_sample(api_for, agent, "risky", AT_RISK_AND_RICH, None)["matched"] == len(
        _members(now, segment=True, clv=500)
    )


def test_a_build_as_of_a_past_day_keeps_that_days_members(cdnow_then_and_now, manager):
    then, _now = cdnow_then_and_now
    tag = factories.rule_tag("at-risk", AT_RISK, by=manager)
    tag.refresh_from_db()
    build = services.tag_publish(
        tag=tag,
        version_number=1,
        rollout_percent=100,
        by=manager,
        as_of=timezone.make_aware(datetime.datetime(1997, 10, 1)),
    )
    build = services.tag_build_run(build=build, queue_dependents=False)
    assert build.status == "done", build.error
    members = set(TagMembership.objects.filter(tag=tag).values_list("customer__external_id", flat=True))
    assert members == _members(then, segment=True, clv=None)


def test_the_stored_values_are_read_at_and_after_their_day_and_without_any():
    # given no fit: nothing to back-test against
    assert backtest_day(timezone.make_aware(datetime.datetime(2020, 1, 1))) is None
    # given values stored as of 2026-03-10
    ValueModelFit.objects.create(as_of=datetime.date(2026, 3, 10), time_unit="weeks", params={})
    # then a rule as of a moment on or after the end of that day reads them, an earlier one the last day
    # that had ended by then
    assert backtest_day(as_of_moment(datetime.date(2026, 3, 10))) is None
    assert backtest_day(timezone.make_aware(datetime.datetime(2026, 3, 12, 9))) is None
    assert backtest_day(timezone.make_aware(datetime.datetime(2026, 3, 10, 23))) == datetime.date(2026, 3, 9)
    assert backtest_day(timezone.make_aware(datetime.datetime(2026, 3, 1))) == datetime.date(2026, 2, 28)
    assert "crm_tags_customervalue" in compile_rule(AT_RISK, as_of=timezone.now()).sql


def test_a_fit_by_hand_for_a_later_day_does_not_turn_current_rules_into_back_tests():
    # given values stored as of a day after today (fit_value_model --as-of run by hand)
    ValueModelFit.objects.create(
        as_of=timezone.localdate() + datetime.timedelta(days=5), time_unit="weeks", params={}
    )
    # then a rule evaluated now (or as of yesterday's end) reads them; two days ago is a back-test
    assert backtest_day(timezone.now()) is None
    assert backtest_day(as_of_moment(timezone.localdate() - datetime.timedelta(days=1))) is None
    assert backtest_day(as_of_moment(timezone.localdate() - datetime.timedelta(days=2))) == (
        timezone.localdate() - datetime.timedelta(days=2)
    )


def test_a_back_tested_lead_score_is_decayed_to_that_day():
    # given a page view worth 8 points halving every 10 days, on 2026-03-01 and on 2026-03-08
    customer = factories.customer(external_id="LEAD")
    lead_score_rule_save(
        name="views",
        kind=LeadScoreRule.Kind.EVENT,
        event_type="page_view",
        points=Decimal("8"),
        half_life_days=10,
    )
    at = timezone.make_aware(datetime.datetime(2026, 3, 1, 12))
    factories.events(
        [(customer, "page_view", at, None), (customer, "page_view", at + datetime.timedelta(days=7), None)]
    )
    ValueModelFit.objects.create(as_of=datetime.date(2026, 3, 20), time_unit="weeks", params={})
    # when "lead score >= 6" is evaluated as of 2026-03-06 (values as of the end of 2026-03-05)
    end = as_of_moment(datetime.date(2026, 3, 5))
    expected = 8 * 0.5 ** ((end - at).total_seconds() / 86400 / 10)
    # then only the first view counts, decayed to that day's end (about 5.7 points: no match)
    assert 5.5 < expected < 6
    as_of = timezone.make_aware(datetime.datetime(2026, 3, 6))
    assert _matched({"attr": "lead_score", "op": ">=", "value": 5.5}, as_of) == {"LEAD"}
    assert _matched({"attr": "lead_score", "op": ">=", "value": 6}, as_of) == set()
    with transaction.atomic(), connection.cursor() as cursor:
        compiled = compile_rule({"attr": "lead_score", "op": ">=", "value": 0}, as_of=as_of, with_values=True)
        cursor.execute(compiled.sql, compiled.params)
        assert float(cursor.fetchone()[1]) == pytest.approx(expected, rel=1e-9)
