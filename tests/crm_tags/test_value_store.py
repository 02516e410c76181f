"""Storing customer value (issue 19): `fit_value_model --as-of 1997-09-30` on the CDNOW sample loaded as
order events stores the published parameters; stored RFM scores agree with pandas' qcut; the stored
predictions are the value modules' own; lead scores decay by half-life."""

import datetime
import io
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm_tags import services
from crm_tags.models import Customer, CustomerValue, LeadScoreRule, ValueModelFit
from crm_tags.tasks import recompute_customer_values
from crm_tags.value import (
    BgNbdParams,
    GammaGammaParams,
    customer_lifetime_value,
    expected_purchases,
    p_alive,
    purchase_summary,
    segment_of,
)
from crm_tags.value.lead_score import LeadScoreRuleInvalid, lead_score_rule_save, lead_scores_recompute
from crm_tags.value.store import value_model_fit
from tests.crm_tags import factories
from tests.crm_tags.value_data import external_id, load_cdnow

pytestmark = pytest.mark.django_db
CALIBRATION_END = datetime.date(1997, 9, 30)


@pytest.fixture
def cdnow_orders(db):
    return load_cdnow()


@pytest.fixture
def cdnow_fit(cdnow_orders):
    call_command("fit_value_model", "--as-of", "1997-09-30", "--time-unit", "weeks", stdout=_Sink())
    return ValueModelFit.objects.get()


class _Sink:
    def write(self, text: str) -> None:
        self.text = text


def _stored() -> pd.DataFrame:
    rows = CustomerValue.objects.values(
        "customer__external_id",
        "recency_score",
        "frequency_score",
        "monetary_score",
        "segment",
        "expected_purchases_90d",
        "p_alive",
        "expected_spend",
        "clv_12m",
        "lead_score",
    )
    return pd.DataFrame(list(rows)).set_index("customer__external_id").sort_index()


