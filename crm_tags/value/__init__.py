"""Customer value, computed: the BG/NBD and Gamma-Gamma models (fit, expected purchases, P(alive),
expected spend, CLV), the purchase summary they read, and RFM scores and segments in SQL. Pure
computation: no models, no writes; callers decide what to store."""

from crm_tags.value.bg_nbd import (
    BgNbdFit,
    BgNbdParams,
    bg_nbd_fit,
    bg_nbd_log_likelihood,
    expected_purchases,
    p_alive,
)
from crm_tags.value.gamma_gamma import (
    PERIODS_PER_MONTH,
    GammaGammaFit,
    GammaGammaParams,
    customer_lifetime_value,
    expected_spend,
    gamma_gamma_fit,
)
from crm_tags.value.likelihood import ValueModelError
from crm_tags.value.rfm import SEGMENT_GRID, SEGMENTS, rfm_scores, rfm_scores_sql, segment_of
from crm_tags.value.summary import TIME_UNIT_DAYS, purchase_summary

__all__ = [
    "PERIODS_PER_MONTH",
    "SEGMENTS",
    "SEGMENT_GRID",
    "TIME_UNIT_DAYS",
    "BgNbdFit",
    "BgNbdParams",
    "GammaGammaFit",
    "GammaGammaParams",
    "ValueModelError",
    "bg_nbd_fit",
    "bg_nbd_log_likelihood",
    "customer_lifetime_value",
    "expected_purchases",
    "expected_spend",
    "gamma_gamma_fit",
    "p_alive",
    "purchase_summary",
    "rfm_scores",
    "rfm_scores_sql",
    "segment_of",
]
