"""Connection pooling: a slice of the suite run through Debian's PgBouncer in transaction mode.

The test starts its own `pgbouncer` on a free loopback port in front of this machine's Postgres, makes a
copy of this run's migrated test database (CREATE DATABASE ... TEMPLATE, straight on Postgres: Django's
test-database creation and dropping are no work for a pooler holding server connections to it), and runs
chosen modules in a `pytest --reuse-db` subprocess whose DATABASE_URL is the pooler's, with
DATABASE_POOLER=pgbouncer. PgBouncer's own statistics prove the traffic went through it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from config.pooling import require_session_connection
from tests.scaling.postgres_cluster import SUPERUSER, free_port, pg_tool, wait_for

PGBOUNCER = "/usr/sbin/pgbouncer"
POOLED_DATABASE = f"{settings.DATABASES['default']['TEST']['NAME']}_pooled"
# A representative slice: ticket writes (locks, SLA, audit), rule builds (one statement per rule, SET
# LOCAL tuning, INSERT ... SELECT memberships), journeys' steps (claims with SKIP LOCKED), dashboard
# aggregates and report jobs (COPY on a connection of its own, its transactional tests included).
SLICE = [
    "tests/tickets/test_services.py",
    "tests/crm_tags/test_services.py",
    "tests/journeys/test_steps.py",
    "tests/analytics/test_support_figures.py",
    "tests/analytics/test_report_jobs.py",
]

CONFIG = """
[databases]
* = host={host} port={port}{password}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 8
admin_users = {user}
stats_users = {user}
ignore_startup_parameters = extra_float_digits
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""


@dataclass
class Bouncer:
    port: int
    folder: Path
    user: str

    def admin(self, command: str) -> list[dict[str, str]]:
        """A command of PgBouncer's admin console, as rows of column → value."""
        result = subprocess.run(  # noqa: S603
            [pg_tool("psql"), "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "pgbouncer"]
            + ["--csv", "-c", command],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        lines = result.stdout.strip().splitlines()
        header = lines[0].split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _direct_psql(statement: str) -> None:
    db = settings.DATABASES["default"]
    argv = [pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", statement]
    argv += ["-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432), "-U", db["USER"]]
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)  # noqa: S603
    assert done.returncode == 0, f"{statement}: {done.stderr.strip()}"


@pytest.fixture
def pgbouncer() -> Iterator[Bouncer]:
    if not os.path.exists(PGBOUNCER):
        pytest.skip(f"{PGBOUNCER} is missing (apt-get install pgbouncer)")
    if pg_tool("psql") is None:
        pytest.skip("psql is missing (apt-get install postgresql-client)")
    db = settings.DATABASES["default"]
    folder = Path(tempfile.mkdtemp(prefix="martech-pgbouncer-"))
    user = db["USER"] or SUPERUSER
    (folder / "userlist.txt").write_text(f'"{user}" ""\n')
    password = f" password={db['PASSWORD']}" if db.get("PASSWORD") else ""
    port = free_port()
    (folder / "pgbouncer.ini").write_text(
        CONFIG.format(
            host=db.get("HOST") or "127.0.0.1",
            port=db.get("PORT") or 5432,
            password=password,
            listen=port,
            folder=folder,
            user=user,
        )
    )
    argv = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        shutil.chown(folder, SUPERUSER, SUPERUSER)
        for path in folder.iterdir():
            shutil.chown(path, SUPERUSER, SUPERUSER)
        argv = ["runuser", "-u", SUPERUSER, "--", *argv]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        wait_for(lambda: _accepts(port) or process.poll() is not None, "pgbouncer to listen", timeout=30)
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        yield Bouncer(port, folder, user)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_a_slice_of_the_suite_passes_through_pgbouncer_in_transaction_mode(pgbouncer: Bouncer):
    # given a copy of this run's migrated test database, made straight on Postgres
    connections.close_all()  # a template must have no other session
    template = settings.DATABASES["default"]["NAME"]
    # nor an idle one an earlier test's thread (a live server's, a sender's) left behind
    _direct_psql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{template}' "
        "AND pid <> pg_backend_pid()"
    )
    _direct_psql(f'DROP DATABASE IF EXISTS "{POOLED_DATABASE}" WITH (FORCE)')
    _direct_psql(f'CREATE DATABASE "{POOLED_DATABASE}" TEMPLATE "{template}"')
    # A copy does not take its template's database-level settings, and the slice's own session setup
    # (tests/conftest.py) sets this one only for sessions opened after it: a server connection PgBouncer
    # had opened before kept running without it, and a transactional test's flush (a TRUNCATE of every
    # table, the audit trail's included) on it was refused (the likely cause of earlier runs' failures). Set
    # before the pooler opens any.
    _direct_psql(f"ALTER DATABASE \"{POOLED_DATABASE}\" SET martech.audit_truncate = 'on'")
    assert pgbouncer.admin("SHOW CONFIG")  # the console answers
    mode = [row for row in pgbouncer.admin("SHOW CONFIG") if row.get("key") == "pool_mode"]
    assert mode and mode[0]["value"] == "transaction"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{pgbouncer.user}@127.0.0.1:{pgbouncer.port}/martech",
        "DATABASE_POOLER": "pgbouncer",
        "TEST_DATABASE_NAME": POOLED_DATABASE,
        "REDIS_URL": settings.REDIS_URL,
    }
    try:
        # when the slice runs with every connection through the pooler
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--reuse-db", *SLICE],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        stats = {row["database"]: row for row in pgbouncer.admin("SHOW STATS")}
    finally:
        _direct_psql(f'DROP DATABASE IF EXISTS "{POOLED_DATABASE}" WITH (FORCE)')
    # then it passes, and its transactions went through PgBouncer
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    # the root causes first (a chained database error sits far above the end of a long traceback)
    causes = "\n".join(line for line in result.stdout.splitlines() if "Error:" in line or "errors." in line)
    assert result.returncode == 0, causes[-4000:] + "\n" + result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert int(stats[POOLED_DATABASE]["total_xact_count"]) > 300, stats.get(POOLED_DATABASE)


def test_the_pooler_setting_turns_off_server_side_cursors_and_startup_options():
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "d = settings.DATABASES['default']; "
        "print(json.dumps([d['DISABLE_SERVER_SIDE_CURSORS'], 'options' in d['OPTIONS']]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_POOLER": "pgbouncer"}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [True, False]


def test_a_job_that_keeps_session_state_refuses_to_run_through_the_pooler(settings):
    settings.DATABASE_POOLER = "pgbouncer"
    with pytest.raises(ImproperlyConfigured, match="Identity resolution keeps temporary tables"):
        require_session_connection("Identity resolution")
    settings.DATABASE_POOLER = ""
    require_session_connection("Identity resolution")  # straight to Postgres: allowed
