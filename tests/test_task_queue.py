"""config.task_queue.enqueue: services queue tasks by name, after commit, without importing tasks modules."""

import os
import subprocess
import sys

import pytest
from django.core.cache import cache

from config.task_queue import UnknownTask, enqueue


@pytest.mark.django_db
def test_a_task_queued_by_name_runs_once_the_transaction_commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueue("accounts.tasks.worker_heartbeat")
    assert cache.get("beat:last_heartbeat") is None  # nothing before the commit
    for callback in callbacks:
        callback()
    assert cache.get("beat:last_heartbeat") is not None  # eager in tests, as .delay() would be


@pytest.mark.django_db
def test_an_unknown_task_name_is_refused_at_once_naming_it():
    with pytest.raises(UnknownTask, match="'accounts.tasks.no_such_task'"):
        enqueue("accounts.tasks.no_such_task")


@pytest.mark.parametrize("module", ["accounts.tasks", "tickets.tasks"])
def test_a_tasks_module_imports_first_without_a_cycle(module):
    # tasks import services at module level; services never import tasks, so either may load first
    code = f"import django; django.setup(); import {module}"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
