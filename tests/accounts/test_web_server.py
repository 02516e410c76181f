"""The web process as deployed: gunicorn with config/gunicorn.conf.py, warmed up once in the master."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local test server
            return response.status, response.read().decode()
    except OSError:
        return None


@pytest.mark.django_db
def test_gunicorn_warms_up_once_in_the_master_and_serves_pages(tmp_path):
    db = connection.settings_dict
    port = _free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_WORKERS": "2",
        "WEB_THREADS": "1",
        "LOG_LEVEL": "INFO",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            page = None
            while page is None and time.monotonic() < deadline and server.poll() is None:
                page = _get(f"http://127.0.0.1:{port}/accounts/login/")
                if page is None:
                    time.sleep(0.2)  # polling a condition, bounded by the deadline
            assert page is not None, log_path.read_text()[-3000:]
            status, body = page
            assert status == 200
            assert 'name="csrfmiddlewaretoken"' in body
        finally:
            server.terminate()
            server.wait(timeout=30)
    output = log_path.read_text()
    # Two workers, one warm-up: it ran in the master before the fork, not once per worker.
    assert output.count("warmed up:") == 1, output[-3000:]
    assert "jieba loaded" in output
