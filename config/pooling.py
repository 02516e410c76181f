"""Connection pooling (docs/scaling.md): what may not run through PgBouncer in transaction mode.

Behind a transaction-mode pooler each transaction may get a different server connection, so session state
(a session `SET`, a temporary table kept across transactions, a session advisory lock, LISTEN, a prepared
statement, a server-side cursor) is lost or, worse, left behind for another client. The portal keeps such
state out of its requests and tasks (transaction-scoped `SET LOCAL` / `set_config(..., true)`,
`pg_advisory_xact_lock`, no LISTEN, DISABLE_SERVER_SIDE_CURSORS). The few batch jobs that do keep state
across transactions ask `require_session_connection` first and refuse to run through the pooler.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def pooled_in_transactions() -> bool:
    """Whether DATABASE_URL points at PgBouncer in transaction mode (DATABASE_POOLER=pgbouncer)."""
    return getattr(settings, "DATABASE_POOLER", "") == "pgbouncer"


def require_session_connection(what: str) -> None:
    """Refuse, naming `what`, to run a job that keeps session state across transactions through the pooler."""
    if pooled_in_transactions():
        raise ImproperlyConfigured(
            f"{what} keeps temporary tables and settings across transactions, which PgBouncer in "
            "transaction mode does not keep: run it with DATABASE_URL pointing straight at Postgres "
            "and DATABASE_POOLER unset (docs/scaling.md)."
        )
