"""Work every web process would otherwise do on its first requests, done once before it serves.

Gunicorn loads the application in its master (`preload_app`) and calls `warm_up()` there before it
forks the workers, so each worker starts with the URL patterns imported, both catalogs loaded, every
template compiled and jieba's dictionary in memory (copy-on-write), instead of spending seconds of CPU
on its first requests while people wait. Nothing here may keep a database or Redis connection open:
a socket opened in the master would be shared by every forked worker.
"""

import logging
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.template import engines
from django.template.loader import get_template
from django.urls import get_resolver
from django.utils import translation

log = logging.getLogger(__name__)


def _template_names() -> list[str]:
    names: list[str] = []
    for engine in engines.all():
        for directory in engine.template_dirs:
            root = Path(directory)
            names.extend(str(path.relative_to(root)) for path in root.rglob("*.html"))
    return sorted(set(names))


def warm_up() -> dict[str, int]:
    """Import every view, load the catalogs, compile the templates and load jieba; returns counts."""
    from knowledge_base.segmentation import tokenizer

    patterns = len(get_resolver().url_patterns)
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("Requests")
    templates = 0
    for name in _template_names():
        get_template(name)
        templates += 1
    tokenizer()
    connections.close_all()
    log.info("warmed up: %d url patterns, %d templates, jieba loaded", patterns, templates)
    return {"url_patterns": patterns, "templates": templates}
