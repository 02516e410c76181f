"""Attribution of a campaign's conversions to channels, computed in Postgres.

Each conversion looks back `lookback_days` (inclusive) at the same customer's touchpoints up to the
conversion time and splits one conversion (and its revenue) across them:

- first touch: all to the earliest touch; last touch: all to the latest (ties by the order of import);
- linear: evenly across the touches;
- position based (U-shaped, as HubSpot defines it): one touch takes 100 %; two touches 50 % each; three
  or more give 40 % to the first, 40 % to the last and share 20 % evenly among those in between;
- time decay: a touch's weight halves every `half_life_days` before the conversion
  (weight = 2^(-age / half-life)), and the weights of one conversion are scaled to sum to 1.

A channel's credit is the sum of its touches' weights over all conversions. Credits are then rounded
with the largest-remainder method, so the channels add up exactly to the attributed totals (the number
of conversions with a touch in the window, and their revenue): revenue to the cent, conversions to
`conversion_places` decimals. Each rounded credit is within one unit (a cent, 10^-places) of the exact
one. Conversions with no touchpoint in the window are reported as unattributed.
"""

from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any

from django.db import connection

from campaigns.models import Campaign

MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")
DEFAULT_LOOKBACK_DAYS = 30
MAX_LOOKBACK_DAYS = 365
DEFAULT_HALF_LIFE_DAYS = 7
MAX_HALF_LIFE_DAYS = 365
# What the API shows of a credited conversion count; the page shows 2.
CONVERSION_PLACES = 6
CENT = Decimal("0.01")

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
"""

# Weights carry 30 decimals (numeric), so a credit summed over millions of conversions of up to 10^12
# each is still far inside a cent of the exact share before it is rounded.
_SCALE = "numeric(60, 30)"

_TOUCH_WEIGHTS = {
    "linear": """
        SELECT t.channel, 1::{scale} / COUNT(*) OVER () AS weight
        FROM campaigns_touchpoint t
        WHERE {window}
    """,
    "position_based": """
        SELECT p.channel,
               CASE WHEN p.n = 1 THEN 1
                    WHEN p.n = 2 THEN 0.5
                    WHEN p.pos = 1 OR p.pos = p.n THEN 0.4
                    ELSE 0.2::{scale} / (p.n - 2) END AS weight
        FROM (
            SELECT t.channel, row_number() OVER (ORDER BY t.occurred_at, t.id) AS pos, COUNT(*) OVER () AS n
            FROM campaigns_touchpoint t
            WHERE {window}
        ) p
    """,
    # float8 for the power (numeric's is slow); its relative error (1e-16) stays far below a cent
    "time_decay": """
        SELECT d.channel, (d.raw / SUM(d.raw) OVER ())::{scale} AS weight
        FROM (
            SELECT t.channel,
                   power(0.5::float8, extract(epoch FROM c.occurred_at - t.occurred_at)::float8
                                      / (%(half_life)s * 86400.0)) AS raw
            FROM campaigns_touchpoint t
            WHERE {window}
        ) d
    """,
}

_WEIGHTED_SQL = """
SELECT x.channel, SUM(x.weight) AS conversions, SUM(x.weight * c.revenue) AS revenue
FROM campaigns_conversion c
CROSS JOIN LATERAL (
    SELECT w.channel, SUM(w.weight) AS weight
    FROM ({weights}) w
    GROUP BY w.channel
) x
WHERE c.campaign_id = %(campaign)s
GROUP BY x.channel
"""

_SQL = {
    "first_touch": _SINGLE_TOUCH_SQL.format(window=_WINDOW, direction="ASC"),
    "last_touch": _SINGLE_TOUCH_SQL.format(window=_WINDOW, direction="DESC"),
    **{
        model: _WEIGHTED_SQL.format(weights=sql.format(window=_WINDOW, scale=_SCALE))
        for model, sql in _TOUCH_WEIGHTS.items()
    },
}

# The exact totals the channels must add up to (touched), and what no channel gets: one look-up per
# conversion, grouped (at most two rows).
_TOTALS_TEMPLATE = """
SELECT EXISTS (SELECT 1 FROM campaigns_touchpoint t WHERE {window}) AS touched,
       COUNT(*), COALESCE(SUM(c.revenue), 0)
