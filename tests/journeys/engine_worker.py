"""A real engine worker for tests: a separate process that runs `engine.run_due` against the database named
by DATABASE_URL and stops in the middle of batch number `block_at` (its step runs and deliveries written,
not committed), says so on stdout and waits there until it is killed.

    python -m tests.journeys.engine_worker BATCH_SIZE BLOCK_AT

The line it prints when it stops is `mid-batch <backend pid> <enrolment ids claimed>`; the test waits for it
(a condition, not a sleep) and SIGKILLs the process.
"""

import os
import sys


def main() -> None:
    batch_size, block_at = int(sys.argv[1]), int(sys.argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    from config.celery import app as celery_app
    from journeys import engine

    # what a batch queues after it commits (sending its webhook requests) runs here, in this worker
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    batches = {"n": 0}
    save = engine.Runner.save

    def save_then_stop(runner: engine.Runner) -> None:
        save(runner)
        batches["n"] += 1
        if batches["n"] == block_at:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            ids = ",".join(str(e.pk) for e in runner.enrolments)
            print(f"mid-batch {pid} {ids}", flush=True)
            sys.stdin.read()  # blocks until the test kills this process (the test never closes it)

    engine.Runner.save = save_then_stop  # type: ignore[method-assign]
    print(f"ran {engine.run_due(batch_size=batch_size)}", flush=True)


if __name__ == "__main__":
    main()