def test_the_fit_command_stores_the_published_cdnow_parameters(cdnow_fit):
    # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426; Fader & Hardie's
    # Gamma-Gamma note: p = 6.25, q = 3.74, gamma = 15.44
    bg, gg = cdnow_fit.params["bg_nbd"], cdnow_fit.params["gamma_gamma"]
    assert [round(bg[k], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]
    assert [round(gg[k], 2) for k in ("p", "q", "gamma")] == [6.25, 3.74, 15.44]
    assert round(cdnow_fit.params["log_likelihood"], 1) == -9582.4
    assert cdnow_fit.customers == 2357
    assert (cdnow_fit.as_of, cdnow_fit.time_unit) == (CALIBRATION_END, "weeks")
    assert CustomerValue.objects.filter(as_of=CALIBRATION_END).count() == 2357


def test_stored_predictions_are_the_models_predictions_of_the_summary(cdnow_orders, cdnow_fit):
    # given the pandas summary of the same orders and the stored parameters
    summary = purchase_summary(
        cdnow_orders["customer"],
        cdnow_orders["day"],
        cdnow_orders["amount"],
        as_of=CALIBRATION_END,
        time_unit="weeks",
    )
    summary.index = [external_id(c) for c in summary.index]
    stored = _stored().loc[summary.index]
    bg = BgNbdParams(**cdnow_fit.params["bg_nbd"])
    gg = GammaGammaParams(**cdnow_fit.params["gamma_gamma"])
    args = (summary["frequency"], summary["recency"], summary["age"])
    # then every stored value is what the value modules predict from it
    assert np.allclose(stored["p_alive"], p_alive(bg, *args), rtol=1e-9)
    assert np.allclose(stored["expected_purchases_90d"], expected_purchases(bg, 90 / 7, *args), rtol=1e-9)
    clv = customer_lifetime_value(bg, gg, *args, summary["monetary"], time_unit="weeks")
    assert np.allclose(stored["clv_12m"], clv, rtol=1e-9)
    # the paper's example customer (x = 2, t_x = 30.43, T = 38.86) keeps a good chance of being alive
    assert 0.5 < stored.loc[external_id(1), "p_alive"] < 1


def test_stored_rfm_scores_agree_with_pandas_qcut(cdnow_orders, cdnow_fit):
    # given the reference: recency = days since the last order, frequency = orders, monetary = their sum
    orders = cdnow_orders[cdnow_orders["day"] <= pd.Timestamp(CALIBRATION_END)]
    per = orders.groupby("customer").agg(last=("day", "max"), orders=("day", "size"), spent=("amount", "sum"))
    recency = (pd.Timestamp(CALIBRATION_END) - per["last"]).dt.days

    def label(values: pd.Series) -> pd.Series:
        return pd.qcut(values.astype(float), 5, labels=False, duplicates="drop")

    reference = pd.DataFrame(
        {
            "recency_score": 5 - label(recency),
            "frequency_score": 1 + label(per["orders"]),
            "monetary_score": 1 + label(per["spent"]),
        }
    )
    reference.index = [external_id(c) for c in reference.index]
    reference["segment"] = [
        segment_of(r, f)
        for r, f in zip(reference["recency_score"], reference["frequency_score"], strict=True)
    ]
    # then the stored scores are pandas', customer by customer
    stored = _stored().loc[reference.index, list(reference.columns)]
    assert stored.astype(object).equals(reference.astype(object))
    assert set(stored["segment"]) >= {"at_risk", "lost"}


def test_a_customer_without_orders_has_no_scores_but_a_row(cdnow_orders):
    # given a customer who never ordered
    factories.customer(external_id="NOORDER")
    # when values are computed
    value_model_fit(as_of=CALIBRATION_END, time_unit="days")
    # then they have a row without scores and predictions
    value = CustomerValue.objects.get(customer__external_id="NOORDER")
    assert (value.segment, value.recency_score, value.clv_12m, value.lead_score) == (None, None, None, 0)
    assert CustomerValue.objects.count() == 2358


def test_orders_after_as_of_are_left_out(cdnow_fit):
    # customer 1 ordered again on 1997-08-02 and not after: days since the last order is as_of minus that
    fit_later = value_model_fit(as_of=datetime.date(1998, 6, 30), time_unit="weeks")
    assert fit_later.params["bg_nbd"] != cdnow_fit.params["bg_nbd"]
    assert CustomerValue.objects.filter(as_of=datetime.date(1998, 6, 30)).count() == 2357


def test_the_fit_command_names_bad_input():
    with pytest.raises(CommandError, match="--as-of must be a day"):
        call_command("fit_value_model", "--as-of", "last tuesday")
    with pytest.raises(CommandError, match="no order events on or before 1997-09-30"):
        call_command("fit_value_model", "--as-of", "1997-09-30")


def test_the_order_event_type_is_a_setting(settings):
    # given CDNOW loaded as "purchase" events and that setting
    load_cdnow(event_type="purchase")
    settings.CRM_ORDER_EVENT_TYPE = "purchase"
    # when fitted
    fit = value_model_fit(as_of=CALIBRATION_END, time_unit="weeks")
    # then the purchases are the orders
    assert fit.customers == 2357 and fit.params["order_event_type"] == "purchase"


# --- lead score ----------------------------------------------------------------------------------


def test_lead_score_sums_decayed_event_points_and_attribute_points():
    # given a customer with an order 10 days and a page view 20 days before as_of, in Beijing
    as_of = datetime.date(2024, 3, 31)
    end = timezone.make_aware(datetime.datetime(2024, 3, 31, 12))
    buyer = factories.customer(external_id="LEAD1", city="Beijing")
    other = factories.customer(external_id="LEAD2", city="Shanghai")
    factories.events(
        [
            (buyer, "order", end - datetime.timedelta(days=10), Decimal("10")),
            (buyer, "page_view", end - datetime.timedelta(days=20), None),
            (other, "page_view", end + datetime.timedelta(days=5), None),  # after as_of: no points
        ]
    )
    lead_score_rule_save(
        name="orders", kind="event", event_type="order", points=Decimal("100"), half_life_days=10
    )
    lead_score_rule_save(
        name="views", kind="event", event_type="page_view", points=Decimal("8"), half_life_days=None
    )
    lead_score_rule_save(
        name="beijing", kind="attribute", condition={"attr": "city", "op": "=", "value": "Beijing"}, points=5
    )
    # when values are computed as of that day
    stored_rows_then_lead_scores(as_of)
    # then points decay from the end of as_of's day: 100 * 0.5 ** (10.5 / 10) + 8 + 5
    scores = dict(CustomerValue.objects.values_list("customer__external_id", "lead_score"))
    assert scores["LEAD1"] == pytest.approx(100 * 0.5 ** ((10 * 86400 + 12 * 3600 - 1e-6) / 86400 / 10) + 13)
    assert scores["LEAD2"] == 0


def stored_rows_then_lead_scores(as_of: datetime.date) -> None:
    """Store lead scores for customers too few to fit the models: a stored fit row, then the recompute."""
    now = timezone.now()
    ValueModelFit.objects.create(as_of=as_of, time_unit="weeks", params={}, customers=0)
    CustomerValue.objects.bulk_create(
        [CustomerValue(customer=c, computed_at=now, as_of=as_of) for c in Customer.objects.all()]
    )
    lead_scores_recompute()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "event", "event_type": "no spaces"}, "event_type", "must be an event type"),
        (
            {"kind": "attribute", "condition": {"attr": "planet", "op": "=", "value": 1}},
            "condition",
            "unknown field",
        ),
        (
            {"kind": "attribute", "condition": {"attr": "clv_12m", "op": ">", "value": 1}},
            "condition",
            "computed",
        ),
        ({"kind": "event", "event_type": "order", "half_life_days": 0}, "half_life_days", "from 1 to"),
        ({"kind": "event", "event_type": "order", "points": "many"}, "points", "must be a number"),
        ({"kind": "bogus"}, "kind", "event or attribute"),
    ],
)
def test_a_bad_lead_score_rule_is_refused_naming_the_field(fields, field, message):
    values = {"name": "x", "points": 1, "event_type": "", "condition": None, "half_life_days": None, **fields}
    with pytest.raises(LeadScoreRuleInvalid) as caught:
        lead_score_rule_save(**values)
    assert message in caught.value.errors[field]
    assert not LeadScoreRule.objects.exists()


