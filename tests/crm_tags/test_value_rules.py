"""Computed attributes as rule leaves (issue 19): `{"attr": "rfm_segment", "op": "=", "value": "at_risk"}`,
`{"attr": "clv_12m", "op": ">=", "value": 500}` validate, compile and select the right customers, by hand
and against a pandas reference over the stored values of the CDNOW sample."""

import datetime

import pandas as pd
import pytest
from django.db import connection
from django.utils import timezone

from crm_tags.models import Customer, CustomerValue
from crm_tags.rules import compile_rule, validate_rule
from crm_tags.value.store import value_model_fit
from tests.crm_tags import factories
from tests.crm_tags.value_data import load_cdnow

pytestmark = pytest.mark.django_db
AT_RISK_AND_RICH = {
    "all": [
        {"attr": "rfm_segment", "op": "=", "value": "at_risk"},
        {"attr": "clv_12m", "op": ">=", "value": 500},
    ]
}


def _matches(definition: dict, **kwargs) -> set[str]:
    compiled = compile_rule(definition, **kwargs)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT external_id FROM crm_tags_customer WHERE id IN ({compiled.sql})",  # noqa: S608
            compiled.params,
        )
        return {row[0] for row in cursor.fetchall()}


def _valued(external_id: str, segment: str | None, clv: float | None, **fields) -> None:
    customer = factories.customer(external_id=external_id)
    CustomerValue.objects.create(
        customer=customer,
        segment=segment,
        clv_12m=clv,
        computed_at=timezone.now(),
        as_of=datetime.date(2024, 1, 1),
        **fields,
    )


@pytest.fixture
def four(db):
    _valued("RISK_RICH", "at_risk", 800.0, recency_score=1, frequency_score=3, lead_score=3)
    _valued("RISK_EDGE", "at_risk", 500.0, recency_score=2, frequency_score=4)
    _valued("RISK_POOR", "at_risk", 120.0, recency_score=1, frequency_score=3)
    _valued("CHAMP_RICH", "champions", 2000.0, recency_score=5, frequency_score=5, lead_score=40)
    factories.customer(external_id="NO_VALUE")


def test_at_risk_and_clv_at_least_500_selects_exactly_them(four):
    assert _matches(AT_RISK_AND_RICH) == {"RISK_RICH", "RISK_EDGE"}


def test_a_customer_without_a_stored_value_matches_no_comparison_and_its_negation(four):
    assert "NO_VALUE" not in _matches({"attr": "clv_12m", "op": "<", "value": 10**9})
    assert "NO_VALUE" in _matches({"not": {"attr": "clv_12m", "op": "<", "value": 10**9}})
    assert _matches({"attr": "rfm_segment", "op": "is_null", "value": True}) == {"NO_VALUE"}


def test_computed_leaves_work_beside_an_event_leaf_that_drives_the_statement(four):
    # given orders for two of them: the event leaf drives, the computed leaves are looked up per candidate
    rich, champ = (factories_get(x) for x in ("RISK_RICH", "CHAMP_RICH"))
    at = timezone.now() - datetime.timedelta(days=3)
    factories.events([(rich, "order", at, None), (champ, "order", at, None)])
    rule = {
        "all": [
            {"event": "order", "agg": "count", "window_days": 30, "op": ">=", "value": 1},
            {"attr": "lead_score", "op": "between", "value": [1, 10]},
        ]
    }
    assert _matches(rule) == {"RISK_RICH"}
    # and the preview's per-customer form gives the same, with the values that made the match
    compiled = compile_rule(rule, with_values=True, only_ids=[rich.pk, champ.pk])
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, compiled.params)
        rows = cursor.fetchall()
    assert [(r[0], r[compiled.labels.index("lead_score") + 1]) for r in rows] == [(rich.pk, "3")]


def factories_get(external_id: str) -> Customer:
    return Customer.objects.get(external_id=external_id)


def test_segment_lists_and_scores_compare(four):
    assert _matches({"attr": "rfm_segment", "op": "in", "value": ["champions", "lost"]}) == {"CHAMP_RICH"}
    assert _matches({"attr": "recency_score", "op": "<=", "value": 1}) == {"RISK_RICH", "RISK_POOR"}


@pytest.mark.parametrize(
    ("leaf", "path", "message"),
    [
        ({"attr": "rfm_segment", "op": "=", "value": "very_risky"}, "value", "expects an RFM segment"),
        ({"attr": "clv_12m", "op": ">=", "value": "500"}, "value", "expects a number"),
        ({"attr": "clv_12m", "op": "between", "value": [1, "x"]}, "value[1]", "expects a number"),
        ({"attr": "p_alive", "op": "contains", "value": "0"}, "op", "contains only works"),
        ({"attr": "clv_12m", "op": ">=", "value": True}, "value", "expects a number"),
    ],
)
def test_bad_computed_leaves_are_refused_naming_the_path(leaf, path, message):
    errors = validate_rule({"all": [leaf]})
    assert [e.path for e in errors] == [f"all[0].{path}"]
    assert message in errors[0].message


def test_the_contract_leaves_validate():
    assert validate_rule(AT_RISK_AND_RICH) == []


# --- against pandas, on the CDNOW sample --------------------------------------------------------------

# CDNOW's customers spend little: its few at-risk customers have CLVs of 1 to 5
AT_RISK_AND_RICH_CDNOW = {
    "all": [
        {"attr": "rfm_segment", "op": "=", "value": "at_risk"},
        {"attr": "clv_12m", "op": ">=", "value": 3},
    ]
}
REFERENCE_RULES = [
    (AT_RISK_AND_RICH_CDNOW, lambda v: (v.segment == "at_risk") & (v.clv_12m >= 3)),
    ({"attr": "clv_12m", "op": ">=", "value": 100}, lambda v: v.clv_12m >= 100),
    (
        {
            "any": [
                {"attr": "p_alive", "op": "<", "value": 0.3},
                {"attr": "frequency_score", "op": ">=", "value": 3},
            ]
        },
        lambda v: (v.p_alive < 0.3) | (v.frequency_score >= 3),
    ),
    (
        {"not": {"attr": "rfm_segment", "op": "in", "value": ["lost", "hibernating"]}},
        lambda v: ~v.segment.isin(["lost", "hibernating"]),
    ),
    (
        {"attr": "expected_purchases_90d", "op": "between", "value": [0.2, 1.5]},
        lambda v: v.expected_purchases_90d.between(0.2, 1.5),
    ),
]


def test_computed_leaves_select_what_pandas_selects_on_the_stored_values(db):
    # given the CDNOW sample fitted and stored
    load_cdnow()
    value_model_fit(as_of=datetime.date(1997, 9, 30), time_unit="weeks")
    values = pd.DataFrame(
        list(
            CustomerValue.objects.values(
                "customer__external_id",
                "segment",
                "clv_12m",
                "p_alive",
                "frequency_score",
                "expected_purchases_90d",
            )
        )
    ).set_index("customer__external_id")
    for definition, reference in REFERENCE_RULES:
        expected = set(values.index[reference(values)])
        # then each rule's statement selects the customers pandas selects (and some, not all)
        assert _matches(definition) == expected, definition
        assert 0 < len(expected) < len(values), definition
