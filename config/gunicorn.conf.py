"""Gunicorn settings for the web process (Procfile, Dockerfile, docker-compose, bench/load).

WEB_BIND (default 127.0.0.1:8000), WEB_WORKERS (2 per core) and WEB_THREADS (2) come from the environment.
The application is loaded once in the master and warmed up there (config/warmup.py) before the
workers are forked.
"""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
# Two processes per core with two threads each gave the best page p95 under the load run on 2 cores
# (docs/benchmarks.md "load"): more threads per process only queue behind its GIL.
workers = int(os.environ.get("WEB_WORKERS", str(2 * (os.cpu_count() or 1))))
threads = int(os.environ.get("WEB_THREADS", "2"))
timeout = 60
# Longer than a client or load balancer keeps an idle connection: a server closing first races the
# next request on it (seen as "connection reset by peer" under load with the default 2 s).
keepalive = int(os.environ.get("WEB_KEEPALIVE", "75"))
preload_app = True
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None


def when_ready(server) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """Runs in the master after the application is loaded and before any worker is forked."""
    from config.warmup import warm_up

    warm_up()
