import datetime

from django.db import migrations

# Defaults from the design: urgent 30 min / 2 h, routine 4 h / 3 days, planned 2 days / 20 days,
# where a "day" is one working day of the default calendar (09:00-18:00, 9 h = 540 min).
DAY = 9 * 60
POLICIES = [("urgent", 30, 120), ("routine", 240, 3 * DAY), ("planned", 2 * DAY, 20 * DAY)]


def forwards(apps, schema_editor):
    Calendar = apps.get_model("tickets", "BusinessCalendar")
    Hours = apps.get_model("tickets", "WorkingHours")
    Policy = apps.get_model("tickets", "SlaPolicy")
    Counter = apps.get_model("tickets", "TicketCounter")
    Cursor = apps.get_model("tickets", "AssignmentCursor")
    calendar, created = Calendar.objects.get_or_create(
        name="Shanghai office", defaults={"timezone": "Asia/Shanghai"}
    )
    if created:
        Hours.objects.bulk_create(
            Hours(calendar=calendar, weekday=day, start=datetime.time(9), end=datetime.time(18))
            for day in range(5)
        )
    for urgency, first, resolution in POLICIES:
        Policy.objects.get_or_create(
            urgency=urgency,
            defaults={"first_response_minutes": first, "resolution_minutes": resolution, "calendar": calendar},
        )
    Counter.objects.get_or_create(prefix="MT", defaults={"last_number": 1000})
    Cursor.objects.get_or_create(name="support")


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