FROM campaigns_conversion c
WHERE c.campaign_id = %(campaign)s
GROUP BY 1
"""
_TOTALS_SQL = _TOTALS_TEMPLATE.format(window=_WINDOW)


class UnknownModel(ValueError):
    def __init__(self, model: str) -> None:
        super().__init__(f"Unknown attribution model {model!r}; choose one of: {', '.join(MODELS)}.")


def apportion(shares: list[Decimal], total: Decimal, unit: Decimal) -> list[Decimal]:
    """`shares` rounded to multiples of `unit` that add up to `total` exactly (largest remainder).

    Each share first takes its whole units; the units still missing go one each to the shares with the
    largest remainders (ties to the earlier share). `total` is a multiple of `unit` and the shares add
    up to it within far less than a unit, so each result is within one unit of its share.
    """
    if not shares:
        return []
    with localcontext() as ctx:
        ctx.prec = 60
        scaled = [share / unit for share in shares]
        units = [int(x.to_integral_value(rounding=ROUND_FLOOR)) for x in scaled]
        missing = int((total / unit).to_integral_value()) - sum(units)
        by_remainder = sorted(range(len(shares)), key=lambda i: (-(scaled[i] - units[i]), i))
        # `missing` is 0 to len(shares) - 1 unless the shares were off by a unit or more; the loops keep
        # the sum exact even then
        while missing > 0:
            for i in by_remainder[:missing]:
                units[i] += 1
            missing -= min(missing, len(by_remainder))
        while missing < 0:
            for i in reversed(by_remainder):
                if missing < 0 and units[i] > 0:
                    units[i] -= 1
                    missing += 1
        return [unit * n for n in units]


def attribute(
    *,
    campaign: Campaign,
    model: str,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    half_life_days: int = DEFAULT_HALF_LIFE_DAYS,
    conversion_places: int = CONVERSION_PLACES,
) -> dict[str, Any]:
    """`{model, lookback_days, half_life_days, channels: [{channel, conversions, revenue}], attributed: {...},
    unattributed: {...}}`; the channels add up exactly to `attributed`. Two queries."""
    if model not in MODELS:
        raise UnknownModel(model)
    params = {"campaign": campaign.pk, "lookback": int(lookback_days), "half_life": int(half_life_days)}
    with connection.cursor() as cursor:
        cursor.execute(_SQL[model], params)
        rows = sorted(cursor.fetchall())  # by channel: ties in the rounding go to the earlier name
        cursor.execute(_TOTALS_SQL, params)
        totals = {touched: (count, revenue) for touched, count, revenue in cursor.fetchall()}
    attributed_count, attributed_revenue = totals.get(True, (0, Decimal(0)))
    unattributed_count, unattributed_revenue = totals.get(False, (0, Decimal(0)))
    channels = [row[0] for row in rows]
    conversions = apportion(
        [Decimal(row[1]) for row in rows], Decimal(attributed_count), Decimal(1).scaleb(-conversion_places)
    )
    revenue = apportion([Decimal(row[2]) for row in rows], Decimal(attributed_revenue), CENT)
    credited = sorted(zip(channels, conversions, revenue, strict=True), key=lambda r: (-r[1], r[0]))
    return {
        "model": model,
        "lookback_days": int(lookback_days),
        "half_life_days": int(half_life_days) if model == "time_decay" else None,
        "channels": [
            {"channel": channel, "conversions": float(count), "revenue": float(money)}
            for channel, count, money in credited
        ],
        "attributed": {"conversions": int(attributed_count), "revenue": float(attributed_revenue)},
        "unattributed": {"conversions": int(unattributed_count), "revenue": float(unattributed_revenue)},
    }
