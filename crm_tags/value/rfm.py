"""RFM: recency, frequency and monetary value scored 1-5 by quintiles of the current base, in SQL, and the
segment each (recency score, frequency score) pair falls in.

Scores follow pandas exactly: a value's score is ``pd.qcut(values, 5, labels=False, duplicates="drop") + 1``
over the base (frequency and monetary; recency is reversed, ``5 - label``, as fewer days since the last
order is better). That is:

- the quintile edges are the base's 0, 20, 40, 60, 80 % quantiles by linear interpolation between the
  sorted values (numpy's default, ``percentile_cont``'s rule), computed in double precision with the very
  fractions and operations pandas uses (``np.linspace`` fractions rounded up to the next double where
  not exact, numpy's two-sided lerp), so that the edges agree bit for bit;
- ties never split: equal values always share a score. Edges that coincide (a value shared by more
  than a fifth of the base) are merged, so a column with big ties uses fewer than five scores: when 70 %
  of the customers have one order, frequency scores are 1 and 2 only. A base where everyone has the same
  value scores everyone 1 (where pandas leaves them unlabelled);
- bins are closed on the right: a value equal to an edge takes the lower score.

Customers whose value is NULL in a column are not scored in it and have no segment.
"""

import numpy as np
from django.db import connections
from django.utils.translation import gettext_lazy as _

# The segment of each (recency score, frequency score): rows are recency 5 (bought lately) down to 1,
# columns frequency 1 (one order) up to 5. The monetary score does not enter the segment.
SEGMENT_GRID: dict[int, tuple[str, str, str, str, str]] = {
    #    F=1               F=2                    F=3                    F=4                F=5
    5: ("new_customers", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal_customers", "loyal_customers"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal_customers", "loyal_customers"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose_them"),
    1: ("lost", "lost", "at_risk", "at_risk", "cannot_lose_them"),
}

SEGMENTS = {
    "champions": _("Champions"),
    "loyal_customers": _("Loyal customers"),
    "potential_loyalists": _("Potential loyalists"),
    "new_customers": _("New customers"),
    "promising": _("Promising"),
    "need_attention": _("Need attention"),
    "about_to_sleep": _("About to sleep"),
    "at_risk": _("At risk of churning"),
    "cannot_lose_them": _("Cannot lose them"),
    "hibernating": _("Hibernating"),
    "lost": _("Lost"),
}


def _pandas_quintile_fractions() -> list[float]:
    """The interior fractions pd.qcut(x, 5) asks np.quantile for (0.6 comes out as 0.6000000000000002)."""
    fractions = np.linspace(0, 1, 6)
    np.putmask(fractions, 5 * fractions != np.arange(6), np.nextafter(fractions, 1))
    return [float(f) for f in fractions[1:5]]


QUINTILE_FRACTIONS = _pandas_quintile_fractions()


def segment_of(recency_score: int, frequency_score: int) -> str:
    """The segment of a (recency score, frequency score) pair, both 1-5."""
    return SEGMENT_GRID[recency_score][frequency_score - 1]


def _cuts(column: str) -> str:
    """One row with the column's distinct interior quintile edges above its minimum, ascending."""
    fractions = ", ".join(f"'{f!r}'::float8" for f in QUINTILE_FRACTIONS)
    # only the column names of rfm_scores_sql and constants are formatted in
    return (
        "SELECT ARRAY(SELECT DISTINCT edge FROM ("  # noqa: S608
        # numpy's lerp: from the lower neighbour below the middle, from the upper one from it on
        " SELECT CASE WHEN t >= 0.5 THEN b - (b - a) * (1 - t) ELSE a + (b - a) * t END AS edge FROM ("
        "  SELECT sorted.v[lo + 1] AS a, COALESCE(sorted.v[lo + 2], sorted.v[lo + 1]) AS b, h - lo AS t FROM ("
        "   SELECT h, floor(h)::bigint AS lo FROM ("
        f"    SELECT q * (sorted.n - 1)::float8 AS h FROM unnest(ARRAY[{fractions}]) AS q) AS heights"
        "  ) AS positions) AS neighbours) AS edges"
        " WHERE edge > sorted.v[1] ORDER BY edge) AS cuts"
        f" FROM (SELECT array_agg({column} ORDER BY {column}) FILTER (WHERE {column} IS NOT NULL) AS v,"
        f" count({column}) AS n FROM source) AS sorted"
    )


def _label(column: str, cuts: str) -> str:
    """The 0-based qcut label: how many edges the value exceeds (bins are closed on the right)."""
    above = " + ".join(f"COALESCE(({column} > {cuts}[{i}])::int, 0)" for i in range(1, 5))
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {above} END"


def rfm_scores_sql(source: str) -> str:
    """A query scoring every row of `source` (SQL text, written by code, never by a person, with columns
    customer_id, recency, frequency and monetary, numbers): customer_id, recency_score, frequency_score,
    monetary_score (1-5) and segment. Recency is the time since the last order (any unit: only its order
    counts), frequency the number of orders, monetary their value (total or mean, the caller's choice)."""
    segments = ", ".join(f"'{segment_of(r, f)}'" for r in range(1, 6) for f in range(1, 6))
    # the source is SQL text written by code (see the docstring); everything else is constant. The cuts
    # are MATERIALIZED: inlined, each score would recompute them from the column's whole array, per row
    return (
        "WITH source AS (SELECT customer_id, recency::float8 AS recency, frequency::float8 AS frequency,"  # noqa: S608
        f" monetary::float8 AS monetary FROM ({source}) AS given),"
        f" recency_cuts AS MATERIALIZED ({_cuts('recency')}),"
        f" frequency_cuts AS MATERIALIZED ({_cuts('frequency')}),"
        f" monetary_cuts AS MATERIALIZED ({_cuts('monetary')}),"
        " scored AS (SELECT s.customer_id,"
        f" 5 - ({_label('s.recency', 'rc.cuts')}) AS recency_score,"
        f" 1 + ({_label('s.frequency', 'fc.cuts')}) AS frequency_score,"
        f" 1 + ({_label('s.monetary', 'mc.cuts')}) AS monetary_score"
        " FROM source s CROSS JOIN recency_cuts rc CROSS JOIN frequency_cuts fc CROSS JOIN monetary_cuts mc)"
        " SELECT customer_id, recency_score, frequency_score, monetary_score,"
        f" (ARRAY[{segments}])[(recency_score - 1) * 5 + frequency_score] AS segment FROM scored"
    )


def rfm_scores(source: str, params: tuple | list = (), *, using: str = "default") -> list[tuple]:
    """The rows of rfm_scores_sql(source) run with these parameters on this database."""
    with connections[using].cursor() as cursor:
        cursor.execute(rfm_scores_sql(source), params)
        return cursor.fetchall()
