"""Urgent work on a round-the-clock calendar by default; a resolution without a reply is the first response.

- A "Round the clock" calendar (every day 00:00-24:00, Asia/Shanghai) is created, and the urgent policy
  moves to it when it still runs on the seeded "Shanghai office" calendar (a 618 outage on Saturday
  must not start its clock on Monday). Tickets already filed keep their due times.
- Requests resolved without any public reply get their resolution time as their first response, and
  their stored SLA state is decided the same way the chip, the dashboard and the API now decide it
  (docs/tickets.md, "First response").
"""

import datetime

from django.db import migrations

ROUND_THE_CLOCK = "Round the clock"


def round_the_clock(apps, schema_editor):
    Calendar = apps.get_model("tickets", "BusinessCalendar")
    Hours = apps.get_model("tickets", "WorkingHours")
    Policy = apps.get_model("tickets", "SlaPolicy")
    calendar, created = Calendar.objects.get_or_create(
        name=ROUND_THE_CLOCK, defaults={"timezone": "Asia/Shanghai"}
    )
    if created:
        Hours.objects.bulk_create(
            Hours(calendar=calendar, weekday=day, start=datetime.time(0), end=datetime.time(0))
            for day in range(7)
        )
    Policy.objects.filter(urgency="urgent", calendar__name="Shanghai office").update(calendar=calendar)


FIRST_RESPONSE_AT_RESOLUTION = """
UPDATE tickets_ticket SET first_response_at = resolved_at
WHERE first_response_at IS NULL AND resolved_at IS NOT NULL;
UPDATE tickets_ticket
SET sla_state = CASE WHEN first_response_at > first_response_due OR resolved_at > resolution_due
                     THEN 'breached' ELSE 'met' END
WHERE status IN ('resolved', 'closed') AND resolved_at IS NOT NULL
  AND first_response_due IS NOT NULL AND resolution_due IS NOT NULL;
"""


class Migration(migrations.Migration):
    dependencies = [("tickets", "0005_sla_calendars")]

    operations = [
        migrations.RunPython(round_the_clock, migrations.RunPython.noop),
        migrations.RunSQL(FIRST_RESPONSE_AT_RESOLUTION, migrations.RunSQL.noop),
    ]
