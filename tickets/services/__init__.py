"""Writes for tickets: each one a transaction that validates, saves, records the audit trail and
notifies after commit. Pages, the API, tasks and scripts all go through these functions.

One module per concern; this package re-exports the public names, so `from tickets.services import X`
and `services.X` keep working."""

from tickets.services.alerts import (
    AlertIntakeUnavailable,
    IncomingAlert,
    alerts_receive,
    labels_fingerprint,
)
from tickets.services.calendars import (
    StatutoryYearUnknown,
    calendar_create,
    calendar_load_statutory,
    calendar_update,
)
from tickets.services.close_out import auto_close_resolved, rating_submit, retrospective_save
from tickets.services.conversation import MENTION_RE, comment_add, watcher_toggle
from tickets.services.errors import (
    TicketConflict,
    TransitionDataMissing,
    TransitionError,
    TransitionForbidden,
    TransitionNotAllowed,
)
from tickets.services.intake import (
    KEY_PREFIX,
    attachments_validate,
    intake_from_im,
    next_key,
    round_robin_agent,
    ticket_create,
)
from tickets.services.links import link_add, link_remove, saved_view_delete, saved_view_save
from tickets.services.plans import plan_review, plan_save
from tickets.services.sla_alerts import sla_scan
from tickets.services.sla_policies import (
    DEFAULT_POLICIES,
    OFFICE_CALENDAR,
    ROUND_THE_CLOCK_CALENDAR,
    sla_defaults_ensure,
    sla_policy_update,
)
from tickets.services.triage import TRIAGE_FIELDS, bulk_assign, ticket_assign, ticket_update_triage
from tickets.services.workflow import (
    bulk_transition,
    ticket_accept,
    ticket_reject_delivery,
    ticket_transition,
)

__all__ = [
    "AlertIntakeUnavailable",
    "IncomingAlert",
    "DEFAULT_POLICIES",
    "KEY_PREFIX",
    "MENTION_RE",
    "OFFICE_CALENDAR",
    "ROUND_THE_CLOCK_CALENDAR",
    "TRIAGE_FIELDS",
    "StatutoryYearUnknown",
    "TicketConflict",
    "TransitionDataMissing",
    "TransitionError",
    "TransitionForbidden",
    "TransitionNotAllowed",
    "alerts_receive",
    "attachments_validate",
    "auto_close_resolved",
    "bulk_assign",
    "bulk_transition",
    "calendar_create",
    "calendar_load_statutory",
    "calendar_update",
    "comment_add",
    "intake_from_im",
    "labels_fingerprint",
    "link_add",
    "link_remove",
    "next_key",
    "plan_review",
    "plan_save",
    "rating_submit",
    "retrospective_save",
    "round_robin_agent",
    "saved_view_delete",
    "saved_view_save",
    "sla_defaults_ensure",
    "sla_policy_update",
    "sla_scan",
    "ticket_accept",
    "ticket_assign",
    "ticket_create",
    "ticket_reject_delivery",
    "ticket_transition",
    "ticket_update_triage",
    "watcher_toggle",
]
