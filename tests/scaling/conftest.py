"""A real streaming replica for the replica-reads tests, started and stopped by the tests themselves.

The session's pair: a primary cluster (initdb on a free loopback port under a temporary folder) holding a
copy of this run's migrated test database (pg_dump of it, loaded before the base backup), and a standby
made with `pg_basebackup -R` streaming from it. A test using `replica_pair` has Django's `default` alias on
that primary and a `replica` alias on the standby, outside pytest-django's per-test transaction (rows must
commit to replicate), and the primary's rows it wrote are emptied afterwards.
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Iterator

import pytest
from django.db import connections

from config import db_router
from tests.scaling.postgres_cluster import (
    Cluster,
    StreamingPair,
    missing_tools,
    pg_tool,
    start_streaming_pair,
)

PAIR_DATABASE = "martech_scaling"


def _dump_test_database_into(primary: Cluster, database: str) -> None:
    """This run's test database (migrated, with the migrations' rows) copied into the primary."""
    source = connections["default"].settings_dict
    env = {**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""}
    dump = [pg_tool("pg_dump"), "--no-owner", "--no-privileges", "-d", source["NAME"]]
    if source.get("HOST"):
        dump += ["-h", source["HOST"]]
    if source.get("PORT"):
        dump += ["-p", str(source["PORT"])]
    if source.get("USER"):
        dump += ["-U", source["USER"]]
    load = [pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(primary.port)]
    load += ["-U", "postgres", "-d", database]
    dumped = subprocess.run(dump, capture_output=True, env=env, timeout=300, check=True)  # noqa: S603
    subprocess.run(load, input=dumped.stdout, capture_output=True, timeout=300, check=True)  # noqa: S603
    # as on this run's test database (tests/conftest.py): emptying tables past the audit trail's guard
    primary.sql(f"ALTER DATABASE {database} SET martech.audit_truncate = 'on'")


@pytest.fixture(scope="session")
def streaming_pair(django_db_setup, django_db_blocker) -> Iterator[StreamingPair]:
    missing = missing_tools()
    if missing:
        pytest.skip(f"PostgreSQL server binaries missing: {', '.join(missing)} (apt-get install postgresql)")
    with django_db_blocker.unblock():
        connections["default"].close()
    pair = start_streaming_pair(_dump_test_database_into, PAIR_DATABASE)
    try:
        yield pair
    finally:
        pair.stop()


# Tables a replica test writes (through services); emptied on the primary after each test.
_WRITTEN = (
    "tickets_ticket, crm_tags_customer, analytics_reportjob, accounts_user, campaigns_campaign, "
    "crm_tags_tag, crm_tags_tagbuild, crm_tags_tagmembership, crm_tags_tagmembershipchange, "
    "privacy_consent, privacy_consentchange"
)


@pytest.fixture
def replica_pair(
    transactional_db, streaming_pair: StreamingPair, django_db_blocker, settings
) -> Iterator[StreamingPair]:
    """`default` on the pair's primary, `replica` on its standby, for the length of one test (set up after,
    and undone before, pytest-django's own handling of this run's test database, which is left as is)."""
    settings.REPLICA_MAX_LAG_SECONDS = 30.0
    db_router._last_state.clear()
    with django_db_blocker.unblock():
        default = connections["default"]
        saved = copy.deepcopy(default.settings_dict)
        default.close()
        default.settings_dict.update(
            HOST="127.0.0.1",
            PORT=str(streaming_pair.primary.port),
            NAME=PAIR_DATABASE,
            USER="postgres",
            PASSWORD="",
        )
        replica = copy.deepcopy(default.settings_dict)
        replica["PORT"] = str(streaming_pair.standby.port)
        replica["OPTIONS"] = {**replica.get("OPTIONS", {}), "connect_timeout": 2}
        connections.settings[db_router.REPLICA_ALIAS] = replica
        try:
            yield streaming_pair
        finally:
            if not streaming_pair.standby.running():
                streaming_pair.standby.start()
            streaming_pair.resume_replay()
            for alias in (db_router.REPLICA_ALIAS, "default"):
                connections[alias].close()
            del connections[db_router.REPLICA_ALIAS]
            del connections.settings[db_router.REPLICA_ALIAS]
            streaming_pair.primary.sql(f"TRUNCATE {_WRITTEN} CASCADE", db=PAIR_DATABASE)
            default.settings_dict.clear()
            default.settings_dict.update(saved)
            db_router._last_state.clear()
