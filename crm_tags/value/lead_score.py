"""Lead score: points per event of a type, decaying with a half-life from the event's time to as_of, plus
points once for each attribute condition a customer meets; one SQL statement for the whole base.

A rule of kind "event" gives `points * 0.5 ** (age in days / half_life_days)` for each event of its type at
or before as_of (no half-life: the full points, however old); a rule of kind "attribute" gives its points
to every customer its condition (an attribute leaf of the tag rule language) matches.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm_tags.models import LeadScoreRule
from crm_tags.rules import COMPUTED_FIELDS, EVENT_TYPE, compile_rule, validate_rule

MAX_POINTS = Decimal("10000000")
MAX_HALF_LIFE_DAYS = 36600


class LeadScoreRuleInvalid(ValueError):
    """A lead score rule that does not validate; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


def lead_score_rule_errors(
    *, kind: str, event_type: str, condition: Any, points: Any, half_life_days: Any
) -> dict[str, str]:
    """Each field's problem (empty when the rule is valid)."""
    errors: dict[str, str] = {}
    if kind == LeadScoreRule.Kind.EVENT:
        if not isinstance(event_type, str) or not EVENT_TYPE.match(event_type):
            errors["event_type"] = _("must be an event type such as page_view or order")
        if condition not in (None, {}):
            errors["condition"] = _("an event rule takes no condition")
    elif kind == LeadScoreRule.Kind.ATTRIBUTE:
        if event_type:
            errors["event_type"] = _("an attribute rule takes no event type")
        if not isinstance(condition, dict) or "attr" not in condition:
            errors["condition"] = _(
                'must be an attribute condition such as {"attr": "city", "op": "=", "value": "Shanghai"}'
            )
        elif condition.get("attr") in COMPUTED_FIELDS:
            errors["condition"] = _("may not read a computed value (%(name)s)") % {"name": condition["attr"]}
        else:
            problems = validate_rule(condition)
            if problems:
                errors["condition"] = "; ".join(f"{p.path or '(root)'}: {p.message}" for p in problems)
        if half_life_days is not None:
            errors["half_life_days"] = _("only event rules decay")
    else:
        errors["kind"] = _("must be event or attribute")
    try:
        number = Decimal(str(points))
        if not number.is_finite() or abs(number) > MAX_POINTS or number != round(number, 2):
            raise ValueError
    except (ArithmeticError, ValueError):
        errors["points"] = _("must be a number from -10,000,000 to 10,000,000 with at most two decimals")
    if half_life_days is not None and (
        not isinstance(half_life_days, int)
        or isinstance(half_life_days, bool)
        or not 1 <= half_life_days <= MAX_HALF_LIFE_DAYS
    ):
        errors["half_life_days"] = _("must be a whole number of days from 1 to %(n)d") % {
            "n": MAX_HALF_LIFE_DAYS
        }
    return errors


@transaction.atomic
def lead_score_rule_save(*, rule: LeadScoreRule | None = None, **fields: Any) -> LeadScoreRule:
    """Create a rule (rule=None) or change one; raises LeadScoreRuleInvalid. Scores follow at the next
    recompute (the scheduled one, or lead_scores_recompute)."""
    rule = rule or LeadScoreRule()
    for name, value in fields.items():
        setattr(rule, name, value)
    errors = lead_score_rule_errors(
        kind=rule.kind,
        event_type=rule.event_type,
        condition=rule.condition,
        points=rule.points,
        half_life_days=rule.half_life_days,
    )
    if not (isinstance(rule.name, str) and rule.name.strip()):
        errors["name"] = _("is required")
    if errors:
        raise LeadScoreRuleInvalid(errors)
    rule.save()
    return rule


def lead_score_rule_delete(*, rule: LeadScoreRule) -> None:
    """Remove a rule; scores follow at the next recompute."""
    rule.delete()


def lead_scores_sql(as_of: datetime) -> tuple[str, list[Any]]:
    """A query of (customer_id, lead_score) for every customer, with its parameters."""
    rules = list(LeadScoreRule.objects.filter(active=True).order_by("id"))
    event_rules = [r for r in rules if r.kind == LeadScoreRule.Kind.EVENT]
    attribute_rules = [r for r in rules if r.kind == LeadScoreRule.Kind.ATTRIBUTE]
    terms = ["0::float8"]
    params: list[Any] = []
    for rule in attribute_rules:
        compiled = compile_rule(rule.condition, as_of=as_of)
        terms.append(f"CASE WHEN c.id IN ({compiled.sql}) THEN %s::float8 ELSE 0 END")
        params += [*compiled.params, float(rule.points)]
    sql = f"SELECT c.id AS customer_id, {' + '.join(terms)}"  # noqa: S608 (compiled rules and constants)
    if event_rules:
        # one scan of the rules' event types up to as_of; each event's points halve every half-life
        sql += (
            " + COALESCE(ev.points, 0) AS lead_score FROM crm_tags_customer c LEFT JOIN ("
            "SELECT e.customer_id, sum(r.points * CASE WHEN r.half_life IS NULL THEN 1 ELSE"
            " power(0.5::float8, extract(epoch FROM (%s - e.occurred_at))::float8 / 86400 / r.half_life) END)"
            " AS points FROM crm_tags_event e JOIN unnest(%s::text[], %s::float8[], %s::float8[])"
            " AS r(event_type, points, half_life) ON e.event_type = r.event_type"
            " WHERE e.occurred_at <= %s GROUP BY e.customer_id) ev ON ev.customer_id = c.id"
        )
        params += [
            as_of,
            [r.event_type for r in event_rules],
            [float(r.points) for r in event_rules],
            [r.half_life_days for r in event_rules],
            as_of,
        ]
    else:
        sql += " AS lead_score FROM crm_tags_customer c"
    return sql, params


@transaction.atomic
def lead_scores_recompute(*, as_of: datetime | None = None) -> int:
    """Refresh the stored lead score of every customer with a stored value (one statement); returns how
    many changed. `as_of` defaults to the end of the stored values' day."""
    from crm_tags.value.store import as_of_moment, stored_as_of

    day = stored_as_of()
    if day is None:
        return 0
    moment = as_of or as_of_moment(day)
    sql, params = lead_scores_sql(moment)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE crm_tags_customervalue v SET lead_score = s.lead_score, computed_at = %s"  # noqa: S608
            f" FROM ({sql}) s WHERE s.customer_id = v.customer_id AND v.lead_score IS DISTINCT FROM s.lead_score",
            [timezone.now(), *params],
        )
        return cursor.rowcount
