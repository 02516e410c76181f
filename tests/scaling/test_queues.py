"""Queues split by kind: every task has an explicit route, and the Procfile and docker-compose.yml run one
worker per queue (docker cannot run here, so its file is parsed and checked)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from config.celery import app

ROOT = Path(settings.BASE_DIR)
QUEUES = {"default", "tags", "reports", "journeys", "email"}


def _registered_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def _queue_of(task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


def _worker_queues(command: str) -> list[str]:
    argv = shlex.split(command)
    assert "worker" in argv, command
    assert "-Q" in argv, f"a worker without -Q consumes only the default queue: {command}"
    return argv[argv.index("-Q") + 1].split(",")


def test_the_queues_are_the_five_kinds():
    assert set(settings.TASK_QUEUE_NAMES) == QUEUES
    assert set(settings.TASK_QUEUE_TASKS) == QUEUES
    assert app.conf.task_default_queue == "default"


def test_every_registered_task_has_an_explicit_route():
    unrouted = sorted(_registered_tasks() - set(settings.CELERY_TASK_ROUTES))
    assert not unrouted, (
        f"tasks without a queue: {unrouted}; add each to TASK_QUEUE_TASKS in config/settings.py"
    )


def test_every_route_names_a_task_that_exists_and_one_of_the_queues():
    stale = sorted(set(settings.CELERY_TASK_ROUTES) - _registered_tasks())
    assert not stale, f"routes for tasks that no longer exist: {stale}"
    named = [task for tasks in settings.TASK_QUEUE_TASKS.values() for task in tasks]
    assert len(named) == len(set(named)), "a task is listed under two queues"
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} <= QUEUES


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("crm_tags.tasks.run_tag_build", "tags"),
        ("analytics.tasks.run_report_job", "reports"),
        ("journeys.tasks.tick", "journeys"),
        ("accounts.tasks.send_notification_emails", "email"),
        ("tickets.tasks.sla_scan", "default"),
    ],
)
def test_a_task_is_sent_to_its_kinds_queue(task: str, queue: str):
    assert _queue_of(task) == queue


def test_a_long_rebuild_and_a_notification_never_share_a_queue():
    assert _queue_of("crm_tags.tasks.run_tag_build") != _queue_of("accounts.tasks.send_notification_emails")
    assert _queue_of("analytics.tasks.run_report_job") != _queue_of("accounts.tasks.send_notification_emails")


def test_the_procfile_runs_one_worker_per_queue_and_one_beat():
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    entries = dict(re.match(r"^([\w-]+):\s*(.+)$", line).groups() for line in lines)
    workers = {name: cmd for name, cmd in entries.items() if " worker " in f" {cmd} "}
    consumed = [queue for cmd in workers.values() for queue in _worker_queues(cmd)]
    assert sorted(consumed) == sorted(QUEUES)  # each queue exactly once
    for name, cmd in workers.items():
        (queue,) = _worker_queues(cmd)
        assert name == f"worker-{queue}"
        assert f"-n {queue}@%h" in cmd  # distinct node names on one host
    assert sum(" beat " in f" {cmd} " for cmd in entries.values()) == 1
    assert "web" in entries


def test_docker_compose_runs_one_worker_per_queue_with_the_apps_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    workers = {name: svc for name, svc in services.items() if " worker " in f" {svc.get('command', '')} "}
    consumed = [queue for svc in workers.values() for queue in _worker_queues(svc["command"])]
    assert sorted(consumed) == sorted(QUEUES)
    for name, svc in workers.items():
        (queue,) = _worker_queues(svc["command"])
        assert name == f"worker-{queue}"
        # the `x-app` anchor merged in: same image, database, broker and media as the web process
        assert svc["build"] == services["web"]["build"]
        assert svc["environment"] == services["web"]["environment"]
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    beats = [name for name, svc in services.items() if " beat " in f" {svc.get('command', '')} "]
    assert beats == ["beat"]
    assert "worker" not in services  # the old catch-all worker is gone (it consumed `default` only)
