"""The web process as deployed: gunicorn with config/gunicorn.conf.py, warmed up once in the master."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
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


def _runserver(tmp_path: Path, env_changes: dict[str, str | None]) -> tuple[subprocess.Popen, int, Path]:
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "STATIC_ROOT": str(tmp_path / "never-collected"),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    # the test settings pin these two; a developer's shell has neither
    for name in ("DJANGO_DEBUG", "STATICFILES_BACKEND"):
        env.pop(name, None)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    log_path = tmp_path / "runserver.log"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    return server, port, log_path


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local test server
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def _first_status(server: subprocess.Popen, url: str) -> int | None:
    deadline = time.monotonic() + 90
    status = None
    while status is None and time.monotonic() < deadline and server.poll() is None:
        status = _status(url)
        if status is None:
            time.sleep(0.2)  # polling a condition, bounded by the deadline
    return status


@pytest.mark.django_db
def test_a_developers_first_runserver_serves_pages_and_their_static_files(tmp_path):
    # given a fresh checkout: static files never collected, no DJANGO_DEBUG in the environment
    server, port, log_path = _runserver(tmp_path, {})
    try:
        # then runserver starts in debug mode: the page and its style sheet are served
        assert _first_status(server, f"http://127.0.0.1:{port}/accounts/login/") == 200, log_path.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:  # noqa: S310
            css = re.search(r'href="(/static/css/martech[^"]*\.css)"', response.read().decode()).group(1)
        assert _status(f"http://127.0.0.1:{port}{css}") == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.django_db
def test_production_settings_without_collected_static_files_say_what_to_run(tmp_path):
    server, port, log_path = _runserver(tmp_path, {"DJANGO_DEBUG": "false"})
    try:
        assert _first_status(server, f"http://127.0.0.1:{port}/accounts/login/") == 500
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Static files have not been collected" in log_path.read_text()
    assert "collectstatic" in log_path.read_text()
