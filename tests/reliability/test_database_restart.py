"""The database going away under traffic: requests fail cleanly (503), then the app recovers by itself."""

import psycopg
import pytest
import requests
from django.db import connection

from accounts.tokens import api_token_issue


def _admin_sql(sql: str) -> None:
    params = connection.get_connection_params()
    with psycopg.connect(
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(sql)


@pytest.mark.django_db(transaction=True)
def test_requests_fail_cleanly_while_the_database_is_gone_and_recover(live_server, agent):
    token = api_token_issue(user=agent).key
    name = connection.settings_dict["NAME"]
    url = f"{live_server.url}/api/v1/me/"
    headers = {"Authorization": f"Token {token}"}
    assert requests.get(url, headers=headers, timeout=10).status_code == 200

    # when the database refuses connections and drops the open ones (as in a restart)
    _admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        _admin_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        down = requests.get(url, headers=headers, timeout=10)
        # then the request fails cleanly, with a message and a retry hint
        assert down.status_code == 503
        assert down.json()["errors"][0]["code"] == "database_unavailable"
        assert down.headers["Retry-After"] == "5"
    finally:
        _admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        connection.close()

    # and once it is back, the same server answers again without a restart
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
