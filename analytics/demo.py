"""Demo data for analytics: the demo manager's weekly e-mail reports (the figures come from the other apps)."""

from typing import TextIO

from accounts.models import User
from analytics.models import ReportSubscription


def seed(stdout: TextIO, small: bool = False) -> None:
    """Subscribe the demo manager to both weekly reports (Monday 08:00); running it again changes nothing."""
    manager = User.objects.filter(username="manager").first()
    if manager is None:
        stdout.write("analytics: no demo manager; skipped")
        return
    created = 0
    for kind in ReportSubscription.Kind.values:
        _subscription, was_created = ReportSubscription.objects.get_or_create(
            owner=manager, kind=kind, defaults={"weekday": ReportSubscription.Weekday.MONDAY, "hour": 8}
        )
        created += int(was_created)
    stdout.write(f"analytics: {created} weekly report subscriptions created")
