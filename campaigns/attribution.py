"""Attribution of a campaign's conversions to channels, computed in Postgres.

Each conversion looks back `lookback_days` (inclusive) at the same customer's touchpoints up to the
conversion time. First touch credits the earliest, last touch the latest, linear splits one
conversion (and its revenue) evenly across all of them. Conversions with no touchpoint in the
window are reported as unattributed.
"""

from decimal import Decimal
from typing import Any

from django.db import connection

from campaigns.models import Campaign

MODELS = ("first_touch", "last_touch", "linear")
DEFAULT_LOOKBACK_DAYS = 30

# Each conversion reads its own customer's touchpoints in the window through the
# (campaign, customer, occurred_at) index: a LATERAL look-up per conversion, no sort of the whole join.
_WINDOW = """
      t.campaign_id = c.campaign_id
      AND t.customer_external_id = c.customer_external_id
      AND t.occurred_at <= c.occurred_at
      AND t.occurred_at >= c.occurred_at - make_interval(days => %(lookback)s)
"""

_SINGLE_TOUCH_SQL = """
SELECT x.channel, COUNT(*)::numeric AS conversions, SUM(c.revenue) AS revenue
FROM campaigns_conversion c
CROSS JOIN LATERAL (
    SELECT t.channel FROM campaigns_touchpoint t
    WHERE {window}
    ORDER BY t.occurred_at {direction}, t.id {direction}
    LIMIT 1
) x
WHERE c.campaign_id = %(campaign)s
GROUP BY x.channel
ORDER BY conversions DESC, x.channel
"""

_LINEAR_SQL = """
SELECT x.channel, SUM(x.n::numeric / x.total) AS conversions, SUM(x.n::numeric / x.total * c.revenue) AS revenue
FROM campaigns_conversion c
CROSS JOIN LATERAL (
    SELECT t.channel, COUNT(*) AS n, SUM(COUNT(*)) OVER () AS total
    FROM campaigns_touchpoint t
    WHERE {window}
    GROUP BY t.channel
) x
WHERE c.campaign_id = %(campaign)s
GROUP BY x.channel
ORDER BY conversions DESC, x.channel
"""

_SQL = {
    "first_touch": _SINGLE_TOUCH_SQL.format(window=_WINDOW, direction="ASC"),
    "last_touch": _SINGLE_TOUCH_SQL.format(window=_WINDOW, direction="DESC"),
    "linear": _LINEAR_SQL.format(window=_WINDOW),
}

_UNATTRIBUTED_SQL = """
SELECT COUNT(*), COALESCE(SUM(c.revenue), 0)
FROM campaigns_conversion c
WHERE c.campaign_id = %(campaign)s
  AND NOT EXISTS (
    SELECT 1 FROM campaigns_touchpoint t
    WHERE t.campaign_id = c.campaign_id
      AND t.customer_external_id = c.customer_external_id
      AND t.occurred_at <= c.occurred_at
      AND t.occurred_at >= c.occurred_at - make_interval(days => %(lookback)s)
  )
"""


class UnknownModel(ValueError):
    def __init__(self, model: str) -> None:
        super().__init__(f"Unknown attribution model {model!r}; choose one of: {', '.join(MODELS)}.")


def attribute(
    *, campaign: Campaign, model: str, lookback_days: int = DEFAULT_LOOKBACK_DAYS
) -> dict[str, Any]:
    """`{model, lookback_days, channels: [{channel, conversions, revenue}], unattributed: {...}}`."""
    if model not in MODELS:
        raise UnknownModel(model)
    params = {"campaign": campaign.pk, "lookback": int(lookback_days)}
    with connection.cursor() as cursor:
        cursor.execute(_SQL[model], params)
        rows = cursor.fetchall()
        cursor.execute(_UNATTRIBUTED_SQL, params)
        unattributed_count, unattributed_revenue = cursor.fetchone()
    return {
        "model": model,
        "lookback_days": int(lookback_days),
        "channels": [
            {
                "channel": channel,
                "conversions": float(round(Decimal(conversions), 6)),
                "revenue": float(round(Decimal(revenue), 2)),
            }
            for channel, conversions, revenue in rows
        ],
        "unattributed": {"conversions": int(unattributed_count), "revenue": float(unattributed_revenue)},
    }
