"""Session helpers the loads share: a timed step in the debug log, planner settings for a few statements."""

import logging
import time as time_module
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


@contextmanager
def _step(name: str) -> Iterator[None]:
    started = time_module.perf_counter()
    yield
    log.debug("import step %s took %.3fs", name, time_module.perf_counter() - started)


@contextmanager
def _local_settings(cursor: Any, **settings: str) -> Iterator[None]:
    """Planner settings for the statements inside, restored after (the transaction goes on)."""
    names = list(settings)
    cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
    previous = cursor.fetchone()
    for name, value in settings.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
    yield
    for name, value in zip(names, previous, strict=True):
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
