"""Each benchmark runs in its own database: create (or keep) it, migrate it, set Django up on it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_database_setup(name: str, *, keep: bool = False, redis_db: int = 13, **env: str) -> bool:
    """Point Django at database `name` (dropped and recreated unless `keep`), migrate, django.setup().

    Returns whether a kept database already existed (so a bench can skip generating its data).
    """
    base = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    os.environ["DATABASE_URL"] = f"{base}/{name}"
    os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:6379/{redis_db}")
    os.environ["CACHE_KEY_PREFIX"] = name
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ["AXES_ENABLED"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("MEDIA_ROOT", f"/tmp/{name}-media")
    os.environ.setdefault("STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone())
        if exists and not keep:
            conn.execute(f'DROP DATABASE "{name}"')
            exists = False
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"],
        check=True,
        cwd=ROOT,
        env=os.environ.copy(),
    )
    import django

    django.setup()
    return exists
