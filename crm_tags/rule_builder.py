"""Words for the tag rule builder: every code a rule stores (operators, aggregates, fields, event
types) reaches the page as a translated label, so a marketer never reads or types a code."""

from typing import Any

from django.utils.translation import gettext as _

from crm_tags.models import Tag
from crm_tags.rules import AGGS, ATTR_OPS, BUILTIN_FIELDS, COMPUTED_FIELDS, NUMERIC_OPS
from crm_tags.value.rfm import SEGMENTS

KNOWN_EVENT_TYPES = ("order", "page_view", "coupon_redeemed")


def _op_labels() -> dict[str, str]:
    return {
        "=": _("is"),
        "!=": _("is not"),
        ">": _("is more than"),
        ">=": _("is at least"),
        "<": _("is less than"),
        "<=": _("is at most"),
        "in": _("is one of"),
        "not_in": _("is none of"),
        "contains": _("includes"),
        "is_null": _("is empty or not"),
        "between": _("is between"),
    }


def _agg_labels() -> dict[str, str]:
    return {
        "count": _("Number of"),
        "sum": _("Total amount of"),
        "avg": _("Average amount of"),
        "min": _("Smallest amount of"),
        "max": _("Largest amount of"),
        "days_since_last": _("Days since the last"),
    }


def _event_labels() -> dict[str, str]:
    return {"order": _("orders"), "page_view": _("page views"), "coupon_redeemed": _("redeemed coupons")}


def _field_labels() -> dict[str, str]:
    return {
        "external_id": _("Customer ID"),
        "name": _("Name"),
        "email": _("E-mail"),
        "phone": _("Phone"),
        "city": _("City"),
        "gender": _("Gender"),
        "source_channel": _("Source channel"),
        "birth_date": _("Birth date"),
        "signup_at": _("Signed up at"),
        # computed attributes (crm_tags.value)
        "rfm_segment": _("RFM segment"),
        "recency_score": _("Recency score (1-5)"),
        "frequency_score": _("Frequency score (1-5)"),
        "monetary_score": _("Monetary score (1-5)"),
        "expected_purchases_90d": _("Expected purchases in 90 days"),
        "p_alive": _("Probability of being active (0-1)"),
        "expected_spend": _("Expected spend per order"),
        "clv_12m": _("12-month customer lifetime value"),
        "lead_score": _("Lead score"),
    }


def _pairs(codes: tuple[str, ...], labels: dict[str, str]) -> list[list[str]]:
    return [[code, labels[code]] for code in codes]


def builder_labels(*, tags: list[Tag]) -> dict[str, Any]:
    """Everything the builder's script shows, translated; choices as [code, words] pairs."""
    ops = _op_labels()
    return {
        "all": _("all of these conditions (AND)"),
        "any": _("any of these conditions (OR)"),
        "match": _("Customers who match"),
        "not": _("Negate: customers who do NOT match this group"),
        "addCondition": _("Add condition"),
        "addGroup": _("Add group"),
        "remove": _("Remove"),
        "conditionKind": _("Condition on"),
        "kinds": [
            ["event", _("what the customer did")],
            ["attr", _("a customer detail")],
            ["tag", _("another tag")],
        ],
        "measure": _("Measure"),
        "eventType": _("Events"),
        "period": _("Period"),
        "periods": [["window", _("in the last … days")], ["all", _("at any time")]],
        "inTheLast": _("in the last"),
        "days": _("days"),
        "comparison": _("Comparison"),
        "value": _("Value"),
        "from": _("from"),
        "to": _("to"),
        "listHint": _("separate values with commas"),
        "empty": _("Empty?"),
        "emptyChoices": [["true", _("yes, it is empty")], ["false", _("no, it has a value")]],
        "attribute": _("Customer detail"),
        "customAttribute": _("other detail …"),
        "attributeKey": _("Detail name"),
        "tagHas": _("Customer"),
        "hasChoices": [["true", _("has the tag")], ["false", _("does not have the tag")]],
        "tagSearch": _("Search tags"),
        "tag": _("Tag"),
        "noTags": _("No other tags yet."),
        "badJson": _("The JSON is not valid; the builder keeps the last valid rule."),
        "aggs": _pairs(AGGS, _agg_labels()),
        "events": _pairs(KNOWN_EVENT_TYPES, _event_labels()),
        "numericOps": _pairs(NUMERIC_OPS, ops),
        "attrOps": _pairs(ATTR_OPS, ops),
        "fields": _pairs((*BUILTIN_FIELDS, *COMPUTED_FIELDS), _field_labels()),
        # computed attributes compare as numbers; the segment is chosen from its words
        "numericFields": [name for name in COMPUTED_FIELDS if name != "rfm_segment"],
        "fieldChoices": {"rfm_segment": [[code, str(label)] for code, label in SEGMENTS.items()]},
        "tags": [{"slug": t.slug, "name": t.name} for t in tags],
    }
