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

_CREDIT = {
    "first_touch": "CASE WHEN rn_first = 1 THEN 1::numeric ELSE 0::numeric END",
    "last_touch": "CASE WHEN rn_last = 1 THEN 1::numeric ELSE 0::numeric END",
    "linear": "1::numeric / n",
}

_SQL = """
WITH journey AS (
    SELECT c.id AS conversion_id, c.revenue, t.channel,
           ROW_NUMBER() OVER (PARTITION BY c.id ORDER BY t.occurred_at, t.id) AS rn_first,
           ROW_NUMBER() OVER (PARTITION BY c.id ORDER BY t.occurred_at DESC, t.id DESC) AS rn_last,
           COUNT(*) OVER (PARTITION BY c.id) AS n
    FROM campaigns_conversion c
    JOIN campaigns_touchpoint t
      ON t.campaign_id = c.campaign_id
     AND t.customer_external_id = c.customer_external_id
     AND t.occurred_at <= c.occurred_at
     AND t.occurred_at >= c.occurred_at - make_interval(days => %(lookback)s)
    WHERE c.campaign_id = %(campaign)s
), credited AS (
    SELECT channel, revenue, {credit} AS credit FROM journey
)
SELECT channel, SUM(credit) AS conversions, SUM(credit * revenue) AS revenue
FROM credited
GROUP BY channel
HAVING SUM(credit) > 0
ORDER BY SUM(credit) DESC, channel
"""

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
        cursor.execute(_SQL.format(credit=_CREDIT[model]), params)
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
