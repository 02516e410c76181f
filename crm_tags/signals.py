"""Signals other apps listen to without crm_tags knowing them."""

from django.dispatch import Signal

# events were written and their transaction committed (sent after the commit; `rows`: how many)
events_committed = Signal()
