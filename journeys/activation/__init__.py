"""Audience activation: a tag's or a campaign audience's members synced to a destination (webhook batches or
a CSV file), delta or snapshot, with the consent purpose filter, a sync log and retries (docs/journeys.md,
"Audience activation").

- audience.py: who is in an audience now (set-based SQL, consent filter) and the staged delta;
- files.py: the file root, path confinement, atomic CSV writing;
- sync.py: running a sync (staging, batches, sending, the baseline moved only on success);
- services.py: the writes people make (destinations, schedules, start and retry a sync), audited;
- schedules.py: the beat's due schedules and the after-build hook; selectors.py: the sync log;
- api.py / tasks.py: the REST endpoints and Celery entry points.
"""