# --- the scheduled job and imports ----------------------------------------------------------------


def test_the_scheduled_job_fits_as_of_the_given_day(cdnow_orders):
    recompute_customer_values(as_of="1997-09-30")
    fit = ValueModelFit.objects.get()
    assert (fit.as_of, fit.customers) == (CALIBRATION_END, 2357)


def test_the_scheduled_job_logs_data_it_cannot_fit(caplog):
    factories.customer(external_id="LONELY")
    recompute_customer_values(as_of="2024-01-01")
    assert not ValueModelFit.objects.exists()
    assert "not recomputed" in caplog.text


def test_an_events_import_refreshes_the_stored_values(cdnow_fit, django_capture_on_commit_callbacks):
    # given customer 1 (two repeat purchases by as_of), and the stored values
    before = CustomerValue.objects.get(customer__external_id=external_id(1))
    csv = f"customer_external_id,event_type,occurred_at,amount,channel\n{external_id(1)},order,1997-09-20T12:00:00+08:00,40,web\n"
    # when an order of theirs before as_of is imported
    with django_capture_on_commit_callbacks(execute=True):
        services.events_import(upload=io.StringIO(csv), by=None)
    # then the values are refitted as of the same day, and theirs moved
    after = CustomerValue.objects.get(customer__external_id=external_id(1))
    assert list(ValueModelFit.objects.values_list("as_of", flat=True)) == [CALIBRATION_END] * 2
    assert after.p_alive > before.p_alive and after.clv_12m != before.clv_12m
