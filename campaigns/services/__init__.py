"""Writes for campaigns: one transaction each, audited, side effects after commit.

One module per concern: guards (who may change a campaign), lifecycle (plan and status), budget_warnings,
import_cells (the CSV cells), daily_metrics and journey_imports (the imports), plan_tasks, utm_links,
ab_tests, reviews and journey_privacy (erasure and retention of journeys). Every name is re-exported
here, so `from campaigns.services import X` and `services.X` keep working.
"""

from campaigns.services import (
    ab_tests,
    budget_warnings,
    daily_metrics,
    guards,
    import_cells,
    journey_imports,
    journey_privacy,
    lifecycle,
    plan_tasks,
    reviews,
    utm_links,
)
from campaigns.services.ab_tests import (
    VARIANT_COLUMNS,
    _variant_count,
    ab_test_create,
    ab_test_result,
    ab_variant_update,
    ab_variants_import,
)
from campaigns.services.budget_warnings import _budget_warnings
from campaigns.services.daily_metrics import (
    METRIC_COLUMNS,
    ImportNeedsConfirmation,
    _metric_warnings,
    metrics_import,
)
from campaigns.services.guards import TransitionNotAllowed, _require_edit
from campaigns.services.import_cells import (
    _number_problem,
    _parse_channel,
    _parse_count,
    _parse_decimal,
    _parse_moment,
)
from campaigns.services.journey_imports import (
    CONVERSION_COLUMNS,
    TOUCHPOINT_COLUMNS,
    TOUCHPOINT_OPTIONAL,
    _journey_import,
    conversions_import,
    touchpoints_import,
)
from campaigns.services.journey_privacy import (
    _journeys_delete_batch,
    customer_references_pseudonymise,
    journeys_delete_before,
)
from campaigns.services.lifecycle import (
    MANUAL_TRANSITIONS,
    PLAN_FIELDS,
    RESERVED_CODES,
    _clean_channels,
    _json_value,
    _target_status_for_dates,
    campaign_approve,
    campaign_create,
    campaign_set_status,
    campaign_update,
    campaigns_follow_dates,
)
from campaigns.services.plan_tasks import task_create, task_delete, task_set_done
from campaigns.services.reviews import _review_markdown, knowledge_base_available, review_publish, review_save
from campaigns.services.utm_links import utm_link_create
from config.split_package import forward_patches

__all__ = [
    "CONVERSION_COLUMNS",
    "MANUAL_TRANSITIONS",
    "METRIC_COLUMNS",
    "PLAN_FIELDS",
    "RESERVED_CODES",
    "TOUCHPOINT_COLUMNS",
    "TOUCHPOINT_OPTIONAL",
    "VARIANT_COLUMNS",
    "ImportNeedsConfirmation",
    "TransitionNotAllowed",
    "_budget_warnings",
    "_clean_channels",
    "_journey_import",
    "_journeys_delete_batch",
    "_json_value",
    "_metric_warnings",
    "_number_problem",
    "_parse_channel",
    "_parse_count",
    "_parse_decimal",
    "_parse_moment",
    "_require_edit",
    "_review_markdown",
    "_target_status_for_dates",
    "_variant_count",
    "ab_test_create",
    "ab_test_result",
    "ab_variant_update",
    "ab_variants_import",
    "campaign_approve",
    "campaign_create",
    "campaign_set_status",
    "campaign_update",
    "campaigns_follow_dates",
    "conversions_import",
    "customer_references_pseudonymise",
    "journeys_delete_before",
    "knowledge_base_available",
    "metrics_import",
    "review_publish",
    "review_save",
    "task_create",
    "task_delete",
    "task_set_done",
    "touchpoints_import",
    "utm_link_create",
]

_MODULES = (
    ab_tests,
    budget_warnings,
    daily_metrics,
    guards,
    import_cells,
    journey_imports,
    journey_privacy,
    lifecycle,
    plan_tasks,
    reviews,
    utm_links,
)


forward_patches(__name__, _MODULES)  # a patch on the package reaches the module that reads the name
